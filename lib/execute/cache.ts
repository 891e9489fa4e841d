// Cache modes for buffered writes (docs/kernel-facts.md §4, §8). Neither mode makes
// data durable: that is dsync (RWF_DSYNC) or sync().
// - 'dontcache': RWF_DONTCACHE where the kernel has it (6.14+): pages this
//   write instantiates are dropped once written back. Elsewhere emulated:
//   write, write back and wait, then POSIX_FADV_DONTNEED on the range.
// - 'writethrough': write, then write back that range and wait, pages kept
//   (what the RWF_WRITETHROUGH RFC proposes; not in mainline).
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
): Promise<number> {
  const { engine, fd } = target;
  if (mode === 'dontcache' && target.dontcache) {
    return engine.writev(fd, chunks, position, rwflags | C.RWF_DONTCACHE);
  }
  const written = await engine.writev(fd, chunks, position, rwflags);
  if (written > 0) {
    if (mode === 'dontcache') await writeBackAndDrop(engine, fd, position, written);
    else await writeBackRange(engine, fd, position, written);
  }
  return written;
}
