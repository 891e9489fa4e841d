// DirectFile.writeSync / readSync: the same routes (policies/route.ts), done
// with pwritev2/preadv2 on the JS thread. Nothing else runs while one does,
// so it needs no place in the range lock or the ordering gate: it only has to
// be allowed to run now. It never waits: async I/O it would be ordered behind
// makes it throw ERR_SYNC_CONFLICT before any I/O —
// - a write whose range lock would wait (an overlapping exclusive request, or,
//   for an exclusive route, any overlapping write), as an async write would;
// - an extending write while any I/O is in flight (extending writes go one at
//   a time, docs/architecture.md);
// - a truncate or close under way.
// A read refuses while a write to an overlapping range is in flight.
// Routes through the page cache (buffered, fallback) and a direct write that
// comes back short are not done here: ERR_SYNC_UNSUPPORTED, use write().
import { OdirectError, UnsupportedError, withContext, AtomicWriteError } from '../errors';
import { bouncePool } from '../mechanisms/bounce-pool';
import { native } from '../native';
import { checkAtomicResult } from '../policies/atomic';
import { gather, partialBlocks } from '../policies/rmw';
import { countRead, countWrite, decideRead, decideWrite, readNeedsSize, type ReadRequest, type ReadRoute, type WriteRequest, type WriteRoute } from '../policies/route';
import type { FileStats } from '../types';
import type { FileContext } from './context';

const EIO = 5;

type SyncWriteRoute = Extract<WriteRoute, { kind: 'direct' | 'bounced' | 'readModifyWrite' }>;

function conflict(file: FileContext, what: string, position: number, length: number): OdirectError {
  return new OdirectError('ERR_SYNC_CONFLICT', `${what} on ${file.path} at ${position} (${length} bytes) would have to wait for async I/O in flight; await it first or use the async method`, {
    path: file.path,
    position,
    length,
  });
}

/** The route, if the synchronous API does it; else throws (refused, or not a direct route). */
function syncRoute(file: FileContext, request: WriteRequest, size: number): SyncWriteRoute {
  const route = decideWrite(request, file.facts, size);
  if (route.kind === 'refused') throw route.error;
  if (route.kind === 'buffered' || route.kind === 'fallback') {
    const why = route.kind === 'fallback' ? route.reason : `options.cache '${route.cache}'`;
    throw new UnsupportedError('ERR_SYNC_UNSUPPORTED', `writeSync does direct writes only; this one goes through the page cache (${why}): use write()`, {
      path: file.path,
      position: request.position,
      length: request.length,
    });
  }
  return route;
}

/** Decides, checks it may run now, writes, counts. Returns the bytes written (all of them). */
export function writeSyncRoute(file: FileContext, request: WriteRequest, stats: FileStats): number {
  const { position, length } = request;
  let route = syncRoute(file, request, file.size.value);
  const extending = route.reach > file.size.value;
  if (file.gate.barred || (extending && file.gate.inFlight > 0) || file.locks.conflicts(route.lock.start, route.lock.end, route.lock.exclusive)) {
    throw conflict(file, 'writeSync', position, length);
  }
  let size = file.size.value;
  if (extending) {
    size = file.refreshSize();
    if (size !== route.size) route = syncRoute(file, request, size);
  }
  try {
    const written = writeRoute(file, request, route);
    if (route.atomic) {
      checkAtomicResult(written, route.atomic);
      if (route.syncAfter) native.fdatasyncSync(file.fd);
    }
    if (written < length) {
      throw new UnsupportedError('ERR_SYNC_UNSUPPORTED', `direct write was short (${written} of ${length} bytes); writeSync does not finish it through the page cache: use write()`);
    }
  } catch (err) {
    const failed = withContext(err, { path: file.path, position, length }, request.atomic ? AtomicWriteError : OdirectError);
    // As the async path: a failed or short extending write leaves nothing past the old end of file.
    if (route.reach > size) truncateBackSync(file, size, failed);
    throw failed;
  }
  if (extending) file.size.grow(position + length);
  countWrite(stats, { kind: route.kind, atomic: route.atomic !== undefined }, length);
  return length;
}

