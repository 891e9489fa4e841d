// The write and read route tables (lib/policies/route.ts, docs/architecture.md): every
// row is a pure decision, checked here without a kernel, root or loop device.
// Rows marked "fuzz" are findings of test/fuzz.test.ts that were routing decisions
// (their kernel versions stay pinned there).
import { describe, expect, it } from 'vitest';
import { alignedBuffer } from '../../lib/aligned';
import { AlignmentError, AtomicWriteError, UnsupportedError } from '../../lib/errors';
import { C } from '../../lib/native';
import {
  countRead,
  countWrite,
  decideRead,
  decideWrite,
  fallBack,
  readNeedsSize,
  type FileFacts,
  type WriteRequest,
  type WriteRoute,
} from '../../lib/policies/route';
import type { Capabilities, FileStats } from '../../lib/types';

const KiB = 1024;
const PAGE = 4096;
const SECTOR = 512;

function caps(over: Partial<Capabilities> = {}): Capabilities {
  return {
    path: '/f',
    kind: 'file',
    fsType: 'xfs',
    size: 0,
    direct: { supported: true, memAlign: SECTOR, offsetAlign: SECTOR, readOffsetAlign: SECTOR },
    atomic: { supported: true, unitMin: PAGE, unitMax: 64 * KiB, unitMaxOpt: 0, segmentsMax: 1 },
    dontcache: true,
    ioUring: { available: true },
    dax: false,
    ...over,
  };
}

function facts(over: Partial<FileFacts> = {}): FileFacts {
  return {
    path: '/f',
    caps: caps(),
    direct: true,
    directRequested: true,
    openDsync: false,
    alignment: 'bounce',
    fallback: 'buffered',
    pageSize: PAGE,
    ...over,
  };
}

/** `length` bytes at an address `misalign` bytes past a 4 KiB boundary. */
function bytesAt(length: number, misalign = 0): Uint8Array {
  return alignedBuffer(length + PAGE).subarray(misalign, misalign + length);
}

function request(position: number, chunks: Uint8Array[], over: Partial<WriteRequest> = {}): WriteRequest {
  const length = chunks.reduce((n, c) => n + c.byteLength, 0);
  return { chunks, position, length, atomic: false, cache: 'default', dsync: false, ...over };
}

interface Row {
  name: string;
  request: () => WriteRequest;
  facts?: Partial<FileFacts>;
  /** The file's size the route is decided against. */
  size: number;
  expected: Record<string, unknown>;
}

const shared = (start: number, end: number) => ({ start, end, exclusive: false });
const exclusive = (start: number, end: number) => ({ start, end, exclusive: true });

