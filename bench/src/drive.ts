// The load generator of the in-process contenders (odirect, node:fs): `depth`
// async workers, each awaiting its own I/O, so exactly `depth` are in flight.
// Bounded by time (and by the operation itself, which can end the run).
import { randomFillSync } from 'node:crypto';
import { isInterrupted } from './cleanup';
import { LatencyRecorder } from './stats';
import type { CpuTime } from './types';

/** Returned by an operation to end its worker (the file is full, the bytes are written). */
export const STOP = -1;

export interface DriveResult {
  ops: number;
  bytes: number;
  seconds: number;
  p50Ns: number | null;
  p99Ns: number | null;
  /** CPU time of this process (every thread: libuv's pool, io_uring's io-wq workers) over the run. */
  cpu: CpuTime;
}

/**
 * CPU time this process used since `start` (a `process.cpuUsage()` reading): user and system
 * time of all its threads (getrusage RUSAGE_SELF), so the libuv pool's and io_uring's io-wq
 * workers' time counts as well as the main thread's.
 */
export function cpuSince(start: NodeJS.CpuUsage): CpuTime {
  const d = process.cpuUsage(start);
  return { userUs: d.user, systemUs: d.system, source: 'process.cpuUsage()' };
}

/**
 * Runs `op(worker)` in `depth` workers until `seconds` have passed or every worker got STOP.
 * `op` resolves to the bytes it moved (or STOP). Latency is measured per call with hrtime.
 */
export async function drive(depth: number, seconds: number, op: (worker: number) => Promise<number>): Promise<DriveResult> {
  const lat = new LatencyRecorder();
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let ops = 0;
  let bytes = 0;
  const worker = async (i: number): Promise<void> => {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= deadline || isInterrupted()) return;
      const moved = await op(i);
      if (moved === STOP) return;
      lat.add(Number(process.hrtime.bigint() - t0));
      ops++;
      bytes += moved;
    }
  };
  await Promise.all(Array.from({ length: depth }, (_, i) => worker(i)));
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = cpuSince(cpuStart);
  const [p50, p99] = lat.percentiles([50, 99]);
  return { ops, bytes, seconds: elapsed, p50Ns: p50 ?? null, p99Ns: p99 ?? null, cpu };
}

/** Buffers full of random bytes (so nothing below can shortcut zeros). */
export function randomBuffers<T extends Uint8Array>(count: number, make: () => T): T[] {
  return Array.from({ length: count }, () => {
    const b = make();
    randomFillSync(b);
    return b;
  });
}

/** Offsets for random rows (uniform, aligned to bs) and sequential rows (wrapping at the end). */
export function offsetSource(kind: 'random' | 'sequential', fileSize: number, bs: number): () => number {
  const blocks = Math.floor(fileSize / bs);
  if (blocks < 1) throw new Error(`the file (${fileSize} bytes) is smaller than one ${bs}-byte block`);
  if (kind === 'random') return () => Math.floor(Math.random() * blocks) * bs;
  let next = 0;
  return () => {
    const pos = next * bs;
    next = (next + 1) % blocks;
    return pos;
  };
}
