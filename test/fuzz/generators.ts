// The fuzzer's generators: random valid and invalid calls (each with the check of its outcome
// and its effect on the model), and batches of them that may run at once.
import * as path from 'node:path';
import {
  AlignmentError,
  ArgumentError,
  AtomicWriteError,
  OdirectError,
  alignedBuffer,
  open,
  type Capabilities,
  type DirectFile,
} from '../../lib/index';
import { native } from '../../lib/native';
import { firstDiff } from '../helpers/files';
import { BAD_DATA, BAD_POSITIONS, BAD_WRITE_OPTIONS, RANGE, TYPE, VALUE, describeValue, type Expected } from '../helpers/invalid-args';
import type { Rng } from '../helpers/random';
import { KiB, MAX_FILE, MAX_IN_FLIGHT, MAX_IO, PAGE, PAGE_DISJOINT, READ_PAST_EOF_BLOCK, SECTOR } from './config';
import { Model } from './model';

// ---- helpers ----------------------------------------------------------------------------

export const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
export const alignDown = (n: number, a: number): number => Math.floor(n / a) * a;

/**

/** A view of `length` bytes whose address is `misalign` bytes past a 4 KiB boundary. */
export function bufferAt(length: number, misalign: number): Buffer {
  return alignedBuffer(length + misalign + 1, PAGE).subarray(misalign, misalign + length);
}

// ---- operations ---------------------------------------------------------------------------

export interface Op {
  desc: string;
  /** Byte ranges (claims) the op reads or changes; ops in one batch never share one. */
  claims: Array<[number, number]>;
  /** Ends past the size at the start of the batch (or may truncate back to it on failure). */
  extends: boolean;
  /** Its result depends on the file size (a read reaching past the size at the start of the batch). */
  sizeDependent: boolean;
  valid: boolean;
  /** Performs the call and checks its outcome; throws with a description on any mismatch. */
  run: () => Promise<void>;
}

export interface Handles {
  main: DirectFile;
  strict: DirectFile;
  readOnly: DirectFile;
}

export interface FuzzContext {
  rng: Rng;
  model: Model;
  h: Handles;
  caps: Capabilities;
  fsName: 'xfs' | 'ext4';
  file: string;
  /** Random bytes; data for writes are slices of it. */
  pool: Buffer;
  /** The model's size when the batch being generated started. */
  batchStartSize: number;
}

export function randomData(ctx: FuzzContext, length: number, misalign: number): Buffer {
  const b = bufferAt(length, misalign);
  const from = ctx.rng.int(ctx.pool.byteLength - length);
  ctx.pool.copy(b, 0, from, from + length);
  // Stamp a few bytes so equal pool slices still differ between writes.
  const stamp = ctx.rng.u32();
  for (let i = 0; i < Math.min(4, length); i++) b[i] = (stamp >>> (8 * i)) & 0xff;
  return b;
}

/** Calls `call` (which must not throw synchronously) and checks it rejects with `expected`. */
export async function expectRejection(desc: string, call: () => Promise<unknown>, expected: Expected): Promise<void> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (err) {
    throw new Error(`${desc}: threw synchronously instead of rejecting: ${String(err)}`);
  }
  if (!(promise instanceof Promise)) throw new Error(`${desc}: did not return a promise`);
  let result: unknown;
  try {
    result = await promise;
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    if (!(err instanceof expected.cls) || e.code !== expected.code) {
      const got = err instanceof Error ? `${err.constructor.name} ${String(e.code)}: ${String(e.message)}` : String(err);
      throw new Error(`${desc}: expected ${expected.cls.name} ${expected.code}, got ${got}`);
    }
    if (!(err instanceof OdirectError)) throw new Error(`${desc}: error is not an OdirectError`);
    return;
  }
  throw new Error(`${desc}: expected ${expected.cls.name} ${expected.code}, but it resolved with ${describeValue(result)}`);
}

export function pagesOf(start: number, end: number): [number, number] {
  return PAGE_DISJOINT ? [alignDown(start, PAGE), alignUp(end, PAGE)] : [start, end];
}

/** A position for an I/O of `length` bytes: inside the file, around its end, or anywhere below MAX_FILE. */
export function pickPosition(ctx: FuzzContext, length: number, align: number): number {
  const { rng, model } = ctx;
  const limit = MAX_FILE - length;
  let pos: number;
  const where = rng.int(10);
  if (where < 4 && model.size > 0) pos = rng.int(model.size);
  else if (where < 7) pos = Math.max(0, model.size - 8 * KiB + rng.int(16 * KiB));
  else pos = rng.int(limit + 1);
  pos = Math.min(pos, limit);
  return align > 1 ? alignDown(pos, align) : pos;
}