// The write route table. Columns: the request and the file, then what decideWrite returns.
const WRITE_ROWS: Row[] = [
  // direct
  { name: 'aligned 4 KiB inside the file', request: () => request(8 * KiB, [bytesAt(PAGE)]), size: 64 * KiB,
    expected: { kind: 'direct', reach: 12 * KiB, lock: shared(8 * KiB, 12 * KiB), rwflags: 0, syncAfter: false } },
  { name: 'aligned, extending the file (direct: aligned writes past EOF go straight)', request: () => request(64 * KiB, [bytesAt(PAGE)]), size: 64 * KiB,
    expected: { kind: 'direct', reach: 68 * KiB, lock: shared(64 * KiB, 68 * KiB) } },
  { name: 'aligned writev of two sector chunks', request: () => request(0, [bytesAt(SECTOR), bytesAt(SECTOR)]), size: PAGE,
    expected: { kind: 'direct', reach: 2 * SECTOR } },
  { name: 'dsync: RWF_DSYNC on the write', request: () => request(0, [bytesAt(PAGE)], { dsync: true }), size: PAGE,
    expected: { kind: 'direct', rwflags: C.RWF_DSYNC, syncAfter: false } },
  { name: 'atomic 16 KiB, naturally aligned', request: () => request(16 * KiB, [bytesAt(16 * KiB)], { atomic: true }), size: 64 * KiB,
    expected: { kind: 'direct', rwflags: C.RWF_ATOMIC, syncAfter: false, atomic: { path: '/f', position: 16 * KiB, length: 16 * KiB, segments: 1, direct: true } } },
  { name: 'atomic on XFS with software (CoW) atomics: its range exclusive (policies/atomic-overlap.ts)', request: () => request(16 * KiB, [bytesAt(16 * KiB)], { atomic: true }), size: 64 * KiB,
    expected: { kind: 'direct', lock: exclusive(16 * KiB, 32 * KiB) } },
  { name: 'atomic on XFS whose device takes the whole unit in hardware: shared', request: () => request(16 * KiB, [bytesAt(16 * KiB)], { atomic: true }), facts: { caps: caps({ device: { atomicWriteUnitMax: 64 * KiB } as Capabilities['device'] }) }, size: 64 * KiB,
    expected: { kind: 'direct', lock: shared(16 * KiB, 32 * KiB) } },
  { name: 'atomic from misaligned memory on software-atomic XFS: bounced, exclusive', request: () => request(0, [bytesAt(PAGE, 8)], { atomic: true }), size: PAGE,
    expected: { kind: 'bounced', lock: exclusive(0, PAGE) } },
  { name: 'atomic + dsync on XFS: fdatasync after (policies/durability.ts)', request: () => request(0, [bytesAt(PAGE)], { atomic: true, dsync: true }), size: PAGE,
    expected: { kind: 'direct', rwflags: C.RWF_ATOMIC | C.RWF_DSYNC, syncAfter: true } },
  { name: 'atomic on an O_DSYNC handle on XFS: fdatasync after', request: () => request(0, [bytesAt(PAGE)], { atomic: true }), facts: { openDsync: true }, size: PAGE,
    expected: { kind: 'direct', rwflags: C.RWF_ATOMIC, syncAfter: true } },
  { name: 'atomic + dsync on ext4: nothing after', request: () => request(0, [bytesAt(PAGE)], { atomic: true, dsync: true }), facts: { caps: caps({ fsType: 'ext4' }) }, size: PAGE,
    expected: { kind: 'direct', syncAfter: false } },
  // bounced
  { name: 'aligned position and length, misaligned memory', request: () => request(PAGE, [bytesAt(PAGE, 1)]), size: 64 * KiB,
    expected: { kind: 'bounced', reach: 2 * PAGE, lock: shared(PAGE, 2 * PAGE) } },
  { name: 'writev whose chunk length is not a sector multiple, total aligned', request: () => request(0, [bytesAt(SECTOR + 12), bytesAt(SECTOR - 12)]), size: PAGE,
    expected: { kind: 'bounced', reach: 2 * SECTOR } },
  { name: 'atomic from misaligned memory: bounced, still RWF_ATOMIC', request: () => request(0, [bytesAt(PAGE, 8)], { atomic: true }), size: PAGE,
    expected: { kind: 'bounced', rwflags: C.RWF_ATOMIC } },
  // read-modify-write
  { name: 'unaligned 1,000 bytes inside the file', request: () => request(1000, [bytesAt(1000)]), size: 64 * KiB,
    expected: { kind: 'readModifyWrite', span: { start: 512, end: 2048 }, reach: 2048, lock: exclusive(512, 2048) } },
  { name: 'unaligned position, span ending exactly at EOF', request: () => request(100, [bytesAt(412)]), size: SECTOR,
    expected: { kind: 'readModifyWrite', span: { start: 0, end: 512 }, reach: 512, lock: exclusive(0, 512) } },
  // buffered, as asked
  { name: "cache 'dontcache', inside the file: its whole pages, exclusive", request: () => request(100, [bytesAt(100)], { cache: 'dontcache' }), size: 64 * KiB,
    expected: { kind: 'buffered', cache: 'dontcache', reach: 200, lock: exclusive(0, PAGE) } },
  { name: "cache 'writethrough' extending: from the old EOF's page", request: () => request(70 * KiB, [bytesAt(100)], { cache: 'writethrough' }), size: 64 * KiB + 10,
    expected: { kind: 'buffered', cache: 'writethrough', reach: 70 * KiB + 100, lock: exclusive(64 * KiB, 72 * KiB) } },
  { name: "fuzz: a cache-mode write shares its page with a direct sector write: the page is locked", request: () => request(3 * PAGE, [bytesAt(100)], { cache: 'dontcache' }), size: 16 * PAGE,
    expected: { kind: 'buffered', lock: exclusive(3 * PAGE, 4 * PAGE) } },
  { name: 'opened with direct: false: ordinary page-cache write', request: () => request(100, [bytesAt(100)]), facts: { direct: false, directRequested: false }, size: 0,
    expected: { kind: 'buffered', cache: 'default', reach: 200, lock: exclusive(0, PAGE) } },
  { name: "opened with direct: false and fallback 'error': buffered as asked, not refused", request: () => request(0, [bytesAt(PAGE)]), facts: { direct: false, directRequested: false, fallback: 'error' }, size: 0,
    expected: { kind: 'buffered', cache: 'default' } },
  // fallback
  { name: 'direct asked, filesystem has none (tmpfs, data=journal)', request: () => request(0, [bytesAt(PAGE)]), facts: { direct: false }, size: 0,
    expected: { kind: 'fallback', reason: 'direct I/O is not available', reach: PAGE, lock: exclusive(0, PAGE) } },
  { name: 'unaligned write whose last block lies past EOF', request: () => request(1000, [bytesAt(1000)]), size: 1500,
    expected: { kind: 'fallback', reason: 'an unaligned write past the end of file', reach: 2048, lock: exclusive(0, PAGE) } },
  { name: 'fuzz: writev of a misaligned sector chunk and a 7-byte chunk into an empty file (1,031 bytes, past EOF)', request: () => request(0, [bytesAt(1024, 1), bytesAt(7)]), size: 0,
    expected: { kind: 'fallback', reason: 'an unaligned write past the end of file', reach: 1536, lock: exclusive(0, PAGE) } },
  { name: 'fuzz: 10 bytes into the partial last block: never a whole-block direct write past EOF', request: () => request(PAGE + 90, [bytesAt(10)]), size: PAGE + 100,
    expected: { kind: 'fallback', reach: PAGE + SECTOR, lock: exclusive(PAGE, 2 * PAGE) } },
  // refused, before any I/O
  { name: "strict alignment, misaligned memory", request: () => request(0, [bytesAt(PAGE, 1)]), facts: { alignment: 'strict' }, size: PAGE,
    expected: { kind: 'refused', error: { class: AlignmentError, code: 'ERR_ALIGNMENT_MEMORY' } } },
  { name: 'strict alignment, unaligned offset', request: () => request(100, [bytesAt(PAGE)]), facts: { alignment: 'strict' }, size: 64 * KiB,
    expected: { kind: 'refused', error: { class: AlignmentError, code: 'ERR_ALIGNMENT_OFFSET' } } },
  { name: 'strict alignment, unaligned length', request: () => request(0, [bytesAt(100)]), facts: { alignment: 'strict' }, size: 64 * KiB,
    expected: { kind: 'refused', error: { class: AlignmentError, code: 'ERR_ALIGNMENT_LENGTH' } } },
  { name: "unaligned past EOF with fallback 'error'", request: () => request(1000, [bytesAt(1000)]), facts: { fallback: 'error' }, size: 1500,
    expected: { kind: 'refused', error: { class: UnsupportedError, code: 'ERR_DIRECT_FAILED' } } },
  { name: 'atomic with a cache mode', request: () => request(0, [bytesAt(PAGE)], { atomic: true, cache: 'dontcache' }), size: PAGE,
    expected: { kind: 'refused', error: { class: AtomicWriteError, code: 'ERR_ATOMIC_NOT_DIRECT' } } },
  { name: 'atomic on a buffered fd', request: () => request(0, [bytesAt(PAGE)], { atomic: true }), facts: { direct: false }, size: PAGE,
    expected: { kind: 'refused', error: { class: AtomicWriteError, code: 'ERR_ATOMIC_NOT_DIRECT' } } },
  { name: 'atomic where the filesystem has none', request: () => request(0, [bytesAt(PAGE)], { atomic: true }), facts: { caps: caps({ atomic: { supported: false, unitMin: 0, unitMax: 0, unitMaxOpt: 0, segmentsMax: 0, reason: 'no' } }) }, size: PAGE,
    expected: { kind: 'refused', error: { class: AtomicWriteError, code: 'EOPNOTSUPP' } } },
  { name: 'atomic, length not a power of two', request: () => request(0, [bytesAt(3 * PAGE)], { atomic: true }), size: PAGE,
    expected: { kind: 'refused', error: { class: AtomicWriteError, code: 'ERR_ATOMIC_NOT_POWER_OF_TWO' } } },
  { name: 'atomic, below the minimum unit', request: () => request(0, [bytesAt(SECTOR)], { atomic: true }), size: PAGE,
    expected: { kind: 'refused', error: { class: AtomicWriteError, code: 'ERR_ATOMIC_TOO_SMALL' } } },
  { name: 'atomic, above the maximum unit', request: () => request(0, [bytesAt(128 * KiB)], { atomic: true }), size: PAGE,
    expected: { kind: 'refused', error: { class: AtomicWriteError, code: 'ERR_ATOMIC_TOO_LARGE' } } },
  { name: 'atomic, not naturally aligned', request: () => request(PAGE, [bytesAt(8 * KiB)], { atomic: true }), size: PAGE,
    expected: { kind: 'refused', error: { class: AtomicWriteError, code: 'ERR_ATOMIC_UNALIGNED' } } },
  { name: 'atomic writev of two buffers where one is allowed', request: () => request(0, [bytesAt(2 * KiB), bytesAt(2 * KiB)], { atomic: true }), size: PAGE,
    expected: { kind: 'refused', error: { class: AtomicWriteError, code: 'ERR_ATOMIC_SEGMENTS' } } },
];

