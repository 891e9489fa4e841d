// Runs the selected rows on one filesystem target: lays out the shared file,
// then for each workload, each run and each contender in turn (runs interleave
// the contenders, so slow drifts of a shared machine hit them alike).
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alignedBuffer, open, probe, UnsupportedError } from './library';
import { isInterrupted } from './cleanup';
import { runCRef } from './contenders/cref';
import { runFio } from './contenders/fio';
import { runNodeFs } from './contenders/nodefs';
import { runOdirect, runOdirectSync } from './contenders/odirect';
import { dropCache, runCopy, runReplace } from './contenders/streams';
import { cachedPages, type ToolReport } from './environment';
import type { BenchOptions } from './options';
import type { Progress } from './progress';
import { median, spread } from './stats';
import { Unsupported, type FsTarget, type RowRecord, type RunContext, type RunRecord, type RunResult } from './types';
import { contenderLabel, contendersFor, executionOrder, rowId, type ContenderId, type Workload } from './workloads';

const MiB = 1024 * 1024;

export interface SuiteEnv {
  opts: BenchOptions;
  tools: ToolReport;
  fio: RunContext['fio'];
  progress: Progress;
}

/** Steps the progress bar counts for these workloads on one filesystem. */
export function stepsFor(workloads: readonly Workload[], opts: BenchOptions): number {
  return workloads.reduce((n, w) => n + contendersFor(w, opts.contenders).length * opts.runs, 0);
}

/** Writes the whole file once with 1 MiB direct writes, 8 in flight, after fallocate; then fsync. */
export async function layOutFile(file: string, size: number): Promise<number> {
  const start = Date.now();
  const f = await open(file, { create: true, truncate: true, engine: 'threadpool' });
  try {
    await f.allocate(0, size);
    const chunk = Math.min(MiB, size);
    let next = 0;
    const worker = async (): Promise<void> => {
      const buffer = alignedBuffer(chunk);
      randomFillSync(buffer);
      while (next < size && !isInterrupted()) {
        const pos = next;
        next += chunk;
        const len = Math.min(chunk, size - pos);
        await f.write(len === chunk ? buffer : buffer.subarray(0, len), pos);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await f.sync();
  } finally {
    await f.close();
  }
  return (Date.now() - start) / 1000;
}

/**
 * Software (CoW) atomic writes on XFS allocate, for a write into a CoW-fork hole, the whole
 * hole up to the next CoW-fork extent (xfs_atomic_write_cow_iomap_begin, Linux 6.16+), and
 * reserve that much space before taking the inode lock. On a freshly laid-out file the first
 * random writes reserve and allocate hundreds of MiB each, 32 at a time, which ran the
 * filesystem out of space (bench/README.md gives the measurements). Atomic writes from the
 * end of the file down, one per stride, fill the CoW fork in stride-sized allocations first;
 * the timed writes then find CoW blocks (or a hole their own size) and use no more space.
 * Returns the number of writes.
 */
export async function primeCowFork(file: string, size: number, bs: number, stride = 8 * MiB): Promise<number> {
  const f = await open(file, { engine: 'threadpool' });
  try {
    const buffer = alignedBuffer(bs);
    randomFillSync(buffer);
    let writes = 0;
    for (let pos = Math.floor(size / bs) * bs - bs; pos >= 0 && !isInterrupted(); pos -= stride) {
      await f.write(buffer, pos, { atomic: true });
      writes++;
    }
    return writes;
  } finally {
    await f.close();
  }
}

function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bfree * s.bsize;
}

/**
 * After deleting a file, waits (at most `maxMs`) until the filesystem has given its space back:
 * XFS frees a deleted file's blocks and CoW staging blocks in the background (inodegc), and
 * statfs() pushes that work along. Waits for at least `expected` more free bytes than `before`,
 * then until the count stops rising. Returns the ms waited.
 */
async function waitForFreedSpace(dir: string, before: number, expected: number, maxMs = 30_000): Promise<number> {
  const start = Date.now();
  let last = freeBytes(dir);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = freeBytes(dir);
    if ((now >= before + expected && now === last) || Date.now() - start >= maxMs || isInterrupted()) return Date.now() - start;
    last = now;
  }
}

/** Samples the filesystem's free bytes every `everyMs` while a run goes on; `stop()` gives the lowest. */
function watchFreeSpace(dir: string, everyMs = 250): { stop: () => number } {
  let lowest = freeBytes(dir);
  const timer = setInterval(() => {
    lowest = Math.min(lowest, freeBytes(dir));
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.min(lowest, freeBytes(dir));
    },
  };
}

/**
 * The atomic row's file, before each contender's run: the last run's file is deleted and its
 * space waited for, a new one laid out and its CoW fork filled (primeCowFork), so every
 * contender starts from the same state and the row needs about twice the file (bench/README.md).
 */
