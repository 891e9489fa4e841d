// Aligned bounce buffers, pooled by power-of-two size class so steady-state
// I/O allocates nothing. Buffers come back dirty: callers overwrite or zero.
// When this thread has an io_uring ring, new buffers come from its registered
// memory, so bounced I/O goes out as WRITE_FIXED.
import { alignedBuffer } from '../aligned';
import { existingUringEngine } from '../engines/uring';

const POOL_ALIGNMENT = 4096; // a multiple of every dio_mem_align seen in practice (512)
const MAX_POOLED_BYTES = 64 << 20;
const MAX_PER_CLASS = 64;

function sizeClass(size: number): number {
  let c = POOL_ALIGNMENT;
  while (c < size) c *= 2;
  return c;
}

export class BouncePool {
  private readonly free = new Map<number, Buffer[]>();
  // The whole size-class buffer behind each view handed out. The pool keeps
  // these exact objects: a registered-memory slot is reclaimed when its object
  // is collected, so the pool must hold that object, not a copy of the view.
  private readonly owners = new WeakMap<Uint8Array, Buffer>();
  private pooledBytes = 0;
  /** Buffers made, not reused: flat in steady state. */
  allocations = 0;

  /** A buffer of exactly `size` bytes, 4 KiB-aligned. */
  acquire(size: number): Buffer {
    const cls = sizeClass(size);
    let whole = this.free.get(cls)?.pop();
    if (whole) {
      this.pooledBytes -= cls;
    } else {
      this.allocations++;
      whole = existingUringEngine()?.arena?.acquire(cls) ?? alignedBuffer(cls, POOL_ALIGNMENT);
    }
    const view = whole.subarray(0, size);
    this.owners.set(view, whole);
    return view;
  }

  /** Returns a buffer from acquire(); it must no longer be in flight. */
  release(view: Uint8Array): void {
    const whole = this.owners.get(view);
    if (!whole) return;
    this.owners.delete(view);
    const cls = whole.byteLength;
    const list = this.free.get(cls) ?? [];
    if (list.length >= MAX_PER_CLASS || this.pooledBytes + cls > MAX_POOLED_BYTES) return; // dropped: GC reclaims it
    list.push(whole);
    this.free.set(cls, list);
    this.pooledBytes += cls;
  }
}

/** One pool per thread (module instance), shared by every file. */
export const bouncePool = new BouncePool();