/** A length: tiny, a few sectors, or up to MAX_IO; `align` > 1 rounds it to a multiple. */
export function pickLength(ctx: FuzzContext, align: number, max = MAX_IO): number {
  const { rng } = ctx;
  const kind = rng.int(10);
  let len: number;
  if (kind < 3) len = rng.range(1, 700);
  else if (kind < 7) len = rng.range(1, 16) * SECTOR + (rng.chance(0.5) ? 0 : rng.range(-200, 200));
  else len = rng.range(1, max);
  len = Math.max(1, Math.min(max, len));
  return align > 1 ? Math.max(align, alignDown(len, align)) : len;
}

export const WRITE_OPTIONS: ReadonlyArray<{ opts: Record<string, unknown> | undefined; cache: boolean }> = [
  { opts: undefined, cache: false },
  { opts: {}, cache: false },
  { opts: { dsync: true }, cache: false },
  { opts: { dsync: false, atomic: false }, cache: false },
  { opts: { cache: 'default' }, cache: false },
  { opts: { cache: 'dontcache' }, cache: true },
  { opts: { cache: 'writethrough' }, cache: true },
  { opts: { cache: 'writethrough', dsync: true }, cache: true },
];

/**
 * 'buffered' for the cache modes, 'direct' for the rest, except that a write
 * whose position or length is not sector-aligned may be either: if its last
 * sector lies past EOF when it runs (which, within a batch of concurrent
 * extending writes, depends on their order) odirect writes it through the page
 * cache instead of a read-modify-write. The bytes are checked against the
 * model either way.
 */
export function checkWriteResult(desc: string, result: unknown, length: number, buffered: boolean, position = 0): void {
  const r = result as { bytesWritten?: unknown; path?: unknown } | undefined;
  if (!r || r.bytesWritten !== length) throw new Error(`${desc}: resolved with ${describeValue(result)}, expected bytesWritten ${length}`);
  const mayBuffer = position % SECTOR !== 0 || length % SECTOR !== 0;
  const wantPath = buffered ? 'buffered' : 'direct';
  if (r.path !== wantPath && !(mayBuffer && r.path === 'buffered')) {
    throw new Error(`${desc}: path ${String(r.path)}, expected '${wantPath}'`);
  }
}

/** Valid write/writev through the bounce-mode handle: any alignment, any cache mode. */
export function genWrite(ctx: FuzzContext, vectored: boolean): Op {
  const { rng, model, h } = ctx;
  // Offset, each length and each address are aligned or not independently (all aligned 40% of
  // the time), so every row of the alignment policy's decision table comes up.
  const allAligned = rng.chance(0.4);
  const offsetAligned = allAligned || rng.chance(0.5);
  const lengthAlign = (): number => (allAligned || rng.chance(0.5) ? SECTOR : 1);
  const misalign = (choices: readonly number[]): number => (allAligned || rng.chance(0.4) ? rng.pick([0, SECTOR, 2048]) : rng.pick(choices));
  let chunks: Buffer[];
  if (vectored) {
    const count = rng.range(1, 8);
    chunks = [];
    for (let i = 0; i < count; i++) {
      const len = pickLength(ctx, lengthAlign(), MAX_IO / 8);
      chunks.push(randomData(ctx, len, misalign([1, 8, 64, 511, 1 + rng.int(SECTOR - 1)])));
    }
  } else {
    const len = pickLength(ctx, lengthAlign());
    chunks = [randomData(ctx, len, misalign([1, 3, 16, 256, 511, 1 + rng.int(SECTOR - 1)]))];
  }
  const align = offsetAligned ? SECTOR : 1;
  const length = chunks.reduce((s, c) => s + c.byteLength, 0);
  const position = pickPosition(ctx, length, align);
  const o = rng.pick(WRITE_OPTIONS);
  const sizeBefore = ctx.batchStartSize;
  const desc = `${vectored ? 'writev' : 'write'}(${vectored ? `[${chunks.map((c) => c.byteLength).join(',')}]` : length} bytes, addr%512=${native.addressModulo(chunks[0]!, 512)}, pos ${position}, ${describeValue(o.opts)})`;
  let at = position;
  for (const c of chunks) {
    model.write(at, c);
    at += c.byteLength;
  }
  // A buffered write that extends the file also zeroes the rest of the page holding the old EOF:
  // with disjoint pages asked for, that page is part of its claim.
  const from = PAGE_DISJOINT && o.cache && position > sizeBefore ? Math.min(position, sizeBefore) : position;
  return {
    desc,
    claims: [pagesOf(from, position + length)],
    extends: position + length > sizeBefore,
    sizeDependent: false,
    valid: true,
    run: async () => {
      const result = vectored ? await h.main.writev(chunks, position, o.opts) : await h.main.write(chunks[0]!, position, o.opts);
      checkWriteResult(desc, result, length, o.cache, position);
    },
  };
}

