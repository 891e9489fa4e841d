// Doing a write: decide its route (policies/route.ts), order it, run the
// executor of that route kind, count it. One executor per route kind; each
// takes the file, the request and its route, and returns what it did.
import { AtomicWriteError, OdirectError, withContext } from '../errors';
import { AbortError } from '../habits';
import { bouncePool } from '../mechanisms/bounce-pool';
import { checkAtomicResult } from '../policies/atomic';
import { gather, partialBlocks } from '../policies/rmw';
import {
  countWrite,
  decideWrite,
  fallBack,
  type WriteOutcome,
  type WriteRequest,
  type WriteRoute,
} from '../policies/route';
import type { CacheMode, FileStats, WriteResult } from '../types';
import type { Completion } from '../engines/engine';
import type { Hold } from '../mechanisms/range-lock';
import { writeCached } from './cache';
import type { FileContext } from './context';
import { finishBuffered, skipBytes } from './fallback';

type Route<K extends WriteRoute['kind']> = Extract<WriteRoute, { kind: K }>;
type Executor<K extends WriteRoute['kind']> = (file: FileContext, request: WriteRequest, route: Route<K>) => Promise<WriteOutcome>;

/** Decides, orders, executes and counts one write. Refusals reject before any I/O. */
export function performWrite(file: FileContext, request: WriteRequest, stats: FileStats): Promise<WriteResult> {
  const decided = decideWrite(request, file.facts, file.size.value);
  if (decided.kind === 'refused') return Promise.reject(decided.error);
  if (decided.kind === 'direct') {
    const fast = writeDirectFast(file, request, decided, stats);
    if (fast) return fast;
  }
  return performOrdered(file, request, decided, stats);
}

async function performOrdered(file: FileContext, request: WriteRequest, decided: Exclude<WriteRoute, { kind: 'refused' }>, stats: FileStats): Promise<WriteResult> {
  const end = request.position + request.length;
  const outcome = await file.gate.write(decided.reach, end, async (knownSize) => {
    let size = knownSize;
    let route: WriteRoute = decided;
    // Aborted while it waited for its turn: nothing of it is issued.
    if (request.signal?.aborted) throw new AbortError('pwritev2', request.signal.reason);
    try {
      if (decided.reach > knownSize) size = file.refreshSize();
      // The size moved while this write waited for its turn (extending writes before it, a truncate).
      if (size !== decided.size) route = decideWrite(request, file.facts, size);
      if (route.kind === 'refused') throw route.error;
      return await execute(file, request, route);
    } catch (err) {
      if (route.kind === 'refused') throw err;
      // A failed or short extending write leaves nothing past the old end of file.
      const failed = writeError(file, request, err);
      if (route.reach > size) await file.truncateBack(size, failed);
      throw failed;
    }
  });
  countWrite(stats, outcome, request.length);
  return writeResult(request, outcome);
}

function writeResult(request: WriteRequest, outcome: WriteOutcome): WriteResult {
  return { bytesWritten: request.length, path: outcome.kind === 'buffered' || outcome.kind === 'fallback' ? 'buffered' : 'direct' };
}

function writeError(file: FileContext, request: WriteRequest, err: unknown): unknown {
  return withContext(err, { path: file.path, position: request.position, length: request.length }, request.atomic ? AtomicWriteError : OdirectError);
}

/**
 * The `direct` route's executor when nothing needs waiting for: not extending
 * (no statx, no ordering behind other extending writes), its range free of
 * conflicting requests held or waiting (so the range lock cannot make it wait:
 * a shared range beside other shared ones, or the exclusive range of an atomic
 * write that must not overlap another), no barrier (truncate, close) up.
 * Atomic writes finish through finishDirect (the all-or-nothing check, the
 * fsync when durability needs one). From the call to the SQE it then
 * allocates the request's state (FastDirectWrite, which is the engine's
 * Completion) and one promise, the caller's. Undefined when any of that does
 * not hold: the ordinary path (performOrdered) runs the same route with the
 * same executor's rules.
 */