function check(route: WriteRoute, expected: Record<string, unknown>): void {
  const { error, ...rest } = expected as { error?: { class: new (...a: never[]) => Error; code: string } };
  expect(route).toMatchObject(rest);
  if (error) {
    expect(route.kind).toBe('refused');
    const e = (route as Extract<WriteRoute, { kind: 'refused' }>).error;
    expect(e).toBeInstanceOf(error.class);
    expect(e.code).toBe(error.code);
  }
}

describe('decideWrite: the write route table', () => {
  for (const row of WRITE_ROWS) {
    it(row.name, () => {
      const route = decideWrite(row.request(), facts(row.facts), row.size);
      check(route, row.expected);
      if (route.kind !== 'refused') expect(route.size).toBe(row.size);
    });
  }

  it('how far a write reaches does not depend on the size it is decided against', () => {
    // The write is ordered by its reach before its turn, and decided again if the size moved.
    for (const row of WRITE_ROWS) {
      const req = row.request();
      const reaches = [0, 1500, row.size, 1 << 30]
        .map((size) => decideWrite(req, facts(row.facts), size))
        .filter((r) => r.kind !== 'refused')
        .map((r) => (r as Exclude<WriteRoute, { kind: 'refused' }>).reach);
      expect(new Set(reaches).size, row.name).toBeLessThanOrEqual(1);
    }
  });

  it('an unaligned write decided past EOF becomes a read-modify-write once earlier writes cover its span', () => {
    const req = request(1000, [bytesAt(1000)]);
    expect(decideWrite(req, facts(), 1500).kind).toBe('fallback');
    expect(decideWrite(req, facts(), 2048).kind).toBe('readModifyWrite');
    // and back, after a truncate
    expect(decideWrite(req, facts(), 0).kind).toBe('fallback');
  });

  it('a short direct write falls back for the rest, or is refused with fallback error', () => {
    const req = request(0, [bytesAt(PAGE)]);
    expect(fallBack(req, facts(), PAGE, 0, PAGE, 'direct write was short (512 of 4096 bytes)')).toMatchObject({
      kind: 'fallback',
      reason: 'direct write was short (512 of 4096 bytes)',
      lock: exclusive(0, PAGE),
    });
    const refused = fallBack(req, facts({ fallback: 'error' }), PAGE, 0, PAGE, 'direct write was short');
    expect(refused.kind).toBe('refused');
    expect((refused as { error: Error }).error).toBeInstanceOf(UnsupportedError);
  });
});