/** Valid aligned, non-extending direct write through the strict handle (it never changes the size). */
export function genStrictWrite(ctx: FuzzContext): Op | undefined {
  const { rng, model, h } = ctx;
  // Inside the size at the start of the batch: the strict handle never extends the file, so the
  // main handle's idea of the size (used by its read-modify-writes) stays exact.
  const size = Math.min(model.size, ctx.batchStartSize);
  if (size < SECTOR) return undefined;
  const length = Math.min(pickLength(ctx, SECTOR), alignDown(size, SECTOR));
  const position = alignDown(rng.int(size - length + 1), SECTOR);
  const data = randomData(ctx, length, rng.pick([0, SECTOR, 1024]));
  const opts = rng.pick([undefined, { dsync: true }, {}]);
  const desc = `strict.write(${length} bytes, pos ${position}, ${describeValue(opts)})`;
  model.write(position, data);
  return {
    desc,
    claims: [pagesOf(position, position + length)],
    extends: false,
    sizeDependent: false,
    valid: true,
    run: async () => checkWriteResult(desc, await h.strict.write(data, position, opts), length, false, position),
  };
}

export type AtomicCall = 'writeAtomic' | 'write' | 'writev';

export function callAtomic(f: DirectFile, how: AtomicCall, data: Buffer, position: number, dsync: boolean) {
  if (how === 'writeAtomic') return f.writeAtomic(data, position, dsync ? { dsync } : undefined);
  if (how === 'write') return f.write(data, position, { atomic: true, dsync });
  return f.writev([data], position, { atomic: true, dsync });
}

/** A well-formed atomic write: on XFS it succeeds, on ext4 it is refused (EOPNOTSUPP) and changes nothing. */
export function genAtomic(ctx: FuzzContext): Op {
  const { rng, model, h, caps, fsName } = ctx;
  const unitMin = fsName === 'xfs' ? caps.atomic.unitMin : PAGE;
  const unitMax = fsName === 'xfs' ? Math.min(caps.atomic.unitMax, 256 * KiB) : 64 * KiB;
  const sizes: number[] = [];
  for (let s = unitMin; s <= unitMax; s *= 2) sizes.push(s);
  const length = rng.chance(0.85) ? Math.min(rng.pick(sizes), 64 * KiB) : rng.pick(sizes);
  const position = alignDown(pickPosition(ctx, length, 1), length);
  const data = randomData(ctx, length, rng.chance(0.8) ? 0 : rng.pick([1, 100, SECTOR])); // misaligned memory is bounced
  const how = rng.pick(['writeAtomic', 'write', 'writev'] as const);
  const dsync = rng.chance(0.3);
  const desc = `${how}(atomic, ${length} bytes, addr%512=${native.addressModulo(data, 512)}, pos ${position}, dsync ${dsync}) on ${fsName}`;
  if (fsName !== 'xfs' || !caps.atomic.supported) {
    return {
      desc,
      claims: [],
      extends: false,
      sizeDependent: false,
      valid: false,
      run: () => expectRejection(desc, () => callAtomic(h.main, how, data, position, dsync), { cls: AtomicWriteError, code: 'EOPNOTSUPP' }),
    };
  }
  const sizeBefore = ctx.batchStartSize;
  model.write(position, data);
  return {
    desc,
    claims: [pagesOf(position, position + length)],
    extends: position + length > sizeBefore,
    sizeDependent: false,
    valid: true,
    run: async () => checkWriteResult(desc, await callAtomic(h.main, how, data, position, dsync), length, false),
  };
}

/**
 * Valid read through one of the handles, aligned or not, inside the file or past its end.
 * A read past the end returns the bytes up to EOF. (Observed on XFS, Linux 6.18: after an
 * extending RWF_ATOMIC write and a buffered write past it (cache: 'writethrough' or
 * 'dontcache'), a direct read that reaches past the block holding EOF fails with EIO, and the
 * kernel logs "Direct I/O collision with buffered writes!". ODIRECT_FUZZ_READ_PAST_EOF=0 keeps
 * reads inside that block.)
 */