function writeDirectFast(file: FileContext, request: WriteRequest, route: Route<'direct'>, stats: FileStats): Promise<WriteResult> | undefined {
  const { lock } = route;
  if (route.reach > file.size.value) return undefined;
  const hold = lock.exclusive ? file.locks.holdExclusive(lock.start, lock.end) : file.locks.holdShared(lock.start, lock.end);
  if (hold === undefined) return undefined;
  if (!file.gate.tryEnter()) {
    file.locks.drop(hold);
    return undefined;
  }
  const op = new FastDirectWrite(file, request, route, stats, hold);
  const promise = new Promise<WriteResult>((resolve, reject) => {
    op.resolve = resolve;
    op.reject = reject;
  });
  try {
    file.io.startWritev(file.fd, request.chunks as Uint8Array[], request.position, route.rwflags, request.signal, op);
  } catch (err) {
    op.fail(err);
  }
  return promise;
}

/** A fast direct write in flight: holds its range (shared, or exclusive for an atomic write) and its place in the gate until the engine reports. */
class FastDirectWrite implements Completion {
  resolve!: (result: WriteResult) => void;
  reject!: (err: unknown) => void;

  constructor(
    private readonly file: FileContext,
    private readonly request: WriteRequest,
    private readonly route: Route<'direct'>,
    private readonly stats: FileStats,
    private readonly hold: Hold,
  ) {}

  complete(n: number): void {
    const { file, request } = this;
    file.locks.drop(this.hold);
    if (n === request.length && this.route.atomic === undefined) {
      countWrite(this.stats, DONE.direct, request.length);
      file.gate.leave();
      this.resolve({ bytesWritten: request.length, path: 'direct' });
      return;
    }
    // Atomic: checked all or nothing, synced if durability needs it. Short (RLIMIT_FSIZE,
    // ENOSPC part way): the rest through the fallback. Still counted in flight.
    finishDirect(file, request, this.route, n).then(
      (outcome) => {
        countWrite(this.stats, outcome, request.length);
        file.gate.leave();
        this.resolve(writeResult(request, outcome));
      },
      (err: unknown) => {
        file.gate.leave();
        this.reject(writeError(file, request, err));
      },
    );
  }

  fail(err: unknown): void {
    this.file.locks.drop(this.hold);
    this.file.gate.leave();
    this.reject(writeError(this.file, this.request, err));
  }
}

function execute(file: FileContext, request: WriteRequest, route: Exclude<WriteRoute, { kind: 'refused' }>): Promise<WriteOutcome> {
  switch (route.kind) {
    case 'direct':
      return writeDirect(file, request, route);
    case 'bounced':
      return writeBounced(file, request, route);
    case 'readModifyWrite':
      return readModifyWrite(file, request, route);
    case 'buffered':
      return writeBuffered(file, request, route);
    case 'fallback':
      return writeFallback(file, request, route, 0);
  }
}

const writeDirect: Executor<'direct'> = async (file, request, route) => {
  const written = await file.underLock(route.lock, () =>
    file.io.writev(file.fd, request.chunks as Uint8Array[], request.position, route.rwflags, request.signal),
  );
  // The common case, without another async step: all written, nothing atomic to check.
  if (written === request.length && !route.atomic) return DONE.direct;
  return finishDirect(file, request, route, written);
};

/** Aligned position and length, misaligned memory: one aligned copy, same position. */
const writeBounced: Executor<'bounced'> = async (file, request, route) => {
  const written = await file.underLock(route.lock, async () => {
    const bounce = bouncePool.acquire(request.length);
    try {
      gather(request.chunks, bounce, 0);
      return await file.io.writev(file.fd, [bounce], request.position, route.rwflags, request.signal);
    } finally {
      bouncePool.release(bounce);
    }
  });
  return finishDirect(file, request, route, written);
};

