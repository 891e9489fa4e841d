#!/usr/bin/env node
// odirect CLI: probe PATH · verify-atomic PATH · bench [--dir PATH] [--quick] [--runs N] [--filter RE]
import { probe } from './probe';
import { runVerifyAtomic } from './verify';

const USAGE = `usage:
  odirect probe PATH            what direct, atomic and uncached I/O can do on PATH (JSON)
  odirect verify-atomic [PATH]  check atomic writes on PATH's filesystem, or a scratch XFS (--help for options)
  odirect bench [options]       the benchmark suite (see bench/README.md)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'probe': {
      if (rest.length !== 1) break;
      process.stdout.write(`${JSON.stringify(await probe(rest[0]!), null, 2)}\n`);
      return 0;
    }
    case 'verify-atomic':
      return runVerifyAtomic(rest);
    case 'bench': {
      // libuv sizes its thread pool when the pool first starts, and loading the
      // bench starts it: the thread-pool engine needs 32+ threads for depth 32.
      process.env.UV_THREADPOOL_SIZE ??= '64';
      // The bench is built beside the library (bench/dist), never inside it: only this
      // command loads it. A variable specifier keeps tsc from resolving it at build time.
      const benchEntry = '../bench/dist/index.js';
      const bench = (await import(benchEntry)) as { runBench(argv: string[]): Promise<number> };
      return bench.runBench(rest);
    }
    default:
      break;
  }
  process.stderr.write(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`odirect: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
