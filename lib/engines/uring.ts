// The io_uring engine: one ring per thread, completions on Node's own event
// loop (eventfd + uv_poll in native/uring.cc), no thread per I/O.
// - Batching: the reads and writes of a tick are prepared in one call into the
//   addon (a Float64Array slab of descriptors plus their buffers) and go to the
//   kernel in one io_uring_enter, from process.nextTick (which runs once the
//   microtask queue has drained, so a burst of promise-chained writes shares
//   one prepare and one submit). Requests live in a table of slots indexed by
//   their id (the SQE's user_data): no Map entry, object or closure per request
//   besides its promise.
// - Never fails because the ring is busy: past the SQ or the in-flight limit
//   (the CQ size, so the CQ cannot overflow) requests wait in a backlog and go
//   out as completions free slots.
// - Results are pwritev2's: a byte count that may be short, or the errno as
//   the same Error the thread-pool engine gives.
// - One engine per thread for every copy of this module: it is kept on the
//   addon's exports, which copies loaded in one thread share (vitest's
//   per-file module registries load lib/ again, not the addon).
// - A submit error that does not clear is retried with backoff a bounded number
//   of times; then the SQEs still queued become NOPs and their requests reject.
import { isOwnedMemory } from '../aligned';
import { OdirectError } from '../errors';
import { C, native } from '../native';
import { needsOwnedCopy } from '../policies/ownership';
import { readThroughCopy, writeThroughCopy } from './caller-memory';
import type { Engine } from './engine';
import { FixedArena } from '../mechanisms/fixed-arena';

/** A request that waits for room (the in-flight limit): its SQE is prepared when a slot frees. */
interface Waiting {
  syscall: string;
  /** Reads and writes: queued into the next batch. */
  rw?: { write: boolean; fd: number; buffers: Uint8Array[]; position: number; rwflags: number; fixed: boolean };
  /** Everything else: prepared on its own. */
  prep?: (id: number) => boolean;
  resolve: (result: number) => void;
  reject: (err: unknown) => void;
}

const RING_ENTRIES = 256;
const ARENA_BYTES = Number(process.env.ODIRECT_FIXED_ARENA_MIB ?? 16) * (1 << 20);
// sync_file_range's SQE length field is 32 bits.
const MAX_SQE_LEN = 0xffffffff;
// Submit attempts without progress before queued requests are rejected: with
// the backoff below, about 4 s of EAGAIN/EBUSY (or any error) that never clears.
const MAX_SUBMIT_RETRIES = 12;
const submitBackoffMs = (attempt: number): number => Math.min(1000, 1 << attempt);
/** Fields of one batch descriptor (native uringPrepBatch): write, fd, position, rwflags, id, fixed. */
const BATCH_FIELDS = 6;

const FREE = 0;
const PENDING = 1;
/** Its SQE was turned into a NOP: the id is not reused until that CQE comes. */
const CANCELLED = 2;

export class UringEngine implements Engine {
  readonly name = 'uring' as const;
  // Request slots, indexed by id (the SQE's user_data): no Map entry and no
  // object per request. Twice the in-flight limit, so cancelled ids waiting for
  // their CQE never starve new requests.
  private readonly state: Uint8Array;
  private readonly resolves: Array<((result: number) => void) | undefined>;
  private readonly rejects: Array<((err: unknown) => void) | undefined>;
  private readonly syscalls: string[];
  private readonly freeIds: number[] = [];
  private pendingCount = 0;
  // The reads and writes of this tick, prepared in one native call at flush:
  // descriptors in a Float64Array slab, buffers beside them.
  private readonly batch: Float64Array;
  private readonly batchBuffers: Uint8Array[][];
  private batchCount = 0;
  private readonly backlog: Waiting[] = [];
  private readonly limit: number;
  private flushQueued = false;
  private unsubmitted = 0;
  private submitFailures = 0;
  /** Registered memory (fixed buffer 0); undefined if registering failed (e.g. RLIMIT_MEMLOCK). */
  readonly arena: FixedArena | undefined;
  readonly deferTaskrun: boolean;
  /** IORING_OP_FTRUNCATE exists here (6.9+); elsewhere ftruncate goes to the thread pool. */
  private readonly canFtruncate: boolean;

