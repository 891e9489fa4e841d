// The ring's registered memory (fixed buffer 0), allocated and carved in the
// native layer (native/owned.cc): each slot is whole 4 KiB pages handed out as
// its own ArrayBuffer, so a slot's `.buffer` is that slot alone, and it goes
// back to the region only when no JS view of it and no op in flight remains
// (its reference count, not a JS object's lifetime). I/O from a slot uses
// WRITE_FIXED/READ_FIXED (no page pinning per I/O).
import { markOwned } from '../aligned';
import { native } from '../native';

export class FixedArena {
  private readonly slots = new WeakSet<ArrayBufferLike>();

  /** True when `view` lies in a slot of the registered region. */
  contains(view: Uint8Array): boolean {
    return this.slots.has(view.buffer);
  }

  /** A page-aligned, zeroed buffer of `size` bytes from the region, or undefined when it is full. */
  acquire(size: number): Buffer | undefined {
    const slot = native.uringArenaAcquire(size);
    if (!slot) return undefined;
    markOwned(slot, 4096); // whole 4 KiB pages of the region (native/owned.cc)
    this.slots.add(slot);
    return Buffer.from(slot, 0, size);
  }

  /**
   * Gives a slot back: detaches its ArrayBuffer, so every JS view of it
   * (subarrays included) goes empty and cannot see its next user's bytes; the
   * pages return once ops in flight on it settle. False if it was not a slot.
   */
  release(buffer: Uint8Array): boolean {
    if (!this.slots.has(buffer.buffer)) return false;
    return native.detachOwned(buffer);
  }
}