export function genRead(ctx: FuzzContext): Op | undefined {
  const { rng, model, h } = ctx;
  const which = rng.weighted({ main: 6, readOnly: 2, strict: 2 });
  // The strict handle gets aligned reads only; the others any mix of aligned offset, length, address.
  const allAligned = which === 'strict' || rng.chance(0.4);
  const posAlign = allAligned || rng.chance(0.5) ? SECTOR : 1;
  const lenAlign = allAligned || rng.chance(0.5) ? SECTOR : 1;
  const memAligned = allAligned || rng.chance(0.4);
  let length = pickLength(ctx, lenAlign);
  let position: number;
  const where = rng.int(20);
  if (where === 0) position = 2 ** 50 + (posAlign > 1 ? 0 : rng.int(SECTOR)); // far past the end: 0 bytes
  else if (where < 4) position = alignDown(model.size + rng.int(64 * KiB), posAlign); // past the end
  else position = pickPosition(ctx, length, posAlign);
  if (!READ_PAST_EOF_BLOCK && position < MAX_FILE) {
    // Stay inside the block that holds EOF (a batch with such a read never changes the size).
    const limit = alignUp(Math.min(model.size, ctx.batchStartSize), PAGE);
    if (position >= limit) return undefined;
    length = Math.min(length, limit - position);
    if (lenAlign > 1) length = alignDown(length, lenAlign);
    if (length === 0) return undefined;
  }
  const into = bufferAt(length, memAligned ? rng.pick([0, SECTOR]) : rng.pick([1, 7, 300, 1 + rng.int(SECTOR - 1)]));
  const f = h[which];
  // Inside the size the file had when the batch started: no concurrent op can change the answer.
  const inside = position + length <= Math.min(model.size, ctx.batchStartSize);
  const expected = position >= MAX_FILE ? Buffer.alloc(0) : model.read(position, length);
  const desc = `${which}.read(${length} bytes, addr%512=${native.addressModulo(into, 512)}, pos ${position}) with size ${model.size}`;
  return {
    desc,
    claims: position >= MAX_FILE ? [] : [pagesOf(position, Math.min(position + length, MAX_FILE))],
    extends: false,
    sizeDependent: !inside,
    valid: true,
    run: async () => {
      const n = await f.read(into, position);
      if (n !== expected.byteLength) throw new Error(`${desc}: returned ${describeValue(n)}, expected ${expected.byteLength}`);
      const diff = firstDiff(into.subarray(0, n), expected);
      if (diff >= 0) {
        throw new Error(`${desc}: byte ${position + diff} is ${into[diff]}, expected ${expected[diff]}`);
      }
    },
  };
}

export function genAllocate(ctx: FuzzContext): Op {
  const { rng, model, h } = ctx;
  const length = rng.chance(0.5) ? rng.range(1, 128 * KiB) : rng.range(1, 64) * PAGE;
  const position = Math.min(rng.chance(0.5) ? rng.int(model.size + 64 * KiB) : rng.int(MAX_FILE), MAX_FILE - length);
  const sizeBefore = ctx.batchStartSize;
  model.allocate(position, length);
  const desc = `allocate(${position}, ${length}) with size ${model.size}`;
  return {
    desc,
    claims: [pagesOf(position, position + length)],
    extends: position + length > sizeBefore,
    sizeDependent: false,
    valid: true,
    run: async () => {
      const r = await h.main.allocate(position, length);
      if (r !== undefined) throw new Error(`${desc}: resolved with ${describeValue(r)}`);
    },
  };
}

export function genSync(ctx: FuzzContext): Op {
  const { rng, h } = ctx;
  const opts = rng.pick([undefined, {}, { dataOnly: true }, { dataOnly: false }]);
  const f = rng.chance(0.8) ? h.main : h.strict;
  const desc = `sync(${describeValue(opts)})`;
  return {
    desc,
    claims: [],
    extends: false,
    sizeDependent: false,
    valid: true,
    run: async () => {
      const r = await f.sync(opts);
      if (r !== undefined) throw new Error(`${desc}: resolved with ${describeValue(r)}`);
    },
  };
}

export function genTruncate(ctx: FuzzContext): Op {
  const { rng, model, h } = ctx;
  let to: number;
  const kind = rng.int(10);
  if (kind < 4) to = rng.int(model.size + 1); // shrink
  else if (kind < 7) to = Math.min(MAX_FILE, model.size + rng.range(1, 256 * KiB)); // grow
  else if (kind < 8) to = model.size; // same
  else to = rng.int(MAX_FILE + 1);
  if (rng.chance(0.3)) to = alignDown(to, SECTOR);
  const sizeBefore = model.size;
  model.truncate(to);
  const desc = `truncate(${to}) with size ${sizeBefore}`;
  return {
    desc,
    claims: [[0, Number.MAX_SAFE_INTEGER]],
    extends: true,
    sizeDependent: true,
    valid: true,
    run: async () => {
      const r = await h.main.truncate(to);
      if (r !== undefined) throw new Error(`${desc}: resolved with ${describeValue(r)}`);
    },
  };
}

