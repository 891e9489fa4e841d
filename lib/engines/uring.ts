// The io_uring engine: one ring per thread, completions on Node's own event
// loop (the ring fd + uv_poll in native/uring.cc), no thread per I/O.
// - Batching: SQEs prepared during a tick go to the kernel in one
//   io_uring_enter, from process.nextTick (which runs once the microtask queue
//   has drained, so a burst of promise-chained writes shares one submit); a
//   request that finds the ring idle goes at once (depth 1).
// - Never fails because the ring is busy: past the SQ or the in-flight limit
//   (the CQ size, so the CQ cannot overflow) requests wait in a backlog and go
//   out as completions free slots.
// - Results are pwritev2's: a byte count that may be short, or the errno as
//   the same Error the thread-pool engine gives.
// - Lean per request (issue 14): a request is its Completion, kept in a slot
//   array under its id (the SQE's user_data); ids come from a free list, the
//   native side keeps the buffers' holds in a slot of the same number, and a
//   batch of completions arrives as a count over two typed arrays shared with
//   the native side. The fast paths pass their own Completion (start*), so a
//   write makes one promise, the caller's.
// - One engine per thread for every copy of this module: it is kept on the
//   addon's exports, which copies loaded in one thread share (vitest's
//   per-file module registries load lib/ again, not the addon).
// - A submit error that does not clear is retried with backoff a bounded number
//   of times; then the SQEs still queued become NOPs and their requests reject.
import { isOwnedMemory } from '../aligned';
import { OdirectError } from '../errors';
import { C, native, type NativeBinding } from '../native';
import { needsOwnedCopy } from '../policies/ownership';
import { readThroughCopy, writeThroughCopy } from './caller-memory';
import { type Completion, PromiseCompletion, type Engine } from './engine';
import { FixedArena } from '../mechanisms/fixed-arena';
import { AbortError } from '../habits';

/** A request waiting for room on the ring (SQ full or at the in-flight limit). */
interface Waiting {
  syscall: string;
  prep: (id: number) => boolean;
  done: Completion;
  signal: AbortSignal | undefined;
  /** Its abort listener while it waits in the backlog (removed when it leaves). */
  onAbort?: () => void;
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
  /** By id: the request's Completion while its SQE is on the ring (undefined once given up on). */
  private readonly done: (Completion | undefined)[];
  private readonly syscalls: string[];
  /** By id: the abort listener of a request that has a signal. */
  private readonly aborts: ((() => void) | undefined)[];
  /** Ids not on the ring; an id comes back only with its CQE (a NOP'd or cancelled one too). */
  private readonly freeIds: number[] = [];
  private readonly backlog: Waiting[] = [];
  /** fd → its slot in the ring's fixed-file table (registerFile); holes for fds not registered. */
  private readonly fileSlots: number[] = [];
  private readonly limit: number;
  private flushQueued = false;
  private readonly flushBound = (): void => this.flush();
  private unsubmitted = 0;
  private submitFailures = 0;
  /** Registered memory (fixed buffer 0); undefined if registering failed (e.g. RLIMIT_MEMLOCK). */
  readonly arena: FixedArena | undefined;
  readonly deferTaskrun: boolean;
  /** IORING_OP_FTRUNCATE exists here (6.9+); elsewhere ftruncate goes to the thread pool. */
  private readonly canFtruncate: boolean;

  constructor(entries = RING_ENTRIES, deferTaskrun = process.env.ODIRECT_URING_DEFER_TASKRUN === '1') {
    let completedIds: Uint32Array | undefined;
    let completedResults: Int32Array | undefined;
    const info = native.uringInit(entries, (count) => this.complete(completedIds!, completedResults!, count), deferTaskrun);
    completedIds = info.completedIds;
    completedResults = info.completedResults;
    // The native side has a slot for each id in [1, cqEntries]: as many on the
    // ring as the CQ holds, so it cannot overflow.
    this.limit = info.cqEntries;
    this.done = new Array<Completion | undefined>(this.limit + 1).fill(undefined);
    this.syscalls = new Array<string>(this.limit + 1).fill('');
    this.aborts = new Array<(() => void) | undefined>(this.limit + 1).fill(undefined);
    for (let id = this.limit; id >= 1; id--) this.freeIds.push(id);
    this.canFtruncate = info.ftruncate;
    this.deferTaskrun = deferTaskrun;
    this.arena = ARENA_BYTES > 0 ? registerArena(ARENA_BYTES) : undefined;
  }

  /** Requests on the ring (their CQE not reaped yet). */
  get inFlight(): number {
    return this.limit - this.freeIds.length;
  }