function writeRoute(file: FileContext, request: WriteRequest, route: SyncWriteRoute): number {
  const { fd } = file;
  switch (route.kind) {
    case 'direct':
      // Caller memory too: nothing can detach it while this thread is in the syscall.
      return native.pwritev2Sync(fd, request.chunks as Uint8Array[], request.position, route.rwflags);
    case 'bounced': {
      const bounce = bouncePool.acquire(request.length);
      try {
        gather(request.chunks, bounce, 0);
        return native.pwritev2Sync(fd, [bounce], request.position, route.rwflags);
      } finally {
        bouncePool.release(bounce);
      }
    }
    case 'readModifyWrite': {
      const { span } = route;
      const { position, length } = request;
      const align = file.facts.caps.direct.offsetAlign;
      const bounce = bouncePool.acquire(span.end - span.start);
      try {
        for (const block of partialBlocks(span, position, length, align)) {
          const view = bounce.subarray(block - span.start, block - span.start + align);
          const n = native.preadv2Sync(fd, [view], block, 0);
          view.fill(0, n); // a block cut by EOF reads short: the rest is zeros in the file
        }
        gather(request.chunks, bounce, position - span.start);
        const n = native.pwritev2Sync(fd, [bounce], span.start, route.rwflags);
        return Math.max(0, Math.min(length, span.start + n - position));
      } finally {
        bouncePool.release(bounce);
      }
    }
  }
}

function truncateBackSync(file: FileContext, size: number, failed: unknown): void {
  try {
    native.ftruncateSync(file.fd, size);
  } catch (err) {
    if (failed instanceof Error) {
      failed.message += `; truncating back to ${size} bytes failed too (${(err as Error).message}): the file may keep blocks past that size`;
    }
  }
}

/** Decides, checks it may run now, reads (retried once clamped on EIO, as read()), counts. */
export function readSyncRoute(file: FileContext, request: ReadRequest, stats: FileStats): number {
  const { into, position } = request;
  const context = { path: file.path, position, length: into.byteLength };
  if (file.gate.barred || file.locks.conflicts(position, position + into.byteLength, true)) throw conflict(file, 'readSync', position, into.byteLength);
  try {
    const size = readNeedsSize(request, file.facts, file.size.value) ? file.statSize() : undefined;
    const route = decideRead(request, file.facts, size);
    if (route.kind === 'refused') throw route.error;
    let n: number;
    try {
      n = readRoute(file, request, route);
    } catch (err) {
      if ((err as { errno?: number }).errno !== EIO || route.kind === 'buffered') throw err;
      const clamped = decideRead(request, file.facts, file.statSize());
      if (clamped.kind === 'refused' || clamped.length >= route.length) throw err;
      n = readRoute(file, request, clamped);
      countRead(stats, [route.kind, clamped.kind], n);
      return n;
    }
    countRead(stats, [route.kind], n);
    return n;
  } catch (err) {
    throw withContext(err, context);
  }
}

function readRoute(file: FileContext, request: ReadRequest, route: Exclude<ReadRoute, { kind: 'refused' }>): number {
  const { into, position } = request;
  switch (route.kind) {
    case 'empty':
      return 0;
    case 'buffered': {
      const fd = file.bufferedFdNow();
      if (fd === undefined) {
        throw new UnsupportedError('ERR_SYNC_UNSUPPORTED', `readSync on ${file.path}: direct I/O is not available and no buffered fd is open yet: use read()`);
      }
      return native.preadv2Sync(fd, [into], position, 0);
    }
    case 'direct':
      return native.preadv2Sync(file.fd, [route.length === into.byteLength ? into : into.subarray(0, route.length)], position, 0);
    case 'bounced': {
      const { span, length } = route;
      const bounce = bouncePool.acquire(span.end - span.start);
      try {
        const n = native.preadv2Sync(file.fd, [bounce], span.start, 0);
        const available = Math.max(0, Math.min(length, span.start + n - position));
        into.set(bounce.subarray(position - span.start, position - span.start + available));
        return available;
      } finally {
        bouncePool.release(bounce);
      }
    }
  }
}
