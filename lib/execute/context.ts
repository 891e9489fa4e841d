// What the executors work on: one open file's fd, engine, facts and mechanisms.
// DirectFile makes one at open; the executors share it and hold no state of their own.
import { alsoCloseOnCollection } from '../habits';
import { C, native } from '../native';
import type { Engine } from '../engines/engine';
import type { FileFacts, LockRange } from '../policies/route';
import { KnownSize } from '../mechanisms/known-size';
import { OrderingGate } from '../mechanisms/ordering-gate';
import { sharedRangeLock, type RangeLock } from '../mechanisms/range-lock';

export class FileContext {
  readonly size: KnownSize;
  readonly gate: OrderingGate;
  /** Shared with every handle on this file in this process (mechanisms/range-lock.ts). */
  readonly locks: RangeLock;
  /** Lets go of the shared lock; called once the fds are closed. */
  readonly unshareLocks: () => void;
  private bufferedFd: Promise<number> | undefined;

  constructor(
    readonly facts: FileFacts,
    readonly io: Engine,
    readonly fd: number,
    /** The flags the fd was opened with (O_DIRECT among them when it took). */
    private readonly openFlags: number,
    /** Names the file for the shared lock: device and inode, or the block device. */
    fileKey: string,
  ) {
    this.size = new KnownSize(facts.caps.size);
    this.gate = new OrderingGate(this.size);
    ({ lock: this.locks, unshare: this.unshareLocks } = sharedRangeLock(fileKey));
  }

  get path(): string {
    return this.facts.path;
  }

  /** A buffered fd: the main one when it is not O_DIRECT, else a second one opened on first use. */
  buffered(): Promise<number> {
    if (!(this.openFlags & C.O_DIRECT)) return Promise.resolve(this.fd);
    // Reopened through /proc/self/fd: the same inode even if the path was renamed or unlinked.
    this.bufferedFd ??= native
      .open(`/proc/self/fd/${this.fd}`, this.openFlags & ~C.O_DIRECT & ~C.O_CREAT & ~C.O_TRUNC & ~C.O_EXCL, 0)
      .then((fd) => (alsoCloseOnCollection(this, fd), fd));
    return this.bufferedFd;
  }

  /** The fd for a buffered read without opening one: the main fd when it is not O_DIRECT, else undefined. */
  bufferedFdNow(): number | undefined {
    return this.openFlags & C.O_DIRECT ? undefined : this.fd;
  }

  /** Closes the second, buffered fd if one was opened (it may never have opened: then nothing to close). */
  async closeBuffered(): Promise<void> {
    const buffered = this.bufferedFd ? await this.bufferedFd.catch(() => -1) : -1;
    if (buffered >= 0 && buffered !== this.fd) await native.close(buffered).catch(() => undefined);
  }

  /**
   * The real size (statx on the fd), read before an extending write: another
   * handle or process may have grown or cut the file, and a failed extending
   * write is cut back to exactly this. Block devices keep their fixed size.
   */
  refreshSize(): number {
    if (this.facts.caps.kind === 'blockDevice') return this.size.value;
    this.size.value = native.statxSync(this.fd).size;
    return this.size.value;
  }

  /** The real size for a read; a block device's is fixed. */
  statSize(): number {
    return this.facts.caps.kind === 'blockDevice' ? this.size.value : native.statxSync(this.fd).size;
  }

  /** Runs `io` holding `range` of the range lock. */
  async underLock<T>(range: LockRange, io: () => Promise<T>): Promise<T> {
    const lock = this.locks.acquire(range.start, range.end, range.exclusive);
    const release = typeof lock === 'function' ? lock : await lock; // no microtask hop when uncontended
    try {
      return await io();
    } finally {
      release();
    }
  }

  /**
   * Cuts the file back to its size before a failed extending write or allocate.
   * If that fails too, the caller's error says so: blocks may be left past EOF.
   */
  async truncateBack(size: number, failed: unknown): Promise<void> {
    try {
      await this.io.ftruncate(this.fd, size);
    } catch (err) {
      if (failed instanceof Error) {
        failed.message += `; truncating back to ${size} bytes failed too (${(err as Error).message}): the file may keep blocks past that size`;
      }
    }
  }
}
