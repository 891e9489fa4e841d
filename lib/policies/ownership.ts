// Whose memory the kernel would touch, and whether it must be copied first
// (docs/memory.md). An async op runs while JS runs: a plain ArrayBuffer can be
// detached (transfer), shrunk (resizable) or collected meanwhile, and its
// memory reused. Only memory that cannot go away goes to the kernel as it is:
// odirect's own (refcounted by the native layer) and SharedArrayBuffer memory
// (cannot be detached or shrunk). Everything else goes through odirect's own
// memory: copied in before a write, copied out after a read. The native layer
// refuses the rest (ERR_BUFFER_NOT_OWNED), so a route that forgets fails loudly.

export type MemoryKind = 'owned' | 'shared' | 'caller';

/** The kind of memory behind one view; `isOwned` tells odirect's own ArrayBuffers. */
export function memoryKind(view: ArrayBufferView, isOwned: (buffer: ArrayBufferLike) => boolean): MemoryKind {
  const buffer = view.buffer;
  if (isOwned(buffer)) return 'owned';
  if (typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer) return 'shared';
  return 'caller';
}

/** True when any of `buffers` is caller memory: the request goes through a copy in owned memory. */
export function needsOwnedCopy(buffers: readonly ArrayBufferView[], isOwned: (buffer: ArrayBufferLike) => boolean): boolean {
  for (const b of buffers) if (memoryKind(b, isOwned) === 'caller') return true;
  return false;
}

/**
 * True for a view over a resizable (non-shared) ArrayBuffer: it can shrink
 * between the checks and the I/O, turning a 1 MiB read into 4 KiB without a
 * word. Such buffers are refused before any I/O (a growable SharedArrayBuffer
 * never shrinks, so it is accepted).
 */
export function isShrinkable(view: ArrayBufferView): boolean {
  const buffer = view.buffer as ArrayBufferLike & { resizable?: boolean };
  return buffer.resizable === true && !(typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer);
}
