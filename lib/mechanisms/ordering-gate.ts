// Ordering, as the kernel does it for iomap direct I/O (docs/kernel-facts.md §7, §8):
// - every file counts its I/O in flight (inode_dio_begin/end) from the moment
//   it is issued; truncate and close wait for zero, and I/O issued after they
//   were called starts only when they are done;
// - writes that end past the size the file knows are serialised: each waits
//   for the previous one to complete; the caller truncates a failed one back.
// Which writes extend is judged against the size the handle knows (KnownSize).
import type { KnownSize } from './known-size';

export class OrderingGate {
  private issued = 0;
  private idleWaiters: Array<() => void> = [];
  private barrier: Promise<void> | undefined;
  private extendTail: Promise<void> = Promise.resolve();
  constructor(private readonly size: KnownSize) {}

  get inFlight(): number {
    return this.issued;
  }

  /** A truncate or close is waiting or running: I/O issued now must come after it. */
  get barred(): boolean {
    return this.barrier !== undefined;
  }

  /** Counts `io` from now until it settles. No await before the count when no barrier is up. */
  async run<T>(io: () => Promise<T>): Promise<T> {
    while (this.barrier) await this.barrier;
    this.issued++;
    try {
      return await io();
    } finally {
      this.leave();
    }
  }

  /**
   * The fast path's count (execute/write.ts, execute/read.ts): counts one I/O in
   * flight at once and returns true, or returns false while a barrier (truncate,
   * close) is up, when the caller takes the ordinary path and waits. Each true
   * is matched by one leave() when the I/O settles.
   */
  tryEnter(): boolean {
    if (this.barrier) return false;
    this.issued++;
    return true;
  }

  leave(): void {
    if (--this.issued === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /**
   * A write that puts bytes on disk up to `reach` and leaves the file at least
   * `end` long (reach > end for a read-modify-write of a partial last block).
   * Reaching past the known size it waits for earlier extending writes and
   * completes before the next one starts. `io` gets the size before it.
   */
  write<T>(reach: number, end: number, io: (sizeBefore: number) => Promise<T>): Promise<T> {
    return this.run(async () => {
      if (reach <= this.size.value) return io(this.size.value);
      const previous = this.extendTail;
      let release!: () => void;
      this.extendTail = new Promise<void>((resolve) => (release = resolve));
      try {
        await previous;
        const result = await io(this.size.value);
        this.size.grow(end);
        return result;
      } finally {
        release();
      }
    });
  }

  drain(): Promise<void> {
    if (this.issued === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Runs `action` (truncate, close) after all I/O issued before it, and before any issued after. */
  async exclusive<T>(action: () => Promise<T>): Promise<T> {
    while (this.barrier) await this.barrier;
    let release!: () => void;
    this.barrier = new Promise<void>((resolve) => (release = resolve));
    try {
      await this.drain();
      return await action();
    } finally {
      this.barrier = undefined;
      release();
    }
  }
}