async function freshAtomicFile(target: FsTarget, bs: number): Promise<Record<string, number>> {
  const freeBefore = freeBytes(target.dir);
  let held = 0;
  try {
    held = fs.statSync(target.sharedFile).blocks * 512;
  } catch {
    // not there
  }
  removeQuietly(target.sharedFile);
  const waitedForSpaceMs = await waitForFreedSpace(target.dir, freeBefore, held);
  const freeWithoutFile = freeBytes(target.dir);
  const layoutSeconds = await layOutFile(target.sharedFile, target.fileSize);
  const primeStart = Date.now();
  const primeWrites = target.fsType === 'xfs' ? await primeCowFork(target.sharedFile, target.fileSize, bs) : 0;
  return {
    waitedForSpaceMs,
    freeWithoutFileMiB: freeWithoutFile / MiB,
    layoutSeconds,
    cowPrimeWrites: primeWrites,
    cowPrimeSeconds: (Date.now() - primeStart) / 1000,
    freeBeforeRunMiB: freeBytes(target.dir) / MiB,
  };
}


function isUnsupported(e: unknown): boolean {
  return e instanceof Unsupported || e instanceof UnsupportedError || (e as { code?: unknown })?.code === 'ERR_URING_UNAVAILABLE';
}

function message(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

function runContender(c: ContenderId, ctx: RunContext): Promise<RunResult> {
  if (ctx.workload.kind === 'copy') return runCopy(c, ctx);
  if (ctx.workload.kind === 'replace') return runReplace(c, ctx);
  switch (c) {
    case 'odirect-uring':
      return runOdirect('uring', ctx);
    case 'odirect-threadpool':
      return runOdirect('threadpool', ctx);
    case 'odirect-sync':
      return runOdirectSync(ctx);
    case 'fio':
      return runFio(ctx);
    case 'c-ref':
      return runCRef(ctx);
    case 'node-fs':
      return runNodeFs(ctx);
    case 'cp':
      throw new Unsupported('cp only runs the copy row');
  }
}

/** Why nobody can run this row here (before running anything), or null. */
function rowUnsupported(w: Workload, target: FsTarget): { reason: string; detail?: string } | null {
  if (!w.atomic) return null;
  const a = target.caps.atomic;
  if (!a.supported) return { reason: 'not supported by this filesystem', detail: a.reason };
  if (w.bs < a.unitMin || w.bs > a.unitMax) {
    return {
      reason: 'not supported by this filesystem',
      detail: `${w.bs >> 10} KiB is outside its atomic write unit range ${a.unitMin}–${a.unitMax} bytes`,
    };
  }
  if (!target.caps.direct.supported) {
    return { reason: 'not supported by this filesystem', detail: `no direct I/O here (${target.caps.direct.reason ?? ''}); atomic writes need it` };
  }
  return null;
}

/** Run r (1-based) starts with contender r-1 and goes round, so no contender always goes first. */
function rotate<T>(items: readonly T[], run: number): T[] {
  const k = (run - 1) % Math.max(1, items.length);
  return [...items.slice(k), ...items.slice(0, k)];
}

function toRun(run: number, r: RunResult): RunRecord {
  const seconds = r.seconds > 0 ? r.seconds : NaN;
  return {
    run,
    ops: r.ops,
    bytes: r.bytes,
    seconds: r.seconds,
    iops: r.ops / seconds,
    mibs: r.bytes / MiB / seconds,
    p50Us: r.p50Ns === null ? null : r.p50Ns / 1000,
    p99Us: r.p99Ns === null ? null : r.p99Ns / 1000,
    cpuUsPerOp: r.cpu && r.ops > 0 ? (r.cpu.userUs + r.cpu.systemUs) / r.ops : null,
    cpu: r.cpu,
    ...(r.pagesLeft !== undefined ? { pagesLeft: r.pagesLeft } : {}),
    ...(r.notes?.length ? { notes: r.notes } : {}),
    ...(r.details ? { details: r.details } : {}),
  };
}

function summarize(rec: RowRecord): void {
  const ok = rec.runs.filter((r) => Number.isFinite(r.iops));
  if (!ok.length) {
    rec.median = null;
    rec.spread = null;
    return;
  }
  const nums = (pick: (r: RunRecord) => number | null | undefined): number[] =>
    ok.map(pick).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  rec.median = {
    iops: median(nums((r) => r.iops)),
    mibs: median(nums((r) => r.mibs)),
    p50Us: median(nums((r) => r.p50Us)),
    p99Us: median(nums((r) => r.p99Us)),
    cpuUsPerOp: median(nums((r) => r.cpuUsPerOp)),
  };
  if (ok.some((r) => r.pagesLeft !== undefined)) rec.median.pagesLeft = median(nums((r) => r.pagesLeft));
  const s = spread(nums((r) => (rec.metric === 'iops' ? r.iops : r.mibs)));
  rec.spread = s;
  rec.notes = [...new Set([...rec.notes, ...ok.flatMap((r) => r.notes ?? [])])];
}

function newRecord(w: Workload, target: FsTarget, c: ContenderId, env: SuiteEnv, seconds: number): RowRecord {
  return {
    id: rowId(w, target.name),
    workload: w.id,
    workloadNumber: w.number,
    title: w.title,
    fs: target.name,
    contender: c,
    label: contenderLabel(c, w),
    metric: w.metric,
    status: 'ok',
    config: {
      op: w.op,
      kind: w.kind,
      blockSize: w.bs,
      depth: w.depth,
      dsync: w.dsync,
      atomic: w.atomic,
      ...(w.kind === 'append' ? { preallocated: w.prealloc, capBytes: env.opts.appendCapMiB * MiB } : {}),
      ...(w.kind === 'cached' ? { cache: w.cache, bytes: env.opts.bufferedMiB * MiB } : {}),
      file: w.file === 'shared' ? target.sharedFile : path.join(target.dir, 'bench-fresh.dat'),
      ...(w.atomic ? { freshLayoutEachRun: true } : {}),
      fileBytes: w.file === 'shared' ? target.fileSize : undefined,
      secondsPerRun: seconds,
      runs: env.opts.runs,
    },
    runs: [],
    median: null,
    spread: null,
    notes: [],
  };
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // the run reports its own errors
  }
}