describe('countWrite: one table keyed by the route', () => {
  const zero = (): FileStats => ({ direct: 0, buffered: 0, bufferedFallback: 0, bounced: 0, readModifyWrite: 0, atomic: 0, reads: 0, bytesWritten: 0, bytesRead: 0, syncs: 0 });
  it.each([
    [{ kind: 'direct', atomic: false }, { direct: 1 }],
    [{ kind: 'direct', atomic: true }, { direct: 1, atomic: 1 }],
    [{ kind: 'bounced', atomic: false }, { direct: 1, bounced: 1 }],
    [{ kind: 'readModifyWrite', atomic: false }, { direct: 1, readModifyWrite: 1 }],
    [{ kind: 'buffered', atomic: false }, { buffered: 1 }],
    [{ kind: 'fallback', atomic: false }, { bufferedFallback: 1 }],
    [{ kind: 'fallback', startedAs: 'bounced', atomic: false }, { bufferedFallback: 1, bounced: 1 }],
  ] as const)('%o counts %o', (outcome, counts) => {
    const stats = zero();
    countWrite(stats, outcome, 100);
    expect(stats).toEqual({ ...zero(), ...counts, bytesWritten: 100 });
  });
});

describe('countRead', () => {
  it('counts a read once, and each bounced attempt as bounced', () => {
    const stats = { direct: 0, buffered: 0, bufferedFallback: 0, bounced: 0, readModifyWrite: 0, atomic: 0, reads: 0, bytesWritten: 0, bytesRead: 0, syncs: 0 };
    countRead(stats, ['bounced', 'bounced'], 100);
    countRead(stats, ['direct'], 4096);
    expect(stats).toMatchObject({ reads: 2, bounced: 2, bytesRead: 4196 });
  });
});

