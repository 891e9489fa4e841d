// Which way a write or a read goes: one pure function each, returning the route
// as a value (docs/architecture.md has the table). No I/O and no state: the
// executors (lib/execute/) do what the route says, the mechanisms (lib/mechanisms/)
// hold the state. The unit tests (test/unit/route.test.ts) pin every row.
//
// The only fact that moves while a write waits for its turn is the file's size
// (earlier extending writes grow it, a truncate cuts it). A route says which size
// it was decided against (`size`); the caller decides again, with this same
// function, if the size has moved when the write's turn comes. How far a write
// reaches does not depend on the size, so it is ordered the same either way.
import { C } from '../native';
import { AtomicWriteError, OdirectError, UnsupportedError } from '../errors';
import type { AlignmentMode, Capabilities, CacheMode, FallbackMode, FileStats } from '../types';
import { alignmentError, findMisalignment } from './alignment';
import { checkAtomicWrite, type AtomicRequest } from './atomic';
import { atomicWriteNeedsExclusiveRange } from './atomic-overlap';
import { durableWriteFlags, syncAfterDurableWrite } from './durability';
import { alignedSpan, type Span } from './rmw';

/** One write, as the caller asked for it (arguments already checked). */
export interface WriteRequest {
  chunks: readonly Uint8Array[];
  position: number;
  /** Total bytes of `chunks`. */
  length: number;
  atomic: boolean;
  cache: CacheMode;
  dsync: boolean;
  /** The caller's AbortSignal, handed to every read and write the route makes. */
  signal?: AbortSignal;
}

/** What the handle knows about its file that does not change while it is open. */
export interface FileFacts {
  path: string;
  caps: Capabilities;
  /** The fd honours O_DIRECT (opened with it, and the filesystem bypasses the cache). */
  direct: boolean;
  /** Direct I/O was asked for at open (`direct` option). */
  directRequested: boolean;
  /** Opened O_DSYNC: every write is durable when it completes. */
  openDsync: boolean;
  alignment: AlignmentMode;
  fallback: FallbackMode;
  pageSize: number;
}

/** The byte range a route holds in the file's range lock while it does its I/O. */
export interface LockRange {
  start: number;
  end: number;
  /** Exclusive: nothing overlapping runs at the same time. Shared: only exclusive holders conflict. */
  exclusive: boolean;
}

interface Routed {
  /** The size this route was decided against. */
  size: number;
  /** RWF flags of the write syscall(s). */
  rwflags: number;
  /**
   * Where the bytes this write puts on disk end. Past the file's size it is an
   * extending write: ordered behind earlier ones, cut back if it fails.
   */
  reach: number;
  lock: LockRange;
}

/** Direct-I/O routes carry the atomic rules' request (checked again on the result) and the durability step. */
interface DirectRouted extends Routed {
  atomic: AtomicRequest | undefined;
  /** fdatasync after the write completes, before it counts as done (policies/durability.ts). */
  syncAfter: boolean;
}

export type WriteRoute =
  /** Straight to the kernel: aligned position, length and memory. */
  | (DirectRouted & { kind: 'direct' })
  /** Aligned position and length, misaligned memory: gathered into one aligned bounce buffer. */
  | (DirectRouted & { kind: 'bounced' })
  /** Misaligned position or length, inside the file: whole blocks of `span`, edges read first. */
  | (DirectRouted & { kind: 'readModifyWrite'; span: Span })
  /** Through the page cache because the caller asked: a cache mode, or an fd opened without `direct`. */
  | (Routed & { kind: 'buffered'; cache: CacheMode })
  /** Direct I/O asked for but not possible here: through the page cache, then written back and dropped. */
  | (Routed & { kind: 'fallback'; reason: string })
  /** Not done at all, before any I/O. */
  | { kind: 'refused'; error: OdirectError };

export type WriteRouteKind = WriteRoute['kind'];

/**
 * What happens to this write: the route, decided from the request and the
 * file's facts against the file's `size`.
 */
