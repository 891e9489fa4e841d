// Doing a read: decide its route (policies/route.ts), run it, retry once clamped on EIO.
import { assertViewUnchanged } from '../engines/caller-memory';
import type { Completion } from '../engines/engine';
import { bouncePool } from '../mechanisms/bounce-pool';
import { countRead, decideRead, readNeedsSize, type ReadRequest, type ReadRoute } from '../policies/route';
import { withContext } from '../errors';
import { AbortError } from '../habits';
import type { FileStats } from '../types';
import type { FileContext } from './context';

const EIO = 5;

/**
 * Reads into `request.into` at `request.position`; bytes read (fewer at end of
 * file). Counted in flight (truncate and close wait for it); a kernel error gets
 * the path and range. Refusals reject before any I/O.
 */
export function performRead(file: FileContext, request: ReadRequest, stats: FileStats): Promise<number> {
  // The fast path: inside the size this handle knows (no statx), aligned, no
  // barrier up: from the call to the SQE with the request's state (FastDirectRead,
  // the engine's Completion) and one promise, the caller's.
  if (!readNeedsSize(request, file.facts, file.size.value)) {
    const route = decideRead(request, file.facts, undefined);
    if (route.kind === 'direct' && route.length === request.into.byteLength && file.gate.tryEnter()) {
      const op = new FastDirectRead(file, request, route, stats);
      const promise = new Promise<number>((resolve, reject) => {
        op.resolve = resolve;
        op.reject = reject;
      });
      try {
        file.io.startReadv(file.fd, [request.into], request.position, 0, request.signal, op);
      } catch (err) {
        op.fail(err);
      }
      return promise;
    }
  }
  return file.gate.run(() => readOrdered(file, request, stats)).catch((err: unknown) => {
    throw readError(file, request, err);
  });
}

/** A fast direct read in flight: counted in the gate until the engine reports. */
class FastDirectRead implements Completion {
  resolve!: (n: number) => void;
  reject!: (err: unknown) => void;

  constructor(
    private readonly file: FileContext,
    private readonly request: ReadRequest,
    private readonly route: Extract<ReadRoute, { kind: 'direct' }>,
    private readonly stats: FileStats,
  ) {}

  complete(n: number): void {
    countRead(this.stats, DIRECT_ATTEMPT, n);
    this.file.gate.leave();
    this.resolve(n);
  }

  fail(err: unknown): void {
    const { file, request } = this;
    if ((err as { errno?: number }).errno !== EIO) {
      file.gate.leave();
      this.reject(readError(file, request, err));
      return;
    }
    retryClamped(file, request, this.route, err, this.stats).then(
      (n) => {
        file.gate.leave();
        this.resolve(n);
      },
      (failed: unknown) => {
        file.gate.leave();
        this.reject(readError(file, request, failed));
      },
    );
  }
}

const DIRECT_ATTEMPT: ReadRoute['kind'][] = ['direct'];

function readError(file: FileContext, request: ReadRequest, err: unknown): unknown {
  return withContext(err, { path: file.path, position: request.position, length: request.into.byteLength });
}

async function readOrdered(file: FileContext, request: ReadRequest, stats: FileStats): Promise<number> {
  // Aborted while it waited for its turn: nothing of it is issued.
  if (request.signal?.aborted) throw new AbortError('preadv2', request.signal.reason);
  const size = readNeedsSize(request, file.facts, file.size.value) ? file.statSize() : undefined;
  const route = decideRead(request, file.facts, size);
  if (route.kind === 'refused') throw route.error;
  let n: number;
  try {
    n = await executeRead(file, request, route);
  } catch (err) {
    if ((err as { errno?: number }).errno !== EIO || route.kind === 'buffered') throw err;
    return retryClamped(file, request, route, err, stats);
  }
  countRead(stats, [route.kind], n);
  return n;
}

/**
 * The size this handle knows can be stale (another handle cut the file): if
 * the read ran past the block holding EOF, ask again, clamped, once.
 */
async function retryClamped(file: FileContext, request: ReadRequest, route: Exclude<ReadRoute, { kind: 'refused' | 'buffered' }>, err: unknown, stats: FileStats): Promise<number> {
  const clamped = decideRead(request, file.facts, file.statSize());
  if (clamped.kind === 'refused' || clamped.length >= route.length) throw err;
  const n = await executeRead(file, request, clamped);
  countRead(stats, [route.kind, clamped.kind], n);
  return n;
}

async function executeRead(file: FileContext, request: ReadRequest, route: Exclude<ReadRoute, { kind: 'refused' }>): Promise<number> {
  const { into, position } = request;
  switch (route.kind) {
    case 'empty':
      return 0;
    case 'buffered':
      return file.io.readv(await file.buffered(), [into], position, 0, request.signal);
    case 'direct':
      return file.io.readv(file.fd, [route.length === into.byteLength ? into : into.subarray(0, route.length)], position, 0, request.signal);
    case 'bounced': {
      // Read the enclosing aligned range and copy out the part asked for.
      const { span, length } = route;
      const bounce = bouncePool.acquire(span.end - span.start);
      try {
        const intoLength = into.byteLength;
        const n = await file.io.readv(file.fd, [bounce], span.start, 0, request.signal);
        const available = Math.max(0, Math.min(length, span.start + n - position));
        assertViewUnchanged(into, intoLength); // detached or shrunk while the read ran: a typed error
        into.set(bounce.subarray(position - span.start, position - span.start + available));
        return available;
      } finally {
        bouncePool.release(bounce);
      }
    }
  }
}
