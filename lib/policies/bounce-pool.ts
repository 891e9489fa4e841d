// Aligned bounce buffers, pooled by power-of-two size class so steady-state
// I/O allocates nothing. Buffers come back dirty: callers overwrite or zero.
import { alignedBuffer } from '../aligned';

const POOL_ALIGNMENT = 4096; // a multiple of every dio_mem_align seen in practice (512)
const MAX_POOLED_BYTES = 64 << 20;
const MAX_PER_CLASS = 64;

function sizeClass(size: number): number {
  let c = POOL_ALIGNMENT;
  while (c < size) c *= 2;
  return c;
}

export class BouncePool {
  private free = new Map<number, Buffer[]>();
  private pooledBytes = 0;
  allocations = 0;

  constructor(private readonly alignment = POOL_ALIGNMENT) {}

  /** A buffer of exactly `size` bytes, aligned to the pool's alignment. */
  acquire(size: number): Buffer {
    const cls = sizeClass(size);
    const list = this.free.get(cls);
    const pooled = list?.pop();
    if (pooled) {
      this.pooledBytes -= cls;
      return pooled.subarray(0, size);
    }
    this.allocations++;
    return alignedBuffer(cls, Math.max(this.alignment, POOL_ALIGNMENT)).subarray(0, size);
  }

  /** Returns a buffer from acquire(); it must no longer be in flight. */
  release(buffer: Buffer): void {
    const full = Buffer.from(buffer.buffer, buffer.byteOffset, sizeClass(buffer.byteLength));
    const cls = full.byteLength;
    const list = this.free.get(cls) ?? [];
    if (list.length >= MAX_PER_CLASS || this.pooledBytes + cls > MAX_POOLED_BYTES) return;
    list.push(full);
    this.free.set(cls, list);
    this.pooledBytes += cls;
  }
}

/** One pool per thread (module instance), shared by every file. */
export const bouncePool = new BouncePool();