export function decideWrite(request: WriteRequest, facts: FileFacts, size: number): WriteRoute {
  const { chunks, position, length, cache } = request;
  const end = position + length;
  const caps = facts.caps;
  let atomic: AtomicRequest | undefined;
  if (request.atomic) {
    // Atomic writes are direct only: a cache mode would write them buffered.
    if (cache !== 'default') {
      return refuse(new AtomicWriteError('ERR_ATOMIC_NOT_DIRECT', `atomic writes are direct only; options.cache '${cache}' would write buffered`));
    }
    atomic = { path: facts.path, position, length, segments: chunks.length, direct: facts.direct };
    try {
      checkAtomicWrite(caps, atomic);
    } catch (err) {
      return refuse(err as OdirectError);
    }
  }
  const durable = request.dsync || facts.openDsync;
  const rwflags = (request.dsync ? durableWriteFlags() : 0) | (request.atomic ? C.RWF_ATOMIC : 0);

  if (cache !== 'default' || !facts.direct) {
    const lock = pageLock(position, end, size, facts.pageSize);
    if (cache !== 'default') return { kind: 'buffered', cache, size, rwflags, reach: end, lock };
    // The caller asked for ordinary page-cache I/O: no fallback, no cache dropping.
    if (!facts.directRequested) return { kind: 'buffered', cache, size, rwflags, reach: end, lock };
    return fallBack(request, facts, size, rwflags, end, 'direct I/O is not available');
  }

  const { memAlign, offsetAlign } = caps.direct;
  const misaligned = findMisalignment(chunks, position, length, { memAlign, offsetAlign });
  const syncAfter = atomic !== undefined && durable && syncAfterDurableWrite(caps, true) !== 'none';
  // Aligned writes share their range, except overlapping software (CoW) atomic writes, which
  // never run together (policies/atomic-overlap.ts).
  const exclusive = atomicWriteNeedsExclusiveRange(caps, request.atomic);
  if (!misaligned) {
    return { kind: 'direct', size, rwflags, reach: end, lock: { start: position, end, exclusive }, atomic, syncAfter };
  }
  if (facts.alignment === 'strict') return refuse(alignmentError(misaligned, 'write', facts.path, position, length));
  if (misaligned.remedy === 'bounce') {
    return { kind: 'bounced', size, rwflags, reach: end, lock: { start: position, end, exclusive }, atomic, syncAfter };
  }
  // A read-modify-write writes whole blocks: it reaches the end of its last
  // block, so past EOF it is ordered as an extending write (else it could cut
  // another extending write off when a failure trims the file back).
  const span = alignedSpan(position, length, offsetAlign);
  if (span.end > size) {
    // Its last block lies past EOF. Written direct, the whole block would make
    // the file longer than asked until trimmed back (visible to readers, and a
    // trim by a stale size could cut another writer's data). ext4 writes
    // unaligned extending writes through the page cache; so does odirect.
    return fallBack(request, facts, size, rwflags, span.end, 'an unaligned write past the end of file');
  }
  // The span is held exclusively: two sub-block writes to one block never
  // interleave, and no aligned write lands between its read and its write.
  return { kind: 'readModifyWrite', span, size, rwflags, reach: span.end, lock: { start: span.start, end: span.end, exclusive: true }, atomic, syncAfter };
}

/**
 * The rest of a write goes through the page cache — or, with fallback 'error',
 * is refused. Also the route of a direct write that came back short.
 */
export function fallBack(request: WriteRequest, facts: FileFacts, size: number, rwflags: number, reach: number, reason: string): WriteRoute {
  const { position, length } = request;
  if (facts.fallback === 'error') {
    return refuse(
      new UnsupportedError('ERR_DIRECT_FAILED', `${reason} on ${facts.path} and options.fallback is 'error'`, {
        path: facts.path,
        position,
        length,
      }),
    );
  }
  return { kind: 'fallback', reason, size, rwflags, reach, lock: pageLock(position, position + length, size, facts.pageSize) };
}

/**
 * A write through the page cache holds its whole pages exclusively (from the
 * old EOF's page when it extends, since it dirties that page too): a direct
 * write to the same page while it is dirty would collide with it ("Direct I/O
 * collision with buffered writes", and EIO after; docs/kernel-facts.md §9).
 */
function pageLock(position: number, end: number, size: number, page: number): LockRange {
  const from = end > size ? Math.min(position, size) : position;
  return { start: from - (from % page), end: Math.ceil(end / page) * page, exclusive: true };
}

function refuse(error: OdirectError): WriteRoute {
  return { kind: 'refused', error };
}


