// One region of aligned memory registered with the ring as fixed buffer 0, so
// I/O from it uses WRITE_FIXED/READ_FIXED (no page pinning per I/O). Carved
// first-fit into 4 KiB pages; a slot comes back by release() or, if the caller
// drops it, when its Buffer is collected (FinalizationRegistry).

const PAGE = 4096;

interface Slot {
  first: number;
  pages: number;
}

export class FixedArena {
  readonly memory: Buffer;
  private readonly used: Uint8Array;
  private readonly slots = new WeakMap<Uint8Array, Slot>();
  private readonly registry = new FinalizationRegistry<Slot>((slot) => this.free(slot));
  private cursor = 0;

  constructor(memory: Buffer) {
    this.memory = memory;
    this.used = new Uint8Array(Math.floor(memory.byteLength / PAGE));
  }

  /** True when `view` lies inside the registered region. */
  contains(view: Uint8Array): boolean {
    return view.buffer === this.memory.buffer && view.byteOffset >= this.memory.byteOffset &&
      view.byteOffset + view.byteLength <= this.memory.byteOffset + this.memory.byteLength;
  }

  /** A page-aligned buffer of `size` bytes from the region, or undefined when it is full. */
  acquire(size: number): Buffer | undefined {
    const pages = Math.ceil(size / PAGE);
    const first = this.findRun(pages);
    if (first < 0) return undefined;
    this.used.fill(1, first, first + pages);
    this.cursor = first + pages;
    const buffer = this.memory.subarray(first * PAGE, first * PAGE + size);
    const slot = { first, pages };
    this.slots.set(buffer, slot);
    this.registry.register(buffer, slot, buffer);
    return buffer;
  }

  /** Gives a buffer from acquire() back; false if it was not one. */
  release(buffer: Uint8Array): boolean {
    const slot = this.slots.get(buffer);
    if (!slot) return false;
    this.slots.delete(buffer);
    this.registry.unregister(buffer);
    this.free(slot);
    return true;
  }

  private free(slot: Slot): void {
    this.used.fill(0, slot.first, slot.first + slot.pages);
  }

  // Next-fit from the cursor, wrapping once.
  private findRun(pages: number): number {
    const total = this.used.length;
    for (let pass = 0; pass < 2; pass++) {
      let run = 0;
      for (let i = pass === 0 ? this.cursor : 0; i < total; i++) {
        run = this.used[i] ? 0 : run + 1;
        if (run === pages) return i - pages + 1;
      }
    }
    return -1;
  }
}
