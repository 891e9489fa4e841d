// node:fs, FileHandle.write/read at positions with the same number in flight.
// node:fs cannot get aligned memory for O_DIRECT, so these rows are buffered
// (page cache), with O_DSYNC where the workload is durable; the labels say so.
import { constants, promises as fsp } from 'node:fs';
import { cpuSince, drive, offsetSource, randomBuffers, STOP } from '../drive';
import { Unsupported, type RunContext, type RunResult } from '../types';

export async function runNodeFs(ctx: RunContext): Promise<RunResult> {
  const w = ctx.workload;
  if (w.atomic) throw new Unsupported('node:fs cannot issue RWF_ATOMIC (no pwritev2 flags, no O_DIRECT memory)');
  if (w.kind === 'cached' && w.cache === 'dontcache') throw new Unsupported('node:fs has no RWF_DONTCACHE');
  const dsync = w.dsync ? constants.O_DSYNC : 0;
  const notes: string[] = [];
  if (w.kind === 'random' || w.kind === 'sequential') {
    const fh = await fsp.open(ctx.target.sharedFile, (w.op === 'read' ? constants.O_RDONLY : constants.O_RDWR) | dsync);
    try {
      const buffers = randomBuffers(w.depth, () => Buffer.alloc(w.bs));
      const nextOffset = offsetSource(w.kind, ctx.target.fileSize, w.bs);
      const r = await drive(w.depth, ctx.seconds, async (i) => {
        const { bytesWritten, bytesRead } =
          w.op === 'read'
            ? { bytesRead: (await fh.read(buffers[i]!, 0, w.bs, nextOffset())).bytesRead, bytesWritten: 0 }
            : { bytesWritten: (await fh.write(buffers[i]!, 0, w.bs, nextOffset())).bytesWritten, bytesRead: 0 };
        const n = w.op === 'read' ? bytesRead : bytesWritten;
        if (n !== w.bs) throw new Error(`short ${w.op}: ${n} of ${w.bs} bytes`);
        return n;
      });
      if (w.op === 'write' && !w.dsync) notes.push('buffered: counted when copied to the page cache, not on disk');
      if (w.op === 'read') notes.push('buffered: page-cache hits count (cache dropped before the run)');
      return { ...r, notes };
    } finally {
      await fh.close();
    }
  }
  if (w.kind === 'append') {
    // The harness made (and, for the preallocated row, fallocated) the file: node:fs has no fallocate.
    const fh = await fsp.open(ctx.freshFile, constants.O_RDWR | constants.O_CREAT | dsync, 0o644);
    try {
      const [buffer] = randomBuffers(1, () => Buffer.alloc(w.bs));
      let position = 0;
      const r = await drive(1, ctx.seconds, async () => {
        if (position + w.bs > ctx.appendCapBytes) return STOP;
        const { bytesWritten } = await fh.write(buffer!, 0, w.bs, position);
        if (bytesWritten !== w.bs) throw new Error(`short write: ${bytesWritten} of ${w.bs} bytes`);
        position += w.bs;
        return bytesWritten;
      });
      if (w.prealloc) notes.push('file preallocated by the harness (node:fs has no fallocate)');
      return { ...r, notes };
    } finally {
      await fh.close();
    }
  }
  // cached, default page cache
  const fh = await fsp.open(ctx.freshFile, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o644);
  try {
    const [buffer] = randomBuffers(1, () => Buffer.alloc(w.bs));
    let position = 0;
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    const r = await drive(1, ctx.seconds, async () => {
      if (position >= ctx.bufferedBytes) return STOP;
      const { bytesWritten } = await fh.write(buffer!, 0, w.bs, position);
      position += bytesWritten;
      return bytesWritten;
    });
    await fh.datasync();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = cpuSince(cpuStart);
    if (r.bytes < ctx.bufferedBytes) notes.push(`time limit: wrote ${r.bytes >> 20} of ${ctx.bufferedBytes >> 20} MiB`);
    return { ...r, seconds, cpu, notes, details: { writeSeconds: r.seconds } };
  } finally {
    await fh.close();
  }
}
