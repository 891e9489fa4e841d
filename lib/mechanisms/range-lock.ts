// Byte-range lock for direct writes. A read-modify-write holds its blocks
// exclusively, so two sub-block writes to one block never interleave and no
// aligned write lands between its read and its write (XFS serialises unaligned
// direct I/O for the same reason, docs/kernel-facts.md §7). Aligned writes share.
// FIFO: a request waits only for earlier, overlapping, conflicting ones, so
// there is no starvation and no deadlock.
// On the write path: an uncontended acquire allocates one small entry and no
// promise; a promise exists only for a request that really waits. Entries are
// an intrusive list in arrival order (FIFO), not a Set: adding and removing
// one is then a few pointer moves, with no hashing (issue 14's hot path).

interface Entry {
  start: number;
  end: number;
  exclusive: boolean;
  /** Wake-ups of later requests waiting for this one; made only when one waits. */
  waiters?: Array<() => void>;
  prev: Entry | undefined;
  next: Entry | undefined;
  /** In the list (held or waiting); false once dropped. */
  linked: boolean;
}

export type Release = () => void;
/** An opaque shared hold from holdShared(), given back with drop(). */
export type Hold = object;

export class RangeLock {
  private head: Entry | undefined;
  private tail: Entry | undefined;
  private exclusiveCount = 0;

  private link(entry: Entry): void {
    entry.prev = this.tail;
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
  }

  private unlink(entry: Entry): void {
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = undefined;
  }

  /** The release function at once when nothing conflicts, else a promise of it. */
  acquire(start: number, end: number, exclusive: boolean): Release | Promise<Release> {
    const entry: Entry = { start, end, exclusive, prev: undefined, next: undefined, linked: true };
    // Shared requests while no exclusive entry exists conflict with nothing.
    const waits: Promise<void>[] = [];
    if (exclusive || this.exclusiveCount > 0) {
      for (let other = this.head; other; other = other.next) {
        if (other.start < end && start < other.end && (exclusive || other.exclusive)) {
          waits.push(new Promise<void>((wake) => (other.waiters ??= []).push(wake)));
        }
      }
    }
    this.link(entry);
    if (exclusive) this.exclusiveCount++;
    const release: Release = () => this.drop(entry);
    return waits.length === 0 ? release : Promise.all(waits).then(() => release);
  }

  /**
   * The fast path's hold (execute/write.ts): a shared hold on [start, end) when
   * no overlapping exclusive request is held or waiting, so nothing can conflict; undefined
   * otherwise (then acquire() decides). No closure, no promise: the entry is the
   * token, given back with drop(). It is still registered, so an exclusive
   * request that comes later waits for it.
   */
  holdShared(start: number, end: number): Hold | undefined {
    return this.holdNow(start, end, false);
  }

  /**
   * The same for an exclusive hold (the fast path of an atomic write that must
   * not overlap another, policies/atomic-overlap.ts): when no entry, held or
   * waiting, overlaps [start, end). A request that does not overlap any waiting
   * one can go first without breaking FIFO order among overlapping requests.
   */
  holdExclusive(start: number, end: number): Hold | undefined {
    return this.holdNow(start, end, true);
  }

  private holdNow(start: number, end: number, exclusive: boolean): Hold | undefined {
    if (this.conflicts(start, end, exclusive)) return undefined;
    const entry: Entry = { start, end, exclusive, prev: undefined, next: undefined, linked: true };
    this.link(entry);
    if (exclusive) this.exclusiveCount++;
    return entry;
  }

  /**
   * Whether a request for [start, end) would wait now: an overlapping entry
   * (held or waiting) that conflicts with it. The synchronous API refuses
   * rather than wait (DirectFile.writeSync).
   */
  conflicts(start: number, end: number, exclusive: boolean): boolean {
    if (!exclusive && this.exclusiveCount === 0) return false;
    for (let other = this.head; other; other = other.next) {
      if (other.start < end && start < other.end && (exclusive || other.exclusive)) return true;
    }
    return false;
  }

  /** Gives back a hold (a second drop is a no-op) and wakes the requests that waited for it. */
  drop(hold: Hold): void {
    const entry = hold as Entry;
    if (!entry.linked) return;
    entry.linked = false;
    this.unlink(entry);
    if (entry.exclusive) this.exclusiveCount--;
    if (entry.waiters) for (const wake of entry.waiters) wake();
  }
}

// One lock per file, shared by every DirectFile open on it in this process.
// The page-cache rule (a buffered write holds its whole pages, from the old
// EOF's page when it extends) only works if a direct write through another
// handle of the same file sees that claim: on ext4 an async direct write
// drops i_rwsem before it completes, and a buffered write past EOF meanwhile
// reads, zeroes and dirties the old EOF's page; the direct write's completion
// then fails to invalidate it (EIO in the file's writeback error) and the
// page, read before the direct write landed, can overwrite it
// (docs/page-cache-collisions.md). Other processes are not covered.
const sharedLocks = new Map<string, { lock: RangeLock; handles: number }>();

/** The lock of the file `key` names (device and inode), and how to let go of it when the handle closes. */
export function sharedRangeLock(key: string): { lock: RangeLock; unshare: () => void } {
  let entry = sharedLocks.get(key);
  if (!entry) {
    entry = { lock: new RangeLock(), handles: 0 };
    sharedLocks.set(key, entry);
  }
  entry.handles++;
  const held = entry;
  let shared = true;
  return {
    lock: held.lock,
    unshare: () => {
      if (!shared) return;
      shared = false;
      if (--held.handles === 0 && sharedLocks.get(key) === held) sharedLocks.delete(key);
    },
  };
}

/** Handles sharing locks now (for tests: every close lets go). */
export function sharedRangeLockCount(): number {
  return sharedLocks.size;
}