/** An invalid call: bad types, values, ranges, atomic rules, strict alignment, read-only handle, kernel limits. */
export function genInvalid(ctx: FuzzContext): Op {
  const { rng, h, caps, fsName, model } = ctx;
  const okData = (): Buffer => randomData(ctx, rng.pick([1, 100, SECTOR, PAGE, 3 * SECTOR + 7]), rng.pick([0, 1]));
  const okPos = (): number => rng.int(MAX_FILE - PAGE);
  const make = (desc: string, call: () => Promise<unknown>, expected: Expected, extras: Partial<Op> = {}): Op => ({
    desc,
    claims: [],
    extends: false,
    sizeDependent: false,
    valid: false,
    run: () => expectRejection(desc, call, expected),
    ...extras,
  });
  const kind = rng.weighted({
    badData: 10,
    badPosition: 12,
    badOptions: 8,
    overflow: 3,
    badChunks: 6,
    atomicRule: 10,
    strict: 10,
    readOnly: 5,
    badRead: 6,
    badTruncate: 4,
    badAllocate: 4,
    badSync: 3,
    badOpen: 2,
    kernelLimit: fsName === 'ext4' ? 3 : 0,
  });
  const anyWrite = (f: DirectFile, data: unknown, pos: unknown, opts?: unknown): Promise<unknown> => {
    const how = rng.int(3);
    if (how === 0) return (f.write as (d: unknown, p: unknown, o?: unknown) => Promise<unknown>)(data, pos, opts);
    if (how === 1) return (f.writev as (d: unknown, p: unknown, o?: unknown) => Promise<unknown>)([data], pos, opts);
    return (f.writeAtomic as (d: unknown, p: unknown, o?: unknown) => Promise<unknown>)(data, pos, opts);
  };
  switch (kind) {
    case 'badData': {
      const bad = rng.pick(BAD_DATA);
      const data = bad.value();
      const which = rng.int(3);
      const desc = `${['write', 'writev', 'writeAtomic'][which]}(${describeValue(data)}, ...)`;
      const call = (): Promise<unknown> =>
        which === 0
          ? (h.main.write as (d: unknown, p: number) => Promise<unknown>)(data, okPos())
          : which === 1
            ? (h.main.writev as (d: unknown, p: number) => Promise<unknown>)([okData(), data], okPos())
            : (h.main.writeAtomic as (d: unknown, p: number) => Promise<unknown>)(data, 0);
      return make(desc, call, { cls: ArgumentError, code: bad.code });
    }
    case 'badPosition': {
      const bad = rng.pick(BAD_POSITIONS);
      const data = okData();
      const desc = `write-ish(${data.byteLength} bytes, position ${describeValue(bad.value)})`;
      return make(desc, () => anyWrite(h.main, data, bad.value), { cls: ArgumentError, code: bad.code });
    }
    case 'badOptions': {
      const bad = rng.pick(BAD_WRITE_OPTIONS);
      const data = okData();
      const which = rng.int(2);
      const desc = `${which ? 'writev' : 'write'}(${data.byteLength} bytes, options ${describeValue(bad.value)})`;
      const call = (): Promise<unknown> =>
        which
          ? (h.main.writev as (d: unknown, p: number, o: unknown) => Promise<unknown>)([data], okPos(), bad.value)
          : (h.main.write as (d: unknown, p: number, o: unknown) => Promise<unknown>)(data, okPos(), bad.value);
      return make(desc, call, bad.expected);
    }
    case 'overflow': {
      // position + length past Number.MAX_SAFE_INTEGER (the position alone is fine)
      const data = okData();
      const position = Number.MAX_SAFE_INTEGER - rng.int(data.byteLength);
      const desc = `write(${data.byteLength} bytes at ${position}: the end is past MAX_SAFE_INTEGER)`;
      return make(desc, () => (rng.chance(0.5) ? h.main.write(data, position) : h.main.read(alignedBuffer(data.byteLength), position)), {
        cls: ArgumentError,
        code: RANGE,
      });
    }
    case 'badChunks': {
      const variants: Array<[string, () => unknown, string]> = [
        ['a string', () => 'chunks', TYPE],
        ['a Buffer (not an array)', () => okData(), TYPE],
        ['null', () => null, TYPE],
        ['[]', () => [], VALUE],
        ['[buffer, "x"]', () => [okData(), 'x'], TYPE],
        ['[buffer, empty]', () => [okData(), Buffer.alloc(0)], VALUE],
        ['[undefined]', () => [undefined], TYPE],
        ['1025 chunks', () => Array.from({ length: 1025 }, () => Buffer.alloc(1)), RANGE],
      ];
      const [name, value, code] = rng.pick(variants);
      const desc = `writev(${name})`;
      return make(desc, () => (h.main.writev as (c: unknown, p: number) => Promise<unknown>)(value(), okPos()), { cls: ArgumentError, code });
    }
    case 'atomicRule': {
      const supported = fsName === 'xfs' && caps.atomic.supported;
      const unitMin = supported ? caps.atomic.unitMin : PAGE;
      const unitMax = supported ? caps.atomic.unitMax : 64 * KiB;
      const variants: Array<[string, () => Promise<unknown>, string]> = [
        ['length not a power of two', () => h.main.writeAtomic(alignedBuffer(3 * unitMin), 0), 'ERR_ATOMIC_NOT_POWER_OF_TWO'],
        ['length not a power of two (odd)', () => h.main.write(alignedBuffer(unitMin + SECTOR), 0, { atomic: true }), 'ERR_ATOMIC_NOT_POWER_OF_TWO'],
        ['length 100', () => h.main.writeAtomic(Buffer.alloc(100), 0), 'ERR_ATOMIC_NOT_POWER_OF_TWO'],
        ['below unitMin', () => h.main.writeAtomic(alignedBuffer(unitMin / 2), 0), 'ERR_ATOMIC_TOO_SMALL'],
        ['512 bytes', () => h.main.writeAtomic(alignedBuffer(SECTOR), SECTOR * 2), 'ERR_ATOMIC_TOO_SMALL'],
        ['above unitMax', () => h.main.writeAtomic(alignedBuffer(unitMax * 2), 0), 'ERR_ATOMIC_TOO_LARGE'],
        ['not naturally aligned', () => h.main.writeAtomic(alignedBuffer(2 * unitMin), unitMin), 'ERR_ATOMIC_UNALIGNED'],
        ['sector-aligned but not naturally', () => h.main.write(alignedBuffer(unitMin), unitMin + SECTOR, { atomic: true }), 'ERR_ATOMIC_UNALIGNED'],
        ['two segments', () => h.main.writev([alignedBuffer(unitMin / 2 || SECTOR), alignedBuffer(unitMin / 2 || SECTOR)], 0, { atomic: true }), 'ERR_ATOMIC_SEGMENTS'],
      ];
      const [name, call, code] = rng.pick(variants);
      // Where atomic writes are unsupported at all (ext4), that is the answer to every atomic write.
      return make(`atomic: ${name} on ${fsName}`, call, { cls: AtomicWriteError, code: supported ? code : 'EOPNOTSUPP' });
    }
    case 'strict': {
      const read = rng.chance(0.4);
      const defect = rng.pick(['offset', 'length', 'memory'] as const);
      const length = defect === 'length' ? rng.range(1, 16) * SECTOR + rng.range(1, SECTOR - 1) : rng.range(1, 16) * SECTOR;
      const position = alignDown(okPos(), SECTOR) + (defect === 'offset' ? rng.range(1, SECTOR - 1) : 0);
      const buf = bufferAt(length, defect === 'memory' ? rng.pick([1, 8, 64, 256, 511]) : 0);
      const code = { offset: 'ERR_ALIGNMENT_OFFSET', length: 'ERR_ALIGNMENT_LENGTH', memory: 'ERR_ALIGNMENT_MEMORY' }[defect];
      const desc = `strict.${read ? 'read' : 'write'}(${length} bytes, addr%512=${native.addressModulo(buf, 512)}, pos ${position})`;
      const call = (): Promise<unknown> =>
        read ? h.strict.read(buf, position) : rng.chance(0.5) ? h.strict.write(buf, position) : h.strict.writev([buf], position);
      return make(desc, call, { cls: AlignmentError, code });
    }
    case 'readOnly': {
      const variants: Array<[string, () => Promise<unknown>]> = [
        ['write', () => h.readOnly.write(okData(), okPos())],
        ['writev', () => h.readOnly.writev([okData()], okPos())],
        ['write dontcache', () => h.readOnly.write(okData(), okPos(), { cache: 'dontcache' })],
        ['truncate', () => h.readOnly.truncate(rng.int(MAX_FILE))],
        ['allocate', () => h.readOnly.allocate(okPos(), PAGE)],
      ];
      if (fsName === 'xfs') variants.push(['writeAtomic', () => h.readOnly.writeAtomic(alignedBuffer(PAGE), 0)]);
      const [name, call] = rng.pick(variants);
      return make(`readOnly.${name}`, call, { cls: OdirectError, code: 'EBADF' });
    }
    case 'badRead': {
      if (rng.chance(0.5)) {
        const bad = rng.pick(BAD_DATA);
        const into = bad.value();
        return make(`read(into ${describeValue(into)})`, () => (h.main.read as (i: unknown, p: number) => Promise<unknown>)(into, 0), {
          cls: ArgumentError,
          code: bad.code,
        });
      }
      const bad = rng.pick(BAD_POSITIONS);
      const f = rng.pick([h.main, h.readOnly, h.strict]);
      return make(`read(4096, position ${describeValue(bad.value)})`, () => (f.read as (i: unknown, p: unknown) => Promise<unknown>)(alignedBuffer(PAGE), bad.value), {
        cls: ArgumentError,
        code: bad.code,
      });
    }
    case 'badTruncate': {
      const bad = rng.pick(BAD_POSITIONS);
      return make(`truncate(${describeValue(bad.value)})`, () => (h.main.truncate as (s: unknown) => Promise<unknown>)(bad.value), {
        cls: ArgumentError,
        code: bad.code,
      });
    }
    case 'badAllocate': {
      if (rng.chance(0.3)) {
        return make('allocate(pos, 0)', () => h.main.allocate(okPos(), 0), { cls: ArgumentError, code: RANGE });
      }
      const bad = rng.pick(BAD_POSITIONS);
      const lengthIsBad = rng.chance(0.5);
      const desc = lengthIsBad ? `allocate(0, ${describeValue(bad.value)})` : `allocate(${describeValue(bad.value)}, 4096)`;
      const fn = h.main.allocate as (p: unknown, l: unknown) => Promise<unknown>;
      return make(desc, () => (lengthIsBad ? fn.call(h.main, 0, bad.value) : fn.call(h.main, bad.value, PAGE)), {
        cls: ArgumentError,
        code: bad.code,
      });
    }
    case 'badSync': {
      const variants: Array<[unknown, string]> = [
        ['data', TYPE],
        [1, TYPE],
        [null, TYPE],
        [{ dataOnly: 'yes' }, TYPE],
        [{ dataOnly: 1 }, TYPE],
      ];
      const [value, code] = rng.pick(variants);
      return make(`sync(${describeValue(value)})`, () => (h.main.sync as (o: unknown) => Promise<unknown>)(value), { cls: ArgumentError, code });
    }
    case 'badOpen': {
      const variants: Array<[string, () => Promise<unknown>, Expected]> = [
        ['open(42)', () => (open as (p: unknown) => Promise<unknown>)(42), { cls: ArgumentError, code: TYPE }],
        ["open('')", () => open(''), { cls: ArgumentError, code: VALUE }],
        ['open(file, "r")', () => (open as (p: string, o: unknown) => Promise<unknown>)(ctx.file, 'r'), { cls: ArgumentError, code: TYPE }],
        ["open(file, { engine: 'fast' })", () => (open as (p: string, o: unknown) => Promise<unknown>)(ctx.file, { engine: 'fast' }), { cls: ArgumentError, code: VALUE }],
        ["open(file, { alignment: 'loose' })", () => (open as (p: string, o: unknown) => Promise<unknown>)(ctx.file, { alignment: 'loose' }), { cls: ArgumentError, code: VALUE }],
        ['open(file, { create: 1 })', () => (open as (p: string, o: unknown) => Promise<unknown>)(ctx.file, { create: 1 }), { cls: ArgumentError, code: TYPE }],
        ['open(file, { readOnly, truncate })', () => open(ctx.file, { readOnly: true, truncate: true }), { cls: ArgumentError, code: VALUE }],
        ['open(file, { exclusive })', () => open(ctx.file, { exclusive: true }), { cls: ArgumentError, code: VALUE }],
        ['open(file, { create, exclusive }) of an existing file', () => open(ctx.file, { create: true, exclusive: true }), { cls: OdirectError, code: 'EEXIST' }],
        ['open(missing)', () => open(path.join(path.dirname(ctx.file), 'missing', 'x')), { cls: OdirectError, code: 'ENOENT' }],
      ];
      const [desc, call, expected] = rng.pick(variants);
      return make(desc, call, expected);
    }
    case 'kernelLimit': {
      // ext4 caps files at 16 TiB (4 KiB blocks): the kernel says EFBIG, the size stays.
      const position = 2 ** 50 + rng.int(2 ** 20);
      const variants: Array<[string, () => Promise<unknown>]> = [
        [`write(4096 bytes at ${position})`, () => h.main.write(alignedBuffer(PAGE), alignDown(position, PAGE))],
        [`write(100 bytes at ${position})`, () => h.main.write(Buffer.alloc(100, 1), position)],
        [`truncate(${position})`, () => h.main.truncate(position)],
        [`allocate(${position}, 4096)`, () => h.main.allocate(position, PAGE)],
      ];
      const [desc, call] = rng.pick(variants);
      const truncates = desc.startsWith('truncate');
      // A refused extending write is truncated back to the size before it; a truncate is exclusive.
      return make(desc, call, { cls: OdirectError, code: 'EFBIG' }, {
        extends: true,
        claims: truncates ? [[0, Number.MAX_SAFE_INTEGER]] : [[model.size, Number.MAX_SAFE_INTEGER]],
      });
    }
  }
}

