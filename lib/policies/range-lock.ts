// Byte-range lock for direct writes. A read-modify-write holds its blocks
// exclusively, so two sub-block writes to one block never interleave and no
// aligned write lands between its read and its write (XFS serialises unaligned
// direct I/O for the same reason, kernel-facts §7). Aligned writes share.
// FIFO: a request waits only for earlier, overlapping, conflicting ones, so
// there is no starvation and no deadlock.

interface Entry {
  start: number;
  end: number;
  exclusive: boolean;
  released: Promise<void>;
}

export class RangeLock {
  private entries = new Set<Entry>();
  private exclusiveCount = 0;

  /** Waits for the range, returns the function that releases it. */
  async acquire(start: number, end: number, exclusive: boolean): Promise<() => void> {
    let release!: () => void;
    const entry: Entry = { start, end, exclusive, released: new Promise<void>((r) => (release = r)) };
    // Fast path: shared requests while no exclusive entry exists conflict with nothing.
    const waits: Promise<void>[] = [];
    if (exclusive || this.exclusiveCount > 0) {
      for (const other of this.entries) {
        if (other.start < end && start < other.end && (exclusive || other.exclusive)) waits.push(other.released);
      }
    }
    this.entries.add(entry);
    if (exclusive) this.exclusiveCount++;
    if (waits.length > 0) await Promise.all(waits);
    return () => {
      if (!this.entries.delete(entry)) return;
      if (entry.exclusive) this.exclusiveCount--;
      release();
    };
  }
}