describe('decideRead: the read route table', () => {
  const read = (position: number, length: number, misalign = 0) => ({ into: bytesAt(length, misalign) as Uint8Array, position });
  it.each([
    ['aligned, inside the known size', read(0, PAGE), {}, undefined, { kind: 'direct', length: PAGE }],
    ['misaligned memory: the enclosing span through a bounce buffer', read(PAGE, PAGE, 3), {}, undefined, { kind: 'bounced', length: PAGE, span: { start: PAGE, end: 2 * PAGE } }],
    ['unaligned offset', read(100, 1000), {}, undefined, { kind: 'bounced', length: 1000, span: { start: 0, end: 1536 } }],
    ['buffered fd', read(100, 1000), { direct: false }, undefined, { kind: 'buffered', length: 1000 }],
    ['fuzz: past EOF, clamped to the block that holds EOF', read(0, 1 << 20), {}, 128 * KiB + 64 * KiB + 1050, { kind: 'direct', length: 128 * KiB + 64 * KiB + 1536 }],
    ['fuzz: misaligned, past EOF, clamped', read(128 * KiB + 1000, 100 * KiB, 3), {}, 128 * KiB + 64 * KiB + 1050, { kind: 'bounced', length: 64 * KiB + 1536 - 1000, span: { start: 128 * KiB + 512, end: 128 * KiB + 64 * KiB + 1536 } }],
    ['at or past EOF: nothing to read', read(64 * KiB, PAGE), {}, 64 * KiB, { kind: 'empty', length: 0 }],
    ['block device: never clamped', read(0, PAGE), { caps: caps({ kind: 'blockDevice' }) }, 0, { kind: 'direct', length: PAGE }],
  ] as const)('%s', (_name, req, over, size, expected) => {
    expect(decideRead(req, facts(over as Partial<FileFacts>), size)).toMatchObject(expected);
  });

  it("strict alignment refuses a misaligned read with an AlignmentError", () => {
    const route = decideRead(read(100, 1000), facts({ alignment: 'strict' }), undefined);
    expect(route.kind).toBe('refused');
    expect((route as { error: Error }).error).toBeInstanceOf(AlignmentError);
  });

  it('the real size is read only for a direct read past the known size, never on a block device', () => {
    expect(readNeedsSize(read(0, PAGE), facts(), PAGE)).toBe(false);
    expect(readNeedsSize(read(0, 2 * PAGE), facts(), PAGE)).toBe(true);
    expect(readNeedsSize(read(0, 2 * PAGE), facts({ direct: false }), PAGE)).toBe(false);
    expect(readNeedsSize(read(0, 2 * PAGE), facts({ caps: caps({ kind: 'blockDevice' }) }), PAGE)).toBe(false);
  });
});
