// Writing back and dropping a range of the page cache, for the buffered paths:
// the fallback (nothing stale left cached) and the cache modes. Writeback
// errors (EIO, ENOSPC) come back from sync_file_range(WAIT_AFTER) and are
// thrown to the caller, as Chinner asked of RWF_UNCACHED.
import { C, native } from '../native';
import type { Engine } from '../engines/engine';

const WRITE_AND_WAIT = () =>
  C.SYNC_FILE_RANGE_WAIT_BEFORE | C.SYNC_FILE_RANGE_WRITE | C.SYNC_FILE_RANGE_WAIT_AFTER;

/** Starts writeback of [offset, offset+length) and waits for it. Pages stay cached. */
export async function writeBackRange(engine: Engine, fd: number, offset: number, length: number): Promise<void> {
  await engine.syncFileRange(fd, offset, length, WRITE_AND_WAIT());
}

/**
 * Writes the range back, waits, then drops it from the page cache. The range
 * is widened to whole pages: writeback covers the pages the range touches, so
 * the edge pages are clean, and POSIX_FADV_DONTNEED drops only whole pages
 * inside the range it is given. length 0 means "to the end of the file".
 */
export async function writeBackAndDrop(engine: Engine, fd: number, offset: number, length: number): Promise<void> {
  const page = native.pageSize;
  const start = offset - (offset % page);
  const span = length === 0 ? 0 : Math.ceil((offset + length) / page) * page - start;
  await writeBackRange(engine, fd, start, span);
  await native.fadvise(fd, start, span, C.POSIX_FADV_DONTNEED);
}
