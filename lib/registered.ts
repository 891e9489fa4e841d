// registeredBuffer(): aligned memory from the io_uring ring's registered
// region, so I/O from it goes out as WRITE_FIXED/READ_FIXED. Where there is
// no ring (or the region is full) it is an ordinary aligned buffer: the same
// code works on every engine.
import { alignedBuffer } from './aligned';
import { uringEngine } from './engines/uring';
import { uringAvailability } from './probe/uring';
import { checkPosition, rangeError } from './validate';

/** A 4 KiB-aligned buffer, from the ring's registered memory when there is room. */
export function registeredBuffer(size: number): Buffer {
  checkPosition(size, 'size');
  if (size === 0) throw rangeError('size', 'greater than 0', size);
  const arena = uringAvailability().available ? uringEngine().arena : undefined;
  return arena?.acquire(size) ?? alignedBuffer(size);
}

/**
 * Gives a registeredBuffer() back for reuse: its memory is detached from JS at
 * once (every view of it, subarrays included, becomes empty) and returns to the
 * registered region when I/O in flight on it settles. Without this it returns
 * when collected.
 */
export function releaseBuffer(buffer: Uint8Array): void {
  const arena = uringAvailability().available ? uringEngine().arena : undefined;
  arena?.release(buffer);
}
