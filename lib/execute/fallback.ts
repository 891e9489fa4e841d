// Fallback to buffered I/O (docs/kernel-facts.md §7, §8): where a direct write cannot be
// done (short write, no direct I/O on this filesystem) the rest goes through
// the page cache, and that range is then written back and dropped so the
// cache holds nothing stale for later direct reads. Loops until done or an
// error: a buffered write only comes back short at EOF-of-device or ENOSPC,
// and then the next call says which.
import type { Engine } from '../engines/engine';
import { OdirectError } from '../errors';
import { writeBackAndDrop } from './writeback';

/** Views of `chunks` starting `skip` bytes in. */
export function skipBytes(chunks: readonly Uint8Array[], skip: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  for (const chunk of chunks) {
    if (skip >= chunk.byteLength) {
      skip -= chunk.byteLength;
      continue;
    }
    rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
    skip = 0;
  }
  return rest;
}

/**
 * Writes bytes [done, length) of `chunks` at position+done through the
 * buffered fd, then writes back and drops every page that dirtied: the
 * written range, and the old end-of-file page when the write started past it.
 */
export async function finishBuffered(
  engine: Engine,
  bufferedFd: number,
  chunks: readonly Uint8Array[],
  position: number,
  length: number,
  done: number,
  rwflags: number,
  /** Where the dirtied pages begin: the route's page lock start (the old EOF page for a write past EOF). */
  dirtiedStart: number,
  /** The caller's AbortSignal: writes not yet issued when it fires are not issued. */
  signal?: AbortSignal,
): Promise<void> {
  const from = Math.min(dirtiedStart, position + done);
  while (done < length) {
    const written = await engine.writev(bufferedFd, skipBytes(chunks, done), position + done, rwflags, signal);
    if (written <= 0) {
      throw new OdirectError('ERR_SHORT_WRITE', `buffered write at ${position + done} wrote nothing`, {
        position: position + done,
        length: length - done,
      });
    }
    done += written;
  }
  await writeBackAndDrop(engine, bufferedFd, from, position + length - from);
}
