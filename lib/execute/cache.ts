// Cache modes for buffered writes (docs/kernel-facts.md §4, §8). Neither mode makes
// data durable: that is dsync (RWF_DSYNC) or sync().
// - 'dontcache': RWF_DONTCACHE where the kernel has it (6.14+): pages this
//   write instantiates are dropped once written back. Elsewhere emulated:
//   write, write back and wait, then POSIX_FADV_DONTNEED on the range.
// - 'writethrough': write, then write back that range and wait, pages kept
//   (what the RWF_WRITETHROUGH RFC proposes; not in mainline).
// A write that starts past EOF also dirties the old EOF page (the kernel
// zeroes it past the old size): "that range" starts there (docs/page-cache-collisions.md).
import type { Engine } from '../engines/engine';
import { C } from '../native';
import type { CacheMode } from '../types';
import { writeBackAndDrop, writeBackRange } from './writeback';

export interface BufferedTarget {
  engine: Engine;
  fd: number;
  /** RWF_DONTCACHE works on this filesystem (probed). */
  dontcache: boolean;
}

/** Writes `chunks` through the page cache in the given mode; returns bytes written. */
export async function writeCached(
  target: BufferedTarget,
  mode: Exclude<CacheMode, 'default'>,
  chunks: Uint8Array[],
  position: number,
  rwflags: number,
  /** Where the pages the write dirties begin: the route's page lock start (the old EOF page for a write past EOF). */
  from: number,
  /** The caller's AbortSignal: aborted before the write is issued, it never is. */
  signal?: AbortSignal,
): Promise<number> {
  const { engine, fd } = target;
  if (mode === 'dontcache' && target.dontcache) {
    const written = await engine.writev(fd, chunks, position, rwflags | C.RWF_DONTCACHE, signal);
    // The written pages go once written back; the old EOF page was dirtied by
    // the kernel's zeroing, not as a dontcache page, so it would stay.
    if (written > 0 && from < position) await writeBackAndDrop(engine, fd, from, 1);
    return written;
  }
  const written = await engine.writev(fd, chunks, position, rwflags, signal);
  if (written > 0) {
    if (mode === 'dontcache') await writeBackAndDrop(engine, fd, from, position + written - from);
    else await writeBackRange(engine, fd, from, position + written - from);
  }
  return written;
}
