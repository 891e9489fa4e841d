// Issue 13's rows: a whole-file copy with pipeline (odirect streams, node:fs
// streams + fdatasync, cp + sync -f), and replaceFile against
// write-file-atomic from npm.
//
// Copy: the source is fileMiB MiB + 4097 bytes (not a multiple of 4 KiB),
// made once per filesystem outside the timed part, and dropped from the page
// cache before every run. Each contender's copy ends durable (odirect: flush,
// one fdatasync; node:fs: fdatasync of the destination; cp: sync -f), and
// the time includes that. Pages left in the page cache are counted for both
// files (fincore) right after.
//
// Replace: one file replaced over and over for the run's seconds with the
// same 4 KiB or 1 MiB of data. write-file-atomic fsyncs the temp file and
// renames it, but does not fsync the directory; replaceFile does that too
// (test/replace-crash.test.ts shows acknowledged versions lost without it).
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createReadStream, createWriteStream, open, replaceFile, type EngineName } from '../library';
import { cachedPages } from '../environment';
import { cpuSince } from '../drive';
import { LatencyRecorder } from '../stats';
import { Unsupported, type RunContext, type RunResult } from '../types';
import type { ContenderId } from '../workloads';

const MiB = 1024 * 1024;
const run = promisify(execFile);

type WriteFileAtomic = (file: string, data: Uint8Array, options?: { fsync?: boolean }) => Promise<void>;

function loadWriteFileAtomic(): WriteFileAtomic {
  try {
    return createRequire(__filename)('write-file-atomic') as WriteFileAtomic;
  } catch {
    throw new Unsupported('write-file-atomic is not installed (it is a devDependency: npm install)');
  }
}

/** The copy source: fileSize + 4097 bytes of random data, written once (direct, durable). */
async function copySource(ctx: RunContext): Promise<{ file: string; size: number }> {
  const file = path.join(ctx.target.dir, 'bench-copy-src.dat');
  const size = ctx.target.fileSize + 4097;
  if (fs.existsSync(file) && fs.statSync(file).size === size) return { file, size };
  const block = Buffer.alloc(MiB);
  randomFillSync(block);
  let left = size;
  const chunks = Readable.from(
    (function* () {
      while (left > 0) {
        const n = Math.min(left, MiB);
        left -= n;
        block[0] = (block[0]! + 1) & 255; // no two blocks alike
        yield Buffer.from(block.subarray(0, n));
      }
    })(),
  );
  await pipeline(chunks, createWriteStream(file, { size, flush: true, engine: 'threadpool' }));
  return { file, size };
}

/** Writes back and drops the file's page cache, so no contender inherits another's cached or dirty pages. */
export async function dropCache(file: string): Promise<void> {
  if (!fs.existsSync(file)) return;
  const f = await open(file, { direct: false, engine: 'threadpool' });
  try {
    await f.dropCache(0, 0);
  } finally {
    await f.close();
  }
}

export async function runCopy(c: ContenderId, ctx: RunContext): Promise<RunResult> {
  const { file: src, size } = await copySource(ctx);
  const dst = path.join(ctx.target.dir, 'bench-copy-dst.dat');
  fs.rmSync(dst, { force: true });
  await dropCache(src);
  const cpuStart = process.cpuUsage();
  const started = process.hrtime.bigint();
  switch (c) {
    case 'odirect-uring':
    case 'odirect-threadpool': {
      const engine: EngineName = c === 'odirect-uring' ? 'uring' : 'threadpool';
      await pipeline(createReadStream(src, { engine }), createWriteStream(dst, { engine, flush: true }));
      break;
    }
    case 'node-fs': {
      await pipeline(fs.createReadStream(src), fs.createWriteStream(dst));
      // fdatasync flushes the file, whichever fd it is called on. (A FileHandle stream with
      // autoClose: false never emits 'close', and pipeline waits for it.)
      const handle = await fs.promises.open(dst, 'r+');
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
      break;
    }
    case 'cp':
      await run('cp', ['--reflink=never', src, dst]); // a real copy: XFS would clone the blocks
      await run('sync', ['-f', dst]);
      break;
    default:
      throw new Unsupported(`${c} has no copy row`);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // cp runs in a child process: its CPU is not this process's, so none is claimed for it.
  const cpu = c === 'cp' ? null : cpuSince(cpuStart);
  const copied = fs.statSync(dst).size;
  if (copied !== size) throw new Error(`the copy is ${copied} bytes, the source ${size}`);
  const srcPages = cachedPages(src, ctx.tools.fincore);
  const dstPages = cachedPages(dst, ctx.tools.fincore);
  fs.rmSync(dst, { force: true });
  const both = srcPages === null || dstPages === null ? null : srcPages + dstPages;
  return {
    ops: 1,
    bytes: size,
    seconds,
    p50Ns: null,
    p99Ns: null,
    pagesLeft: both,
    cpu,
    notes: [`pages left: source ${srcPages ?? '?'}, copy ${dstPages ?? '?'}`],
    details: { bytes: size, sourcePages: srcPages, copyPages: dstPages },
  };
}

export async function runReplace(c: ContenderId, ctx: RunContext): Promise<RunResult> {
  const file = path.join(ctx.target.dir, 'bench-replaced.dat');
  const data = Buffer.alloc(ctx.workload.bs);
  randomFillSync(data);
  let replace: (d: Buffer) => Promise<void>;
  switch (c) {
    case 'odirect-uring':
    case 'odirect-threadpool': {
      const engine: EngineName = c === 'odirect-uring' ? 'uring' : 'threadpool';
      replace = (d) => replaceFile(file, d, { engine });
      break;
    }
    case 'node-fs': {
      const writeFileAtomic = loadWriteFileAtomic();
      replace = (d) => writeFileAtomic(file, d);
      break;
    }
    default:
      throw new Unsupported(`${c} has no replace row`);
  }
  await replace(data); // the target exists from the start, as when a config is replaced
  const latency = new LatencyRecorder();
  const deadline = process.hrtime.bigint() + BigInt(Math.round(ctx.seconds * 1e9));
  const cpuStart = process.cpuUsage();
  const started = process.hrtime.bigint();
  let ops = 0;
  for (let now = started; now < deadline; ) {
    data[0] = ops & 255;
    await replace(data);
    const done = process.hrtime.bigint();
    latency.add(Number(done - now));
    now = done;
    ops++;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = cpuSince(cpuStart);
  const pagesLeft = cachedPages(file, ctx.tools.fincore);
  fs.rmSync(file, { force: true });
  const [p50, p99] = latency.percentiles([50, 99]);
  return { ops, bytes: ops * data.length, seconds, p50Ns: p50 ?? null, p99Ns: p99 ?? null, pagesLeft, cpu };
}
