// odirect itself, through its public API, on the io_uring or the thread-pool engine.
import { alignedBuffer, open, type DirectFile } from '../library';
import type { EngineName, WriteOptions } from '../library';
import { cpuSince, drive, offsetSource, randomBuffers, STOP } from '../drive';
import { isInterrupted } from '../cleanup';
import { LatencyRecorder } from '../stats';
import type { RunContext, RunResult } from '../types';

function statsDetails(f: DirectFile, buffered: number): Record<string, unknown> {
  return { engine: f.engine, direct: f.direct, stats: { ...f.stats }, writesThatWentBuffered: buffered };
}

export async function runOdirect(engine: EngineName, ctx: RunContext): Promise<RunResult> {
  switch (ctx.workload.kind) {
    case 'random':
    case 'sequential':
      return sharedFile(engine, ctx);
    case 'append':
      return append(engine, ctx);
    case 'cached':
      return cached(engine, ctx);
    case 'copy':
    case 'replace':
      throw new Error(`${ctx.workload.kind} rows run in contenders/streams.ts`);
  }
}

async function sharedFile(engine: EngineName, ctx: RunContext): Promise<RunResult> {
  const w = ctx.workload;
  const f = await open(ctx.target.sharedFile, { engine, readOnly: w.op === 'read' });
  try {
    const notes: string[] = [];
    if (!f.direct) notes.push(`no direct I/O here (${f.capabilities.direct.reason ?? 'unknown'}): odirect wrote buffered`);
    const buffers = randomBuffers(w.depth, () => alignedBuffer(w.bs));
    const nextOffset = offsetSource(w.kind === 'sequential' ? 'sequential' : 'random', ctx.target.fileSize, w.bs);
    const options: WriteOptions | undefined = w.dsync || w.atomic ? { dsync: w.dsync || undefined, atomic: w.atomic || undefined } : undefined;
    let buffered = 0;
    const r =
      w.op === 'read'
        ? await drive(w.depth, ctx.seconds, async (i) => {
            const n = await f.read(buffers[i]!, nextOffset());
            if (n !== w.bs) throw new Error(`short read: ${n} of ${w.bs} bytes`);
            return n;
          })
        : await drive(w.depth, ctx.seconds, async (i) => {
            const res = await f.write(buffers[i]!, nextOffset(), options);
            if (res.path !== 'direct') buffered++;
            return res.bytesWritten;
          });
    if (buffered) notes.push(`${buffered} of ${r.ops} writes went through the page cache`);
    return { ...r, notes, details: statsDetails(f, buffered) };
  } finally {
    await f.close();
  }
}

async function append(engine: EngineName, ctx: RunContext): Promise<RunResult> {
  const w = ctx.workload;
  const f = await open(ctx.freshFile, { engine, create: true, truncate: true });
  try {
    const notes: string[] = [];
    if (w.prealloc) await f.allocate(0, ctx.appendCapBytes);
    const [buffer] = randomBuffers(1, () => alignedBuffer(w.bs));
    let position = 0;
    let buffered = 0;
    const r = await drive(1, ctx.seconds, async () => {
      if (position + w.bs > ctx.appendCapBytes) return STOP;
      const res = await f.write(buffer!, position, { dsync: true });
      if (res.path !== 'direct') buffered++;
      position += w.bs;
      return res.bytesWritten;
    });
    if (position + w.bs > ctx.appendCapBytes) notes.push(`reached the ${ctx.appendCapBytes >> 20} MiB cap before the time limit`);
    if (buffered) notes.push(`${buffered} of ${r.ops} writes went through the page cache`);
    return { ...r, notes, details: statsDetails(f, buffered) };
  } finally {
    await f.close();
  }
}

async function cached(engine: EngineName, ctx: RunContext): Promise<RunResult> {
  const w = ctx.workload;
  const f = await open(ctx.freshFile, { engine, create: true, truncate: true, direct: false });
  try {
    const notes: string[] = [];
    const [buffer] = randomBuffers(1, () => alignedBuffer(w.bs));
    const options: WriteOptions | undefined = w.cache === 'dontcache' ? { cache: 'dontcache' } : undefined;
    if (w.cache === 'dontcache' && !f.capabilities.dontcache) notes.push('RWF_DONTCACHE unavailable: odirect emulated it (sync_file_range + fadvise)');
    let position = 0;
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    const r = await drive(1, ctx.seconds, async () => {
      if (position >= ctx.bufferedBytes) return STOP;
      const res = await f.write(buffer!, position, options);
      position += w.bs;
      return res.bytesWritten;
    });
    await f.sync({ dataOnly: true });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    // The fdatasync is part of the work (as for MiB/s); write-back the flusher threads did before it is not counted.
    const cpu = cpuSince(cpuStart);
    if (r.bytes < ctx.bufferedBytes) notes.push(`time limit: wrote ${r.bytes >> 20} of ${ctx.bufferedBytes >> 20} MiB`);
    if (f.stats.bufferedFallback > 0) {
      notes.push(`${f.stats.bufferedFallback} writes took the buffered-fallback path (written back and dropped each time)`);
    }
    return { ...r, seconds, cpu, notes, details: { ...statsDetails(f, r.ops), writeSeconds: r.seconds } };
  } finally {
    await f.close();
  }
}

/**
 * DirectFile.writeSync / readSync at depth 1 on the shared file (issue 14): one
 * call after another on this thread, no event-loop wake-up between them. The
 * loop yields to the event loop every 64 calls so a signal can stop it.
 */
export async function runOdirectSync(ctx: RunContext): Promise<RunResult> {
  const w = ctx.workload;
  if (w.depth !== 1 || (w.kind !== 'random' && w.kind !== 'sequential')) throw new Error('odirect-sync runs the depth-1 shared-file rows only');
  const f = await open(ctx.target.sharedFile, { engine: 'uring', readOnly: w.op === 'read' });
  try {
    const notes: string[] = [];
    const [buffer] = randomBuffers(1, () => alignedBuffer(w.bs));
    const nextOffset = offsetSource(w.kind, ctx.target.fileSize, w.bs);
    const options: WriteOptions | undefined = w.dsync || w.atomic ? { dsync: w.dsync || undefined, atomic: w.atomic || undefined } : undefined;
    const lat = new LatencyRecorder();
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(ctx.seconds * 1e9));
    let ops = 0;
    let bytes = 0;
    for (;;) {
      if (process.hrtime.bigint() >= deadline || isInterrupted()) break;
      for (let i = 0; i < 64; i++) {
        const t0 = process.hrtime.bigint();
        const n = w.op === 'read' ? f.readSync(buffer!, nextOffset()) : f.writeSync(buffer!, nextOffset(), options);
        lat.add(Number(process.hrtime.bigint() - t0));
        if (n !== w.bs) throw new Error(`short ${w.op}: ${n} of ${w.bs} bytes`);
        ops++;
        bytes += n;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = cpuSince(cpuStart);
    const [p50, p99] = lat.percentiles([50, 99]);
    return { ops, bytes, seconds, p50Ns: p50 ?? null, p99Ns: p99 ?? null, cpu, notes, details: statsDetails(f, 0) };
  } finally {
    await f.close();
  }
}