/** Runs every selected workload on `target`; returns one record per (workload, contender). */
export async function runWorkloads(target: FsTarget, workloads: readonly Workload[], env: SuiteEnv): Promise<RowRecord[]> {
  const { opts, progress } = env;
  const out: RowRecord[] = [];
  const freshFile = path.join(target.dir, 'bench-fresh.dat');
  for (const w of executionOrder(workloads)) {
    const contenders = contendersFor(w, opts.contenders);
    // Cached rows are bounded by size; give them room to write it all, still bounded in time.
    const seconds = w.kind === 'cached' ? opts.seconds * 3 : opts.seconds;
    const records = new Map(contenders.map((c) => [c, newRecord(w, target, c, env, seconds)] as const));
    const nobody = rowUnsupported(w, target);
    if (nobody) {
      for (const rec of records.values()) {
        rec.status = 'unsupported';
        rec.reason = nobody.reason;
        if (nobody.detail) rec.notes.push(nobody.detail);
      }
      progress.advance(contenders.length * opts.runs);
    } else {
      for (let run = 1; run <= opts.runs; run++) {
        for (const c of rotate(contenders, run)) {
          const rec = records.get(c)!;
          if (rec.status !== 'ok') {
            progress.advance();
            continue;
          }
          if (isInterrupted()) throw new Error('interrupted');
          progress.step(`${rec.id} · ${rec.label}${opts.runs > 1 ? ` · run ${run}/${opts.runs}` : ''}`);
          const ctx: RunContext = {
            workload: w,
            target,
            seconds,
            freshFile,
            appendCapBytes: opts.appendCapMiB * MiB,
            bufferedBytes: opts.bufferedMiB * MiB,
            tools: env.tools,
            fio: env.fio,
          };
          let atomicFile: Record<string, number> | undefined;
          try {
            if (w.atomic) {
              // Atomic writes without hardware support are copy-on-write on XFS: each run leaves
              // the file fragmented and CoW blocks reserved (later runs get slower, then ENOSPC).
              // Every contender starts from a freshly laid-out file instead.
              atomicFile = await freshAtomicFile(target, w.bs);
            } else if (w.file === 'shared') await dropCache(target.sharedFile);
            else {
              removeQuietly(freshFile);
              if (w.kind === 'append' && w.prealloc && c === 'node-fs') {
                // node:fs has no fallocate: the harness preallocates, outside the timed part.
                const f = await open(freshFile, { create: true, truncate: true, direct: false, engine: 'threadpool' });
                await f.allocate(0, ctx.appendCapBytes).finally(() => f.close());
              }
            }
            const watch = atomicFile ? watchFreeSpace(target.dir) : undefined;
            const result = await runContender(c, ctx).finally(() => {
              if (atomicFile && watch) atomicFile.lowestFreeMiB = watch.stop() / MiB;
            });
            if (atomicFile) result.details = { ...result.details, atomicFile };
            if (w.kind === 'cached') result.pagesLeft = cachedPages(freshFile, env.tools.fincore);
            rec.runs.push(toRun(run, result));
          } catch (e) {
            if (isInterrupted()) throw e;
            rec.status = isUnsupported(e) ? 'unsupported' : 'error';
            rec.reason = message(e);
            if (rec.status === 'error') progress.log(`  ${rec.id} ${rec.label}: ERROR ${rec.reason}`);
          } finally {
            if (w.file === 'fresh') removeQuietly(freshFile);
            progress.advance();
          }
        }
      }
    }
    for (const rec of records.values()) {
      summarize(rec);
      out.push(rec);
    }
  }
  // Table order: the issue's order of workloads, contenders as listed.
  const order = new Map(workloads.map((w, i) => [w.id, i]));
  return out.sort((a, b) => order.get(a.workload)! - order.get(b.workload)!);
}

/** The file-level capabilities of the target (the shared file if there is one, else the directory). */
export async function targetCapabilities(file: string | undefined, dir: string): Promise<FsTarget['caps']> {
  return probe(file && fs.existsSync(file) ? file : dir);
}