  /**
   * Puts `fd` in the ring's fixed-file table (DirectFile.open): its reads and
   * writes then name the slot (IOSQE_FIXED_FILE), so the kernel skips the fd
   * lookup and file reference per request. Nothing happens when the table is
   * full or the kernel has none. The caller must unregisterFile(fd) before
   * closing fd. An fd number already in the table (closed behind odirect's back
   * and reused) gets its slot pointed at the file the number names now, which is
   * where a plain fd would write too.
   */
  registerFile(fd: number): void {
    // Only an optimisation: a table that refuses leaves the plain fd in use.
    try {
      const slot = this.fileSlots[fd];
      if (slot !== undefined) return native.uringReplaceFile(slot, fd);
      const taken = native.uringRegisterFile(fd);
      if (taken >= 0) this.fileSlots[fd] = taken;
    } catch {
      delete this.fileSlots[fd];
    }
  }

  /** The fixed-file slot `fd`'s requests name now, if any. */
  fileSlot(fd: number): number | undefined {
    return this.fileSlots[fd];
  }

  /**
   * Takes `fd` out of the fixed-file table, before it is closed. SQEs prepared
   * but not yet submitted name the slot: they are submitted first (submitted
   * ones keep the file: the kernel holds the table's old node until they
   * complete). An emptied slot is the last to be handed out again. Never throws:
   * a slot the kernel would not empty is left taken (the fd still closes).
   */
  unregisterFile(fd: number): void {
    const slot = this.fileSlots[fd];
    if (slot === undefined) return;
    delete this.fileSlots[fd];
    try {
      if (this.unsubmitted > 0) this.flush();
      native.uringUnregisterFile(slot);
    } catch {
      // left taken: the file stays referenced by the table until the ring goes
    }
  }

  /** Empties the whole table (the bench's interrupt path, which points fds at /dev/null so the filesystem can be unmounted). */
  unregisterAllFiles(): void {
    this.fileSlots.length = 0;
    try {
      native.uringUnregisterAllFiles();
    } catch {
      // no table
    }
  }

  /** Requests waiting for room on the ring. */
  get queued(): number {
    return this.backlog.length;
  }

  writev(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal?: AbortSignal): Promise<number> {
    const done = new PromiseCompletion();
    this.startWritev(fd, buffers, position, rwflags, signal, done);
    return done.promise;
  }

  readv(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal?: AbortSignal): Promise<number> {
    const done = new PromiseCompletion();
    this.startReadv(fd, buffers, position, rwflags, signal, done);
    return done.promise;
  }

  startWritev(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal: AbortSignal | undefined, done: Completion): void {
    if (needsOwnedCopy(buffers, isOwnedMemory)) {
      writeThroughCopy(buffers, (owned) => this.writev(fd, owned, position, rwflags, signal)).then(
        (n) => done.complete(n),
        (err: unknown) => done.fail(err),
      );
      return;
    }
    // The kernel rejects RWF_ATOMIC on WRITE_FIXED (a bvec, not one user buffer): never fixed then.
    const fixed = !(rwflags & C.RWF_ATOMIC) && this.isFixed(buffers);
    this.startRw(native.uringPrepWritev, 'pwritev2', fd, buffers, position, rwflags, fixed, signal, done);
  }

  startReadv(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal: AbortSignal | undefined, done: Completion): void {
    if (needsOwnedCopy(buffers, isOwnedMemory)) {
      readThroughCopy(buffers, (owned) => this.readv(fd, owned, position, rwflags, signal)).then(
        (n) => done.complete(n),
        (err: unknown) => done.fail(err),
      );
      return;
    }
    this.startRw(native.uringPrepReadv, 'preadv2', fd, buffers, position, rwflags, this.isFixed(buffers), signal, done);
  }

