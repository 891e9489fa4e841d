// Byte-range lock for direct writes. A read-modify-write holds its blocks
// exclusively, so two sub-block writes to one block never interleave and no
// aligned write lands between its read and its write (XFS serialises unaligned
// direct I/O for the same reason, docs/kernel-facts.md §7). Aligned writes share.
// FIFO: a request waits only for earlier, overlapping, conflicting ones, so
// there is no starvation and no deadlock.
// On the write path: an uncontended acquire allocates one small entry and no
// promise; a promise exists only for a request that really waits.

interface Entry {
  start: number;
  end: number;
  exclusive: boolean;
  /** Wake-ups of later requests waiting for this one; made only when one waits. */
  waiters?: Array<() => void>;
}

export type Release = () => void;

export class RangeLock {
  private entries = new Set<Entry>();
  private exclusiveCount = 0;

  /** The release function at once when nothing conflicts, else a promise of it. */
  acquire(start: number, end: number, exclusive: boolean): Release | Promise<Release> {
    const entry: Entry = { start, end, exclusive };
    // Shared requests while no exclusive entry exists conflict with nothing.
    const waits: Promise<void>[] = [];
    if (exclusive || this.exclusiveCount > 0) {
      for (const other of this.entries) {
        if (other.start < end && start < other.end && (exclusive || other.exclusive)) {
          waits.push(new Promise<void>((wake) => (other.waiters ??= []).push(wake)));
        }
      }
    }
    this.entries.add(entry);
    if (exclusive) this.exclusiveCount++;
    const release: Release = () => {
      if (!this.entries.delete(entry)) return;
      if (entry.exclusive) this.exclusiveCount--;
      if (entry.waiters) for (const wake of entry.waiters) wake();
    };
    return waits.length === 0 ? release : Promise.all(waits).then(() => release);
  }
}