/** What a write did: the route it completed on, and the direct route it started on if it fell back. */
export interface WriteOutcome {
  readonly kind: Exclude<WriteRouteKind, 'refused'>;
  /** A short direct write finished buffered: the route it started on. */
  readonly startedAs?: 'direct' | 'bounced' | 'readModifyWrite';
  readonly atomic: boolean;
}

/**
 * How a write counts in FileStats when it completes, keyed by its route: one place, called on
 * one line. direct: direct · bounced: direct + bounced · readModifyWrite: direct +
 * readModifyWrite · buffered: buffered · fallback: bufferedFallback (+ the route it started
 * on, if bounced or readModifyWrite) · atomic: + atomic.
 */
export function countWrite(stats: FileStats, outcome: WriteOutcome, bytes: number): void {
  switch (outcome.kind) {
    case 'direct':
      stats.direct++;
      break;
    case 'bounced':
      stats.direct++;
      stats.bounced++;
      break;
    case 'readModifyWrite':
      stats.direct++;
      stats.readModifyWrite++;
      break;
    case 'buffered':
      stats.buffered++;
      break;
    case 'fallback':
      stats.bufferedFallback++;
      if (outcome.startedAs === 'bounced' || outcome.startedAs === 'readModifyWrite') stats[outcome.startedAs]++;
      break;
  }
  if (outcome.atomic) stats.atomic++;
  stats.bytesWritten += bytes;
}

// ---- reads -------------------------------------------------------------------

export interface ReadRequest {
  into: Uint8Array;
  position: number;
  /** The caller's AbortSignal, handed to the read(s) the route makes. */
  signal?: AbortSignal;
}

export type ReadRoute =
  /** The fd is not O_DIRECT: an ordinary read. */
  | { kind: 'buffered'; length: number }
  /** Aligned: into the caller's buffer (a prefix of it when clamped). */
  | { kind: 'direct'; length: number }
  /** Misaligned: the enclosing aligned span is read into a bounce buffer, the part asked for copied out. */
  | { kind: 'bounced'; length: number; span: Span }
  /** A read of nothing: at or past end of file (no syscall). */
  | { kind: 'empty'; length: 0 }
  | { kind: 'refused'; error: OdirectError };

/** How a read counts in FileStats: once, and once more as bounced for each bounced attempt (a retry is a second). */
export function countRead(stats: FileStats, attempts: readonly ReadRoute['kind'][], bytes: number): void {
  for (const kind of attempts) if (kind === 'bounced') stats.bounced++;
  stats.reads++;
  stats.bytesRead += bytes;
}

/**
 * Whether a read's end needs the real size: past the size this handle knows, a
 * read is clamped to the block holding EOF, and the known size may be stale.
 */
export function readNeedsSize(request: ReadRequest, facts: FileFacts, knownSize: number): boolean {
  return facts.direct && facts.caps.kind !== 'blockDevice' && request.position + request.into.byteLength > knownSize;
}

/**
 * How a read goes. `size` is the real size when known (statx), or undefined when
 * the read lies inside the size this handle knows. A direct read never asks past
 * the block that holds EOF: nothing is there, and on XFS (6.18) a direct read far
 * past EOF after an extending atomic write and a buffered write beyond it fails
 * with EIO (reproduced with raw syscalls; docs/kernel-facts.md §9).
 */
export function decideRead(request: ReadRequest, facts: FileFacts, size: number | undefined): ReadRoute {
  const { into, position } = request;
  if (!facts.direct) return { kind: 'buffered', length: into.byteLength };
  const { memAlign, readOffsetAlign } = facts.caps.direct;
  const misaligned = findMisalignment([into], position, into.byteLength, { memAlign, offsetAlign: readOffsetAlign });
  if (misaligned && facts.alignment === 'strict') {
    return { kind: 'refused', error: alignmentError(misaligned, 'read', facts.path, position, into.byteLength) };
  }
  let length = into.byteLength;
  if (size !== undefined && facts.caps.kind !== 'blockDevice') {
    const limit = Math.ceil(size / readOffsetAlign) * readOffsetAlign;
    length = position >= size ? 0 : Math.min(length, limit - position);
  }
  if (length === 0) return { kind: 'empty', length: 0 };
  // An aligned request clamped to an aligned limit stays aligned.
  if (!misaligned) return { kind: 'direct', length };
  return { kind: 'bounced', length, span: alignedSpan(position, length, readOffsetAlign) };
}