  /** A read or write from owned memory: its fixed-file slot if it has one, then straight onto the SQ when there is room and nothing waits, else start(). */
  private startRw(
    prep: NativeBinding['uringPrepWritev'],
    syscall: string,
    fd: number,
    buffers: Uint8Array[],
    position: number,
    rwflags: number,
    fixed: boolean,
    signal: AbortSignal | undefined,
    done: Completion,
  ): void {
    const slot = this.fileSlots[fd];
    const target = slot ?? fd;
    const fixedFile = slot !== undefined;
    if (this.backlog.length === 0 && signal === undefined) {
      // The common case, without a closure.
      const id = this.freeIds.pop();
      if (id !== undefined) {
        let queued: boolean;
        try {
          queued = prep(target, buffers, position, rwflags, id, fixed, fixedFile);
        } catch (err) {
          this.freeIds.push(id);
          done.fail(err); // a native argument check: settled, not queued
          return;
        }
        if (queued) return this.onRing(id, syscall, done);
        this.freeIds.push(id);
      }
    }
    this.start(syscall, (id) => prep(target, buffers, position, rwflags, id, fixed, fixedFile), done, signal);
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

  /** Any request, by its prep function (also what tests use to send a raw SQE). */
  issue(syscall: string, prep: (id: number) => boolean, signal?: AbortSignal): Promise<number> {
    const done = new PromiseCompletion();
    this.start(syscall, prep, done, signal);
    return done.promise;
  }

  /**
   * A request, under the caller's AbortSignal if it has one: aborted before, it
   * is never issued; waiting in the backlog, it is dropped; on the ring, an
   * IORING_OP_ASYNC_CANCEL is sent and the request settles with its own CQE, so its
   * buffers stay held until the kernel is done with them (docs/memory.md).
   */
  private start(syscall: string, prep: (id: number) => boolean, done: Completion, signal: AbortSignal | undefined): void {
    if (signal?.aborted) return done.fail(new AbortError(syscall, signal.reason));
    const waiting: Waiting = { syscall, prep, done, signal };
    if (this.backlog.length > 0 || !this.tryPrep(waiting)) {
      this.backlog.push(waiting);
      if (signal) {
        waiting.onAbort = () => this.abortWaiting(waiting);
        signal.addEventListener('abort', waiting.onAbort, { once: true });
      }
    }
  }

  private abortWaiting(waiting: Waiting): void {
    const at = this.backlog.indexOf(waiting);
    if (at < 0) return;
    this.backlog.splice(at, 1);
    waiting.onAbort = undefined;
    waiting.done.fail(new AbortError(waiting.syscall, waiting.signal!.reason));
  }

  /** Puts the request on the SQ if there is room in the ring and under the in-flight limit. */
  private tryPrep(waiting: Waiting): boolean {
    const id = this.freeIds.pop();
    if (id === undefined) return false;
    let queued: boolean;
    try {
      queued = waiting.prep(id);
    } catch (err) {
      this.freeIds.push(id);
      this.leaveBacklog(waiting);
      waiting.done.fail(err); // a native argument check (or a stale cancel): settled, not queued
      return true;
    }
    if (!queued) {
      this.freeIds.push(id);
      return false;
    }
    this.leaveBacklog(waiting);
    this.onRing(id, waiting.syscall, waiting.done, waiting.signal);
    return true;
  }

  /** Its backlog abort listener goes (on the ring, onRing listens instead), so none piles up on a long-lived signal. */
  private leaveBacklog(waiting: Waiting): void {
    if (!waiting.onAbort) return;
    waiting.signal!.removeEventListener('abort', waiting.onAbort);
    waiting.onAbort = undefined;
  }

  private onRing(id: number, syscall: string, done: Completion, signal?: AbortSignal): void {
    this.done[id] = done;
    this.syscalls[id] = syscall;
    if (signal) {
      const onAbort = (): void => {
        // The cancel may wait in the backlog; by the time it is prepared, `id` may have
        // completed and been handed to another request: then it is not sent.
        const target = (cancelId: number): boolean => {
          if (this.done[id] !== done) throw new Error('stale cancel: the request completed');
          return native.uringPrepCancel(id, cancelId);
        };
        this.issue('async_cancel', target).catch(() => undefined); // ENOENT/EALREADY/stale: it completes as usual
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.aborts[id] = () => signal.removeEventListener('abort', onAbort);
    }
    this.unsubmitted++;
    // Alone on an idle ring (depth 1): submitted now rather than after the
    // microtasks (1-6% off depth-1 p50, bench/ref/depth1-node.mjs; under load the
    // ring is rarely idle, so batching is unchanged).
    if (this.unsubmitted === 1 && this.freeIds.length === this.limit - 1 && !this.flushQueued) return this.flush();
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(this.flushBound);
    }
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    process.nextTick(this.flushBound);
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
    // Their ids stay taken until the NOPs' CQEs come back.
    for (const id of native.uringCancelQueued()) {
      const done = this.settle(id);
      done?.fail(reason);
    }
  }

  /** Takes the request off its slot (its abort listener too); the id stays taken. */
  private settle(id: number): Completion | undefined {
    const done = this.done[id];
    this.done[id] = undefined;
    const unlisten = this.aborts[id];
    if (unlisten) {
      this.aborts[id] = undefined;
      unlisten();
    }
    return done;
  }

  /**
   * A batch of CQEs, written by the native side into the shared arrays. Every id
   * is freed even if a Completion throws (the first error is rethrown at the end,
   * an uncaught exception as from any callback), so the in-flight limit never shrinks.
   */
  private complete(ids: Uint32Array, results: Int32Array, count: number): void {
    let thrown: { error: unknown } | undefined;
    for (let i = 0; i < count; i++) {
      const id = ids[i]!;
      const res = results[i]!;
      const done = this.settle(id);
      this.freeIds.push(id);
      if (!done) continue; // given up on (rejectQueued): its NOP came back
      try {
        if (res < 0) done.fail(native.errnoError(-res, this.syscalls[id]!));
        else done.complete(res);
      } catch (error) {
        thrown ??= { error };
      }
    }
    while (this.backlog.length > 0 && this.tryPrep(this.backlog[0]!)) this.backlog.shift();
    if (thrown) throw thrown.error;
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
export function uringEngine(queueDepth?: number): UringEngine {
  return (holder[ENGINE_KEY] ??= new UringEngine(queueDepth));
}

/** This thread's ring if one was made already (never makes one). */
export function existingUringEngine(): UringEngine | undefined {
  return holder[ENGINE_KEY];
}