  constructor(entries = RING_ENTRIES, deferTaskrun = process.env.ODIRECT_URING_DEFER_TASKRUN === '1') {
    const info = native.uringInit(entries, (ids, results) => this.complete(ids, results), deferTaskrun);
    this.limit = info.cqEntries;
    this.canFtruncate = info.ftruncate;
    this.deferTaskrun = deferTaskrun;
    const slots = 2 * this.limit + 1; // id 0 is never used
    this.state = new Uint8Array(slots);
    this.resolves = new Array(slots).fill(undefined);
    this.rejects = new Array(slots).fill(undefined);
    this.syscalls = new Array(slots).fill('');
    for (let id = slots - 1; id >= 1; id--) this.freeIds.push(id);
    this.batch = new Float64Array(this.limit * BATCH_FIELDS);
    this.batchBuffers = new Array(this.limit).fill(undefined);
    this.arena = ARENA_BYTES > 0 ? registerArena(ARENA_BYTES) : undefined;
  }

  get inFlight(): number {
    return this.pendingCount;
  }

  get queued(): number {
    return this.backlog.length;
  }

  writev(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number> {
    if (needsOwnedCopy(buffers, isOwnedMemory)) return writeThroughCopy(buffers, (owned) => this.writev(fd, owned, position, rwflags));
    // The kernel rejects RWF_ATOMIC on WRITE_FIXED (a bvec, not one user buffer): never fixed then.
    const fixed = !(rwflags & C.RWF_ATOMIC) && this.isFixed(buffers);
    return this.issueRw('pwritev2', true, fd, buffers, position, rwflags, fixed);
  }

  readv(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number> {
    if (needsOwnedCopy(buffers, isOwnedMemory)) return readThroughCopy(buffers, (owned) => this.readv(fd, owned, position, rwflags));
    return this.issueRw('preadv2', false, fd, buffers, position, rwflags, this.isFixed(buffers));
  }

  private isFixed(buffers: Uint8Array[]): boolean {
    return buffers.length === 1 && this.arena !== undefined && this.arena.contains(buffers[0]!);
  }

  async fsync(fd: number, dataOnly: boolean): Promise<void> {
    await this.issue(dataOnly ? 'fdatasync' : 'fsync', (id) => native.uringPrepFsync(fd, dataOnly, id));
  }

  async fallocate(fd: number, mode: number, offset: number, length: number): Promise<void> {
    await this.issue('fallocate', (id) => native.uringPrepFallocate(fd, mode, offset, length, id));
  }

  async ftruncate(fd: number, size: number): Promise<void> {
    if (!this.canFtruncate) {
      await native.ftruncate(fd, size);
      return;
    }
    await this.issue('ftruncate', (id) => native.uringPrepFtruncate(fd, size, id));
  }

  async syncFileRange(fd: number, offset: number, nbytes: number, flags: number): Promise<void> {
    if (nbytes > MAX_SQE_LEN) {
      await native.syncFileRange(fd, offset, nbytes, flags);
      return;
    }
    await this.issue('sync_file_range', (id) => native.uringPrepSyncFileRange(fd, offset, nbytes, flags, id));
  }

  /** A read or write: into this tick's batch if under the in-flight limit, else the backlog. */
  private issueRw(syscall: string, write: boolean, fd: number, buffers: Uint8Array[], position: number, rwflags: number, fixed: boolean): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.backlog.length > 0 || this.pendingCount >= this.limit) {
        this.backlog.push({ syscall, rw: { write, fd, buffers, position, rwflags, fixed }, resolve, reject });
        return;
      }
      this.queueRw(syscall, write, fd, buffers, position, rwflags, fixed, resolve, reject);
    });
  }

  private queueRw(
    syscall: string,
    write: boolean,
    fd: number,
    buffers: Uint8Array[],
    position: number,
    rwflags: number,
    fixed: boolean,
    resolve: (result: number) => void,
    reject: (err: unknown) => void,
  ): void {
    const id = this.takeId(syscall, resolve, reject);
    const at = this.batchCount * BATCH_FIELDS;
    const b = this.batch;
    b[at] = write ? 1 : 0;
    b[at + 1] = fd;
    b[at + 2] = position;
    b[at + 3] = rwflags;
    b[at + 4] = id;
    b[at + 5] = fixed ? 1 : 0;
    this.batchBuffers[this.batchCount++] = buffers;
    this.scheduleFlush();
  }

  /** Any other op: prepared on its own at once (they are rare). */
  private issue(syscall: string, prep: (id: number) => boolean): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.backlog.length > 0 || !this.tryPrep(syscall, prep, resolve, reject)) this.backlog.push({ syscall, prep, resolve, reject });
    });
  }

  /** Puts the request on the SQ if there is room in the ring and under the in-flight limit. */
  private tryPrep(syscall: string, prep: (id: number) => boolean, resolve: (result: number) => void, reject: (err: unknown) => void): boolean {
    if (this.pendingCount >= this.limit) return false;
    const id = this.takeId(syscall, resolve, reject);
    let queued: boolean;
    try {
      queued = prep(id);
    } catch (err) {
      this.settle(id);
      reject(err); // a native argument check: settled, not queued
      return true;
    }
    if (!queued) {
      this.settle(id);
      return false;
    }
    this.unsubmitted++;
    this.scheduleFlush();
    return true;
  }

  private takeId(syscall: string, resolve: (result: number) => void, reject: (err: unknown) => void): number {
    const id = this.freeIds.pop()!; // under the limit there is always one: the table is twice the limit
    this.state[id] = PENDING;
    this.resolves[id] = resolve;
    this.rejects[id] = reject;
    this.syscalls[id] = syscall;
    this.pendingCount++;
    return id;
  }

  /** Frees a pending id (read its resolve/reject first). */
  private settle(id: number): void {
    this.state[id] = FREE;
    this.resolves[id] = undefined;
    this.rejects[id] = undefined;
    this.pendingCount--;
    this.freeIds.push(id);
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    process.nextTick(() => this.flush());
  }

  /** Prepares this tick's reads and writes in one native call; the ones the SQ had no room for stay for the next flush. */
  private prepBatch(): void {
    const count = this.batchCount;
    let from = 0;
    while (from < count) {
      let reached: number;
      try {
        reached = native.uringPrepBatch(this.batch, this.batchBuffers, from, count);
      } catch (err) {
        // Request `index` failed a native check: it is settled, the ones before it are queued.
        const index = (err as { index?: unknown }).index;
        if (typeof index !== 'number') throw err;
        this.unsubmitted += index - from;
        const id = this.batch[index * BATCH_FIELDS + 4]!;
        const reject = this.rejects[id]!;
        this.settle(id);
        reject(err);
        from = index + 1;
        continue;
      }
      this.unsubmitted += reached - from;
      from = reached;
      if (reached < count) break; // the SQ is full even after a submit: keep the rest
    }
    // Keep what was not prepared at the front; drop the references to the rest.
    const left = count - from;
    if (left > 0) {
      this.batch.copyWithin(0, from * BATCH_FIELDS, count * BATCH_FIELDS);
      for (let i = 0; i < left; i++) this.batchBuffers[i] = this.batchBuffers[from + i]!;
    }
    for (let i = left; i < count; i++) this.batchBuffers[i] = undefined as unknown as Uint8Array[];
    this.batchCount = left;
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.batchCount > 0) this.prepBatch();
    if (this.unsubmitted === 0 && this.batchCount === 0) return;
    let error: unknown;
    const before = this.unsubmitted;
    try {
      // The kernel may take fewer than were queued (EAGAIN, EBUSY): what it left
      // must go out too, even if no new request comes along to trigger a submit.
      this.unsubmitted = native.uringSubmit();
    } catch (err) {
      error = err; // the SQEs stay on the ring
    }
    if (this.unsubmitted === 0 && this.batchCount === 0) {
      this.submitFailures = 0;
      return;
    }
    if (error === undefined && this.unsubmitted < before) this.submitFailures = 0;
    else if (++this.submitFailures > MAX_SUBMIT_RETRIES) return this.rejectQueued(error);
    setTimeout(() => this.scheduleFlush(), this.submitFailures === 0 ? 0 : submitBackoffMs(this.submitFailures)).unref();
  }

  /** Gives up on the SQEs the kernel would not take: they become NOPs, their requests reject; so do requests never prepared. */
  private rejectQueued(error: unknown): void {
    const reason = new OdirectError(
      'ERR_URING_SUBMIT',
      `io_uring submit made no progress after ${MAX_SUBMIT_RETRIES} retries${error ? `: ${(error as Error).message}` : ''}`,
      error === undefined ? {} : { cause: error },
    );
    this.submitFailures = 0;
    this.unsubmitted = 0;
    for (const id of native.uringCancelQueued()) {
      if (this.state[id] !== PENDING) continue;
      const reject = this.rejects[id]!;
      this.settle(id);
      this.freeIds.pop(); // not reused until its (NOP) CQE comes
      this.state[id] = CANCELLED;
      reject(reason);
    }
    for (let i = 0; i < this.batchCount; i++) {
      const id = this.batch[i * BATCH_FIELDS + 4]!;
      const reject = this.rejects[id]!;
      this.settle(id);
      this.batchBuffers[i] = undefined as unknown as Uint8Array[];
      reject(reason);
    }
    this.batchCount = 0;
  }

  private complete(ids: Uint32Array, results: Int32Array): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (this.state[id] === CANCELLED) {
        this.state[id] = FREE;
        this.freeIds.push(id);
        continue;
      }
      if (this.state[id] !== PENDING) continue;
      const res = results[i]!;
      const resolve = this.resolves[id]!;
      const reject = this.rejects[id]!;
      const syscall = this.syscalls[id]!;
      this.settle(id);
      if (res < 0) reject(native.errnoError(-res, syscall));
      else resolve(res);
    }
    this.drainBacklog();
  }

  /** Requests that waited for room, in order, while there is room. */
  private drainBacklog(): void {
    while (this.backlog.length > 0 && this.pendingCount < this.limit) {
      const w = this.backlog[0]!;
      if (w.rw) {
        this.backlog.shift();
        const r = w.rw;
        this.queueRw(w.syscall, r.write, r.fd, r.buffers, r.position, r.rwflags, r.fixed, w.resolve, w.reject);
      } else {
        if (!this.tryPrep(w.syscall, w.prep!, w.resolve, w.reject)) break;
        this.backlog.shift();
      }
    }
  }
}

function registerArena(bytes: number): FixedArena | undefined {
  try {
    native.uringRegisterArena(bytes);
    return new FixedArena();
  } catch {
    return undefined; // fixed buffers are an optimisation: without them I/O works the same
  }
}

// On the addon's exports: one per addon instance, i.e. per thread.
const ENGINE_KEY = Symbol.for('odirect.uringEngine');
const holder = native as unknown as Record<symbol, UringEngine | undefined>;

/** This thread's ring, made on first use, shared by every copy of this module on the thread. */
export function uringEngine(): UringEngine {
  return (holder[ENGINE_KEY] ??= new UringEngine());
}

/** This thread's ring if one was made already (never makes one). */
export function existingUringEngine(): UringEngine | undefined {
  return holder[ENGINE_KEY];
}