// ---- the run ------------------------------------------------------------------------------

export const VALID_WEIGHTS = { write: 24, writev: 8, strictWrite: 5, atomic: 9, read: 22, allocate: 3, sync: 2 } as const;

export function overlaps(claims: Array<[number, number]>, claim: [number, number]): boolean {
  for (const c of claims) if (c[0] < claim[1] && claim[0] < c[1]) return true;
  return false;
}

export type Effect = (m: Model) => void;

/**
 * Runs a generator while recording what it does to the model: the effects (replayed on the
 * shadow model in the order calls complete) and an undo log (for a candidate that does not fit).
 */
export function recording(model: Model, gen: () => Op | undefined): { op: Op | undefined; effects: Effect[]; undo: () => void } {
  const effects: Effect[] = [];
  const undoLog: Array<() => void> = [];
  const size = model.size;
  const own = model as unknown as Record<'write' | 'allocate' | 'truncate', unknown>;
  own.write = (position: number, data: Uint8Array): void => {
    const old = Buffer.from(model.bytes.subarray(position, position + data.byteLength));
    undoLog.push(() => model.bytes.set(old, position));
    effects.push((m) => m.write(position, data));
    Model.prototype.write.call(model, position, data);
  };
  own.allocate = (position: number, length: number): void => {
    effects.push((m) => m.allocate(position, length));
    Model.prototype.allocate.call(model, position, length);
  };
  own.truncate = (to: number): void => {
    const old = Buffer.from(model.bytes.subarray(0, model.size));
    undoLog.push(() => model.bytes.set(old, 0));
    effects.push((m) => m.truncate(to));
    Model.prototype.truncate.call(model, to);
  };
  try {
    const op = gen();
    return {
      op,
      effects,
      undo: () => {
        for (const u of undoLog.reverse()) u();
        model.size = size;
      },
    };
  } finally {
    delete own.write;
    delete own.allocate;
    delete own.truncate;
  }
}