/** Reads the partial edge blocks of the span, lays the caller's bytes over them, writes the span. The span lies inside the file. */
const readModifyWrite: Executor<'readModifyWrite'> = async (file, request, route) => {
  const { span } = route;
  const { position, length } = request;
  const align = file.facts.caps.direct.offsetAlign;
  const written = await file.underLock(route.lock, async () => {
    const bounce = bouncePool.acquire(span.end - span.start);
    try {
      for (const block of partialBlocks(span, position, length, align)) {
        const view = bounce.subarray(block - span.start, block - span.start + align);
        const n = await file.io.readv(file.fd, [view], block, 0, request.signal);
        view.fill(0, n); // a block cut by EOF reads short: the rest is zeros in the file
      }
      gather(request.chunks, bounce, position - span.start);
      const n = await file.io.writev(file.fd, [bounce], span.start, route.rwflags, request.signal);
      // How many of the caller's bytes reached the disk.
      return Math.max(0, Math.min(length, span.start + n - position));
    } finally {
      bouncePool.release(bounce);
    }
  });
  return finishDirect(file, request, route, written);
};

/** After a direct write: the atomic result check and durability step, or the buffered rest of a short write. */
async function finishDirect(
  file: FileContext,
  request: WriteRequest,
  route: Route<'direct' | 'bounced' | 'readModifyWrite'>,
  written: number,
): Promise<WriteOutcome> {
  if (route.atomic) {
    checkAtomicResult(written, route.atomic);
    if (route.syncAfter) await file.io.fsync(file.fd, true);
  }
  if (written < request.length) {
    const rest = fallBack(request, file.facts, route.size, route.rwflags, route.reach, `direct write was short (${written} of ${request.length} bytes)`);
    if (rest.kind === 'refused') throw rest.error;
    const outcome = await writeFallback(file, request, rest as Route<'fallback'>, written);
    return { ...outcome, startedAs: route.kind, atomic: route.atomic !== undefined };
  }
  return route.atomic ? { kind: route.kind, atomic: true } : DONE[route.kind];
}

/** Outcomes of writes that completed on the route they were decided on, not atomic: made once. */
const DONE = {
  direct: { kind: 'direct', atomic: false },
  bounced: { kind: 'bounced', atomic: false },
  readModifyWrite: { kind: 'readModifyWrite', atomic: false },
  buffered: { kind: 'buffered', atomic: false },
  fallback: { kind: 'fallback', atomic: false },
} as const satisfies Record<string, WriteOutcome>;

/** Through the page cache, as asked: a cache mode, or an fd opened without `direct` (no cache dropping). */
const writeBuffered: Executor<'buffered'> = (file, request, route) =>
  file.underLock(route.lock, async () => {
    const { chunks, position, length } = request;
    const fd = await file.buffered();
    if (route.cache === 'default') {
      await writeAll(file, fd, chunks, position, length, route.rwflags, request.signal);
    } else {
      const target = { engine: file.io, fd, dontcache: file.facts.caps.dontcache };
      const written = await writeCached(target, route.cache as Exclude<CacheMode, 'default'>, chunks as Uint8Array[], position, route.rwflags, route.lock.start, request.signal);
      if (written < length) await finishBuffered(file.io, fd, chunks, position, length, written, route.rwflags, route.lock.start, request.signal);
    }
    return DONE.buffered;
  });

/** Bytes [done, length) through the page cache, then written back and dropped (execute/fallback.ts). */
function writeFallback(file: FileContext, request: WriteRequest, route: Route<'fallback'>, done: number): Promise<WriteOutcome> {
  return file.underLock(route.lock, async () => {
    await finishBuffered(file.io, await file.buffered(), request.chunks, request.position, request.length, done, route.rwflags, route.lock.start, request.signal);
    return DONE.fallback;
  });
}

/** A buffered write to `fd`, repeated until all of it is written. */
async function writeAll(
  file: FileContext,
  fd: number,
  chunks: readonly Uint8Array[],
  position: number,
  length: number,
  rwflags: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const written = await file.io.writev(fd, skipBytes(chunks, done), position + done, rwflags, signal);
    if (written <= 0) throw new OdirectError('ERR_SHORT_WRITE', `write at ${position + done} wrote nothing`, { path: file.path });
    done += written;
  }
}
