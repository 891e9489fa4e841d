// Aligned memory in ordinary ArrayBuffers: over-allocate, ask the addon how
// far the data is from an aligned address, return the aligned view. V8's
// sandbox (Electron, future Node) refuses external memory, so no posix_memalign.
import { constants } from 'node:buffer';
import { OdirectError } from './errors';
import { native } from './native';
import { checkPosition, rangeError, typeError } from './validate';

const DEFAULT_ALIGNMENT = 4096;
const BUFFER_MAX_LENGTH = constants.MAX_LENGTH;

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** True when the view's first byte sits at a multiple of `alignment` (0 or 1: no requirement). */
export function isMemoryAligned(view: ArrayBufferView, alignment: number): boolean {
  // Checked here, so that bad input is an ArgumentError rather than the addon's TypeError/RangeError.
  if (!ArrayBuffer.isView(view)) throw typeError('view', 'an ArrayBufferView (Buffer, TypedArray or DataView)', view);
  if (typeof alignment !== 'number') throw typeError('alignment', 'a number', alignment);
  if (alignment !== 0 && !isPowerOfTwo(alignment)) throw rangeError('alignment', 'a power of two (or 0)', alignment);
  return alignment <= 1 || native.addressModulo(view, alignment) === 0;
}

/**
 * A zero-filled Buffer of `size` bytes whose address is a multiple of
 * `alignment` (default 4096: enough for every device's DMA and page rules).
 */
export function alignedBuffer(size: number, alignment = DEFAULT_ALIGNMENT): Buffer {
  checkPosition(size, 'size');
  if (size === 0) throw rangeError('size', 'greater than 0', size);
  if (!isPowerOfTwo(alignment) || alignment > 1 << 20) {
    throw rangeError('alignment', 'a power of two no larger than 1 MiB', alignment);
  }
  // Buffer.alloc's own refusals are plain RangeErrors: refuse first, as an ArgumentError.
  if (size > BUFFER_MAX_LENGTH - alignment) throw rangeError('size', `at most ${BUFFER_MAX_LENGTH - alignment} with alignment ${alignment}`, size);
  let backing: Buffer;
  try {
    backing = Buffer.alloc(size + alignment);
  } catch (err) {
    throw new OdirectError('ENOMEM', `cannot allocate ${size + alignment} bytes for an aligned buffer: ${(err as Error).message}`, { cause: err });
  }
  const skip = (alignment - native.addressModulo(backing, alignment)) % alignment;
  return backing.subarray(skip, skip + size);
}