export function genValid(ctx: FuzzContext, kind: keyof typeof VALID_WEIGHTS): Op | undefined {
  switch (kind) {
    case 'write':
      return genWrite(ctx, false);
    case 'writev':
      return genWrite(ctx, true);
    case 'strictWrite':
      return genStrictWrite(ctx);
    case 'atomic':
      return genAtomic(ctx);
    case 'read':
      return genRead(ctx);
    case 'allocate':
      return genAllocate(ctx);
    case 'sync':
      return genSync(ctx);
  }
}

export interface Planned {
  op: Op;
  effects: Effect[];
}

/**
 * Makes one batch of ops that may run concurrently: disjoint claims, and no size-dependent
 * read next to an op that may change the size. The model is updated as ops are planned
 * (their ranges are disjoint, so the order they complete in does not matter).
 */
export function genBatch(ctx: FuzzContext, budget: number): Planned[] {
  const { rng, model } = ctx;
  ctx.batchStartSize = model.size;
  if (rng.chance(0.06)) {
    const { op, effects } = recording(model, () => genTruncate(ctx));
    return [{ op: op!, effects }];
  }
  const want = Math.min(budget, rng.range(1, MAX_IN_FLIGHT));
  const planned: Planned[] = [];
  const claims: Array<[number, number]> = [];
  let extending = false;
  let sizeDependent = false;
  for (let attempt = 0; attempt < want * 4 && planned.length < want; attempt++) {
    const { op, effects, undo } = recording(model, () => (rng.chance(0.3) ? genInvalid(ctx) : genValid(ctx, rng.weighted(VALID_WEIGHTS))));
    if (!op) continue;
    const conflict =
      op.claims.some((c) => overlaps(claims, c)) || (op.extends && sizeDependent) || (op.sizeDependent && extending);
    if (conflict) {
      undo();
      continue;
    }
    planned.push({ op, effects });
    claims.push(...op.claims);
    extending ||= op.extends;
    sizeDependent ||= op.sizeDependent;
  }
  return planned;
}

