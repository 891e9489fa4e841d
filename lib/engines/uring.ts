// The io_uring engine: one ring per thread, completions on Node's own event
// loop (eventfd + uv_poll in native/uring.cc), no thread per I/O.
// - Batching: SQEs prepared during a tick go to the kernel in one
//   io_uring_enter, from process.nextTick (which runs once the microtask queue
//   has drained, so a burst of promise-chained writes shares one submit).
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

interface Request {
  syscall: string;
  prep: (id: number) => boolean;
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

export class UringEngine implements Engine {
  readonly name = 'uring' as const;
  private readonly pending = new Map<number, Request>();
  private readonly backlog: Request[] = [];
  private readonly limit: number;
  private nextId = 1;
  private flushQueued = false;
  private unsubmitted = 0;
  private submitFailures = 0;
  /** Ids whose SQEs were turned into NOPs: not reused until their CQE comes. */
  private readonly cancelled = new Set<number>();
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
    this.arena = ARENA_BYTES > 0 ? registerArena(ARENA_BYTES) : undefined;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get queued(): number {
    return this.backlog.length;
  }

  writev(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number> {
    if (needsOwnedCopy(buffers, isOwnedMemory)) return writeThroughCopy(buffers, (owned) => this.writev(fd, owned, position, rwflags));
    // The kernel rejects RWF_ATOMIC on WRITE_FIXED (a bvec, not one user buffer): never fixed then.
    const fixed = !(rwflags & C.RWF_ATOMIC) && this.isFixed(buffers);
    return this.issue('pwritev2', (id) => native.uringPrepWritev(fd, buffers, position, rwflags, id, fixed));
  }

  readv(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number> {
    if (needsOwnedCopy(buffers, isOwnedMemory)) return readThroughCopy(buffers, (owned) => this.readv(fd, owned, position, rwflags));
    const fixed = this.isFixed(buffers);
    return this.issue('preadv2', (id) => native.uringPrepReadv(fd, buffers, position, rwflags, id, fixed));
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

  private issue(syscall: string, prep: (id: number) => boolean): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const request: Request = { syscall, prep, resolve, reject };
      if (this.backlog.length > 0 || !this.tryPrep(request)) this.backlog.push(request);
    });
  }

  /** Puts the request on the SQ if there is room in the ring and under the in-flight limit. */
  private tryPrep(request: Request): boolean {
    if (this.pending.size >= this.limit) return false;
    const id = this.allocateId();
    let queued: boolean;
    try {
      queued = request.prep(id);
    } catch (err) {
      request.reject(err); // a native argument check: settled, not queued
      return true;
    }
    if (!queued) return false;
    this.pending.set(id, request);
    this.unsubmitted++;
    this.scheduleFlush();
    return true;
  }

  private allocateId(): number {
    do {
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId) || this.cancelled.has(this.nextId));
    return this.nextId;
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    process.nextTick(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.unsubmitted === 0) return;
    let error: unknown;
    const before = this.unsubmitted;
    try {
      // The kernel may take fewer than were queued (EAGAIN, EBUSY): what it left
      // must go out too, even if no new request comes along to trigger a submit.
      this.unsubmitted = native.uringSubmit();
    } catch (err) {
      error = err; // the SQEs stay on the ring
    }
    if (this.unsubmitted === 0) {
      this.submitFailures = 0;
      return;
    }
    if (error === undefined && this.unsubmitted < before) this.submitFailures = 0;
    else if (++this.submitFailures > MAX_SUBMIT_RETRIES) return this.rejectQueued(error);
    setTimeout(() => this.scheduleFlush(), this.submitFailures === 0 ? 0 : submitBackoffMs(this.submitFailures)).unref();
  }

  /** Gives up on the SQEs the kernel would not take: they become NOPs, their requests reject. */
  private rejectQueued(error: unknown): void {
    const reason = new OdirectError(
      'ERR_URING_SUBMIT',
      `io_uring submit made no progress after ${MAX_SUBMIT_RETRIES} retries${error ? `: ${(error as Error).message}` : ''}`,
      error === undefined ? {} : { cause: error },
    );
    this.submitFailures = 0;
    this.unsubmitted = 0;
    for (const id of native.uringCancelQueued()) {
      this.cancelled.add(id);
      const request = this.pending.get(id);
      if (!request) continue;
      this.pending.delete(id);
      request.reject(reason);
    }
  }

  private complete(ids: Uint32Array, results: Int32Array): void {
    for (let i = 0; i < ids.length; i++) {
      const request = this.pending.get(ids[i]!);
      this.cancelled.delete(ids[i]!);
      if (!request) continue;
      this.pending.delete(ids[i]!);
      const res = results[i]!;
      if (res < 0) request.reject(native.errnoError(-res, request.syscall));
      else request.resolve(res);
    }
    while (this.backlog.length > 0 && this.tryPrep(this.backlog[0]!)) this.backlog.shift();
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
