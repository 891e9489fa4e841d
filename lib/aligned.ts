// Aligned memory that odirect owns (docs/memory.md): allocated natively
// (posix_memalign) and handed to JS as an external ArrayBuffer whose memory is
// reference-counted: JS holds one reference, every op in flight one more, so a
// transfer, detach or collection in JS never frees memory the kernel uses.
// Where the runtime refuses external memory (V8's sandbox: Electron, future
// Node) it is a SharedArrayBuffer instead, which cannot be detached.
import { constants } from 'node:buffer';
import { OdirectError, withContext } from './errors';
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

// The ArrayBuffers of odirect memory, with the alignment of their first byte's
// address, shared by every copy of this module that loaded the same addon (kept
// on the addon's exports), so a buffer from one copy is recognised by another.
const OWNED_MAP = Symbol.for('odirect.ownedArrayBufferAlignment');
const ownedArrayBuffers: WeakMap<ArrayBufferLike, number> = ((native as unknown as Record<symbol, WeakMap<ArrayBufferLike, number>>)[OWNED_MAP] ??=
  new WeakMap());

/** Marks an ArrayBuffer as odirect memory whose address is a multiple of `baseAlignment` (the registered arena's slots: pages). */
export function markOwned(buffer: ArrayBuffer, baseAlignment: number): void {
  ownedArrayBuffers.set(buffer, baseAlignment);
}

/** True when the kernel may use this buffer's memory in flight without a copy: odirect's own, or shared. */
export function isOwnedMemory(buffer: ArrayBufferLike): boolean {
  return ownedArrayBuffers.has(buffer);
}

/**
 * Whether the view's address is a multiple of `alignment` (a power of two). For
 * odirect's own memory the base's alignment is known, so it is the byte
 * offset's arithmetic, with no call into the addon (this runs for every direct
 * write: issue 14); other memory asks the addon for the address.
 */
export function addressAligned(view: ArrayBufferView, alignment: number): boolean {
  if (alignment <= 1) return true;
  const base = ownedArrayBuffers.get(view.buffer);
  if (base !== undefined && base % alignment === 0) return view.byteOffset % alignment === 0;
  return native.addressModulo(view, alignment) === 0;
}

/**
 * A zero-filled Buffer of `size` bytes whose address is a multiple of
 * `alignment` (default 4096: enough for every device's DMA and page rules).
 * Its `.buffer` covers exactly this allocation (no other buffer's memory).
 */
export function alignedBuffer(size: number, alignment = DEFAULT_ALIGNMENT): Buffer {
  checkPosition(size, 'size');
  if (size === 0) throw rangeError('size', 'greater than 0', size);
  if (!isPowerOfTwo(alignment) || alignment > 1 << 20) {
    throw rangeError('alignment', 'a power of two no larger than 1 MiB', alignment);
  }
  // Past this a Buffer cannot view it (Buffer.from's refusal would be a plain RangeError).
  if (size > BUFFER_MAX_LENGTH - alignment) throw rangeError('size', `at most ${BUFFER_MAX_LENGTH - alignment} with alignment ${alignment}`, size);
  let external: ArrayBuffer | undefined;
  try {
    external = native.allocOwned(size, alignment);
  } catch (err) {
    throw withContext(err, { length: size }); // ENOMEM from posix_memalign: an OdirectError
  }
  if (external) {
    // posix_memalign(alignment): that alignment is what is known of the address (it may be more).
    ownedArrayBuffers.set(external, alignment);
    return Buffer.from(external, 0, size);
  }
  let sharedMemory: SharedArrayBuffer;
  try {
    sharedMemory = new SharedArrayBuffer(size + alignment);
  } catch (err) {
    throw new OdirectError('ENOMEM', `cannot allocate ${size + alignment} bytes for an aligned buffer: ${(err as Error).message}`, { cause: err });
  }
  const shared = Buffer.from(sharedMemory);
  const skip = (alignment - native.addressModulo(shared, alignment)) % alignment;
  return shared.subarray(skip, skip + size);
}
