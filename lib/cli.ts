#!/usr/bin/env node
// odirect CLI: probe PATH · verify-atomic PATH · bench [options]
// Conventions: --help on stdout with exit 0 (for every command), --version, usage errors on
// stderr with exit 2, an unknown command named. Exit statuses of verify-atomic: see its --help.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { probe, PROBE_SCRATCH_PREFIX } from './probe';
import { runVerifyAtomic } from './verify';

const COMMANDS = ['probe', 'verify-atomic', 'bench'] as const;

const USAGE = `usage: odirect <command> [options]

commands:
  probe PATH            what direct, atomic and uncached I/O can do on PATH (JSON)
  verify-atomic [PATH]  check atomic writes on PATH's filesystem, or on a scratch XFS
  bench [options]       the benchmark suite (see bench/README.md)

options:
  -h, --help            this text; \`odirect <command> --help\` for a command's options
  -v, --version         odirect's version

exit status: 0 success, 1 failure, 2 usage error (verify-atomic: see its --help)
`;

const PROBE_USAGE = `usage: odirect probe PATH

Prints, as JSON, what PATH's filesystem and device can do: O_DIRECT and its alignments,
atomic write units (RWF_ATOMIC), RWF_DONTCACHE, io_uring, DAX, the device's write cache.

PATH is a directory, a file or a block device. To test O_DIRECT and RWF_DONTCACHE, probe
creates an empty scratch file, ${PROBE_SCRATCH_PREFIX}<pid>-<random>, in the directory (for a
file: next to it), and removes it; it says so on stderr. Nothing else is written.

exit status: 0 success, 1 the probe failed (e.g. PATH missing, directory not writable), 2 usage error
`;

class UsageError extends Error {
  constructor(message: string, readonly usage: string = USAGE) {
    super(message);
  }
}

function version(): string {
  // dist/cli.js and lib/cli.ts both sit one level below the package root.
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The command closest to a mistyped one, if it is close (one or two edits). */
function suggest(word: string): string | undefined {
  const distance = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) {
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      }
    }
    return d[a.length]![b.length]!;
  };
  const best = COMMANDS.map((c) => ({ c, d: distance(word, c) })).sort((x, y) => x.d - y.d)[0]!;
  return best.d <= 2 || best.c.startsWith(word) ? best.c : undefined;
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, usage = USAGE) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message, usage);
  }
}

async function runProbe(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { help: { type: 'boolean', short: 'h' } }, PROBE_USAGE);
  if (values.help) {
    process.stdout.write(PROBE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`probe takes one PATH (got ${positionals.length})`, PROBE_USAGE);
  const target = path.resolve(positionals[0]!);
  let dir: string | undefined;
  try {
    const st = fs.statSync(target);
    dir = st.isDirectory() ? target : st.isFile() ? path.dirname(target) : undefined;
  } catch {
    // probe() reports the missing path as an OdirectError
  }
  if (dir) process.stderr.write(`odirect probe: testing with a scratch file ${path.join(dir, `${PROBE_SCRATCH_PREFIX}*`)}, removed after\n`);
  process.stdout.write(`${JSON.stringify(await probe(target), null, 2)}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (command.startsWith('-')) {
    const { values, positionals } = parse(argv, { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (values.version) {
      process.stdout.write(`${version()}\n`);
      return 0;
    }
    throw new UsageError(`options before the command: ${positionals.join(' ')}`);
  }
  switch (command) {
    case 'probe':
      return runProbe(rest);
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
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default: {
      const near = suggest(command);
      throw new UsageError(`unknown command '${command}'${near ? ` (did you mean '${near}'?)` : ''}`);
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`odirect: ${err.message}\n\n${err.usage}`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`odirect: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
