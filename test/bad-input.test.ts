/**
 * Bad input, table-driven: every bad call across the public API and the raw addon gives the
 * expected typed error (class AND code), nothing crashes, and the one file every call aims at
 * keeps its bytes, size and mtime (checked with an O_DIRECT read through the raw binding).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlignmentError,
  ArgumentError,
  AtomicWriteError,
  DirectFile,
  OdirectError,
  alignedBuffer,
  open,
  probe,
} from '../lib/index';
import { C, native } from '../lib/native';
import { ENGINES } from './helpers/engines';
import { readBackDirect } from './helpers/read-back';
import { firstDiff } from './helpers/files';
import { BAD_DATA, BAD_POSITIONS, BAD_WRITE_OPTIONS, describeValue, detachedView } from './helpers/invalid-args';
import { describeOnFs, uniqueDir } from './helpers/scratch';

type ErrorClass = abstract new (...args: never[]) => Error;

interface Case {
  name: string;
  /** The bad call. API calls must return a rejecting promise; `sync` ones throw. */
  call: () => unknown;
  cls: ErrorClass;
  /** Expected `code`; for native TypeError/RangeError argument checks there is none. */
  code?: string;
  sync?: boolean;
  /** Extra checks on the error. */
  check?: (err: Record<string, unknown>) => void;
}

/** Runs `c.call` and returns what it threw or rejected with; fails if it succeeded. */
async function failureOf(c: Case): Promise<unknown> {
  let result: unknown;
  try {
    result = c.call();
  } catch (err) {
    if (!c.sync) throw new Error(`${c.name}: threw synchronously instead of returning a rejected promise: ${String(err)}`);
    return err;
  }
  if (c.sync) throw new Error(`${c.name}: expected a synchronous throw, got ${String(result)}`);
  expect(result, `${c.name} returns a promise`).toBeInstanceOf(Promise);
  try {
    const value = await (result as Promise<unknown>);
    throw Object.assign(new Error(`${c.name}: expected a rejection, resolved with ${JSON.stringify(value)}`), { unexpected: true });
  } catch (err) {
    if ((err as { unexpected?: boolean }).unexpected) throw err;
    return err;
  }
}

async function expectCase(c: Case): Promise<void> {
  const err = await failureOf(c);
  expect(err, `${c.name}: error class`).toBeInstanceOf(c.cls);
  if (c.cls === TypeError || c.cls === RangeError) {
    // Argument checks in the addon: exactly a TypeError/RangeError, not a subclass of something else.
    expect((err as Error).constructor, `${c.name}: constructor`).toBe(c.cls);
  }
  const e = err as Record<string, unknown>;
  if (c.code !== undefined) expect(e.code, `${c.name}: code`).toBe(c.code);
  expect(typeof (err as Error).message === 'string' && (err as Error).message.length > 0, `${c.name}: has a message`).toBe(true);
  c.check?.(e);
}

const KNOWN_SIZE = 64 * 1024 + 123; // not block-aligned on purpose

describeOnFs('xfs', 'bad input: typed errors, no crash, no change to the file', (mnt) => {
  let dir: string;
  let file: string;
  let roFile: string;
  let known: Buffer;
  let mtimeBefore: number;
  const files: DirectFile[] = [];

  beforeAll(() => {
    dir = uniqueDir(mnt, 'bad-input');
    file = path.join(dir, 'target.bin');
    roFile = path.join(dir, 'readonly.bin');
    known = randomBytes(KNOWN_SIZE);
    fs.writeFileSync(file, known);
    const fd = fs.openSync(file, 'r+');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.writeFileSync(roFile, 'read only');
    mtimeBefore = fs.statSync(file).mtimeMs;
  });

  afterAll(async () => {
    for (const f of files) await f.close().catch(() => undefined);
  });

  for (const engine of ENGINES) {
    describe(`engine ${engine}`, () => {
      let f: DirectFile;
      let ro: DirectFile;
      let closed: DirectFile;
      let strict: DirectFile;
      const buf = alignedBuffer(4096, 4096).fill(0xee);

      beforeAll(async () => {
        f = await open(file, { engine });
        ro = await open(file, { engine, readOnly: true });
        closed = await open(file, { engine });
        strict = await open(file, { engine, alignment: 'strict' });
        files.push(f, ro, closed, strict);
        await closed.close();
        expect(f.engine).toBe(engine);
        expect(f.direct).toBe(true);
      });

      const ERR_TYPE = 'ERR_INVALID_ARG_TYPE';
      const ERR_VALUE = 'ERR_INVALID_ARG_VALUE';
      const ERR_RANGE = 'ERR_OUT_OF_RANGE';
      const any = (v: unknown) => v as never;
      const ebadf = (e: Record<string, unknown>) => {
        expect(e.errno).toBe(9);
        expect(e.path).toBe(file);
      };

      const cases = (): Case[] => [
        // write(): data, position and options: the tables shared with the fuzzer (helpers/invalid-args.ts)
        ...BAD_DATA.map((bad, i) => ({ name: `write(bad data ${i}: ${describeValue(bad.value())})`, call: () => f.write(any(bad.value()), 0), cls: ArgumentError, code: bad.code })),
        ...BAD_POSITIONS.map((bad) => ({ name: `write(pos ${describeValue(bad.value)})`, call: () => f.write(buf, any(bad.value)), cls: ArgumentError, code: bad.code })),
        {
          name: 'write(pos+len past MAX_SAFE_INTEGER)',
          call: () => f.write(buf, Number.MAX_SAFE_INTEGER - 100),
          cls: ArgumentError,
          code: ERR_RANGE,
        },
        ...BAD_WRITE_OPTIONS.map((bad) => ({
          name: `write(options ${describeValue(bad.value)})`,
          call: () => f.write(buf, 0, any(bad.value)),
          cls: bad.expected.cls,
          code: bad.expected.code,
        })),
        {
          name: "writeAtomic(cache:'writethrough')",
          call: () => f.writeAtomic(buf, 0, any({ cache: 'writethrough' })),
          cls: AtomicWriteError,
          code: 'ERR_ATOMIC_NOT_DIRECT',
        },
        {
          name: 'writeAtomic(3 blocks: not a power of two)',
          call: () => f.writeAtomic(alignedBuffer(3 * 4096), 0),
          cls: AtomicWriteError,
          code: 'ERR_ATOMIC_NOT_POWER_OF_TWO',
        },
        { name: 'writeAtomic(pos -1)', call: () => f.writeAtomic(buf, -1), cls: ArgumentError, code: ERR_RANGE },
        // writev()
        { name: 'writev([])', call: () => f.writev([], 0), cls: ArgumentError, code: ERR_VALUE },
        { name: "writev('x')", call: () => f.writev(any('x'), 0), cls: ArgumentError, code: ERR_TYPE },
        { name: "writev([buf, 'x'])", call: () => f.writev([buf, any('x')], 0), cls: ArgumentError, code: ERR_TYPE },
        { name: 'writev([buf, detached])', call: () => f.writev([buf, detachedView()], 0), cls: ArgumentError, code: ERR_VALUE },
        { name: 'writev([buf, empty])', call: () => f.writev([buf, Buffer.alloc(0)], 0), cls: ArgumentError, code: ERR_VALUE },
        { name: 'writev(1025 chunks > IOV_MAX)', call: () => f.writev(new Array(1025).fill(buf), 0), cls: ArgumentError, code: ERR_RANGE },
        {
          // 1024 views of one 2 MiB buffer: 2 GiB in total, above the kernel's MAX_RW_COUNT.
          name: 'writev(2 GiB in total: huge length)',
          call: () => f.writev(new Array(1024).fill(alignedBuffer(2 << 20)), 0),
          cls: ArgumentError,
          code: ERR_RANGE,
        },
        { name: 'writev([buf], NaN)', call: () => f.writev([buf], NaN), cls: ArgumentError, code: ERR_RANGE },
        // read()
        { name: 'read(null)', call: () => f.read(any(null), 0), cls: ArgumentError, code: ERR_TYPE },
        { name: 'read(detached)', call: () => f.read(detachedView(), 0), cls: ArgumentError, code: ERR_VALUE },
        { name: 'read(zero-length)', call: () => f.read(Buffer.alloc(0), 0), cls: ArgumentError, code: ERR_VALUE },
        { name: 'read(pos -1)', call: () => f.read(alignedBuffer(4096), -1), cls: ArgumentError, code: ERR_RANGE },
        { name: 'read(pos 2^53)', call: () => f.read(alignedBuffer(4096), 2 ** 53), cls: ArgumentError, code: ERR_RANGE },
        // truncate / allocate / sync / residentPages / dropCache
        { name: 'truncate(-1)', call: () => f.truncate(-1), cls: ArgumentError, code: ERR_RANGE },
        { name: 'truncate(NaN)', call: () => f.truncate(NaN), cls: ArgumentError, code: ERR_RANGE },
        { name: "truncate('0')", call: () => f.truncate(any('0')), cls: ArgumentError, code: ERR_TYPE },
        { name: 'truncate(0.5)', call: () => f.truncate(0.5), cls: ArgumentError, code: ERR_RANGE },
        { name: 'allocate(0, 0)', call: () => f.allocate(0, 0), cls: ArgumentError, code: ERR_RANGE },
        { name: 'allocate(-1, 4096)', call: () => f.allocate(-1, 4096), cls: ArgumentError, code: ERR_RANGE },
        { name: 'allocate(0, 1.5)', call: () => f.allocate(0, 1.5), cls: ArgumentError, code: ERR_RANGE },
        { name: 'allocate(MAX_SAFE, 4096)', call: () => f.allocate(Number.MAX_SAFE_INTEGER, 4096), cls: ArgumentError, code: ERR_RANGE },
        { name: "sync({dataOnly:'yes'})", call: () => f.sync(any({ dataOnly: 'yes' })), cls: ArgumentError, code: ERR_TYPE },
        { name: 'residentPages(-1, 4096)', call: () => f.residentPages(-1, 4096), cls: ArgumentError, code: ERR_RANGE },
        { name: 'dropCache(0, -1)', call: () => f.dropCache(0, -1), cls: ArgumentError, code: ERR_RANGE },
        // strict alignment
        {
          name: 'strict write at offset 1',
          call: () => strict.write(buf, 1),
          cls: AlignmentError,
          code: 'ERR_ALIGNMENT_OFFSET',
        },
        // closed file
        { name: 'closed.write', call: () => closed.write(buf, 0), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'closed.writev', call: () => closed.writev([buf], 0), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'closed.writeAtomic', call: () => closed.writeAtomic(buf, 0), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'closed.read', call: () => closed.read(alignedBuffer(4096), 0), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'closed.truncate(0)', call: () => closed.truncate(0), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'closed.allocate', call: () => closed.allocate(0, 1 << 20), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'closed.sync', call: () => closed.sync(), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'closed.residentPages', call: () => closed.residentPages(0, 4096), cls: OdirectError, code: 'EBADF', check: ebadf },
        // read-only file written
        { name: 'readOnly.write', call: () => ro.write(buf, 0), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'readOnly.writev', call: () => ro.writev([buf, buf], 0), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'readOnly.write(dontcache)', call: () => ro.write(buf, 0, { cache: 'dontcache' }), cls: OdirectError, code: 'EBADF' },
        { name: 'readOnly.truncate(0)', call: () => ro.truncate(0), cls: OdirectError, code: 'EBADF', check: ebadf },
        { name: 'readOnly.allocate', call: () => ro.allocate(0, 1 << 20), cls: OdirectError, code: 'EBADF', check: ebadf },
        // open(): paths
        { name: 'open(42)', call: () => open(any(42)), cls: ArgumentError, code: ERR_TYPE },
        { name: "open('')", call: () => open(''), cls: ArgumentError, code: ERR_VALUE },
        { name: 'open(path with NUL)', call: () => open(`${file}\0x`), cls: ArgumentError, code: ERR_VALUE },
        {
          name: 'open(directory)',
          call: () => open(dir, { engine }),
          cls: OdirectError,
          code: 'EISDIR',
          check: (e) => expect(e.path).toBe(dir),
        },
        { name: 'open(directory, readOnly)', call: () => open(dir, { engine, readOnly: true }), cls: OdirectError, code: 'EISDIR' },
        {
          name: 'open(missing path)',
          call: () => open(path.join(dir, 'missing'), { engine }),
          cls: OdirectError,
          code: 'ENOENT',
          check: (e) => {
            expect(e.errno).toBe(2);
            expect(e.syscall).toBe('open');
            expect(e.path).toBe(path.join(dir, 'missing'));
          },
        },
        {
          name: 'open(missing parent, create)',
          call: () => open(path.join(dir, 'nope', 'x'), { engine, create: true }),
          cls: OdirectError,
          code: 'ENOENT',
        },
        {
          name: 'open(existing, create+exclusive)',
          call: () => open(file, { engine, create: true, exclusive: true, truncate: true }),
          cls: OdirectError,
          code: 'EEXIST',
        },
        // open(): options
        { name: "open(options 'x')", call: () => open(file, any('x')), cls: ArgumentError, code: ERR_TYPE },
        { name: "open(alignment:'nope')", call: () => open(file, any({ alignment: 'nope' })), cls: ArgumentError, code: ERR_VALUE },
        { name: "open(engine:'x')", call: () => open(file, any({ engine: 'x' })), cls: ArgumentError, code: ERR_VALUE },
        { name: "open(fallback:'maybe')", call: () => open(file, any({ fallback: 'maybe' })), cls: ArgumentError, code: ERR_VALUE },
        { name: 'open(queueDepth:0)', call: () => open(file, { queueDepth: 0 }), cls: ArgumentError, code: ERR_RANGE },
        { name: 'open(queueDepth:1e9)', call: () => open(file, { queueDepth: 1e9 }), cls: ArgumentError, code: ERR_RANGE },
        { name: "open(queueDepth:'8')", call: () => open(file, any({ queueDepth: '8' })), cls: ArgumentError, code: ERR_TYPE },
        { name: 'open(mode:-1)', call: () => open(file, { mode: -1 }), cls: ArgumentError, code: ERR_RANGE },
        { name: 'open(mode:0o10000)', call: () => open(file, { mode: 0o10000 }), cls: ArgumentError, code: ERR_RANGE },
        { name: "open(mode:'644')", call: () => open(file, any({ mode: '644' })), cls: ArgumentError, code: ERR_TYPE },
        { name: "open(create:'yes')", call: () => open(file, any({ create: 'yes' })), cls: ArgumentError, code: ERR_TYPE },
        { name: 'open(readOnly+truncate)', call: () => open(file, { readOnly: true, truncate: true }), cls: ArgumentError, code: ERR_VALUE },
        {
          name: 'open(exclusive without create)',
          call: () => open(file, { exclusive: true }),
          cls: ArgumentError,
          code: ERR_VALUE,
        },
        // probe() and alignedBuffer()
        { name: 'probe(42)', call: () => probe(any(42)), cls: ArgumentError, code: ERR_TYPE },
        { name: 'probe(missing)', call: () => probe(path.join(dir, 'missing')), cls: OdirectError, code: 'ENOENT' },
        { name: 'alignedBuffer(0)', call: () => alignedBuffer(0), cls: ArgumentError, code: ERR_RANGE, sync: true },
        { name: 'alignedBuffer(-1)', call: () => alignedBuffer(-1), cls: ArgumentError, code: ERR_RANGE, sync: true },
        { name: 'alignedBuffer(4096, 3)', call: () => alignedBuffer(4096, 3), cls: ArgumentError, code: ERR_RANGE, sync: true },
        { name: "alignedBuffer('1')", call: () => alignedBuffer(any('1')), cls: ArgumentError, code: ERR_TYPE, sync: true },
      ];

      it('has at least 25 bad API calls in the table', () => {
        expect(cases().length).toBeGreaterThanOrEqual(25);
      });

      // One it() per row, so a failure names the call.
      for (const c of cases()) {
        it(c.name, () => expectCase(c));
      }

      it('the handles are still usable afterwards (the process survived, nothing is wedged)', async () => {
        const into = alignedBuffer(8192);
        expect(await f.read(into, 0)).toBe(8192);
        expect(firstDiff(into, known.subarray(0, 8192))).toBe(-1);
        expect(await ro.read(into, 0)).toBe(8192);
        expect(f.stats.bytesWritten).toBe(0);
        expect(f.stats.direct + f.stats.buffered + f.stats.bufferedFallback + f.stats.atomic).toBe(0);
        expect(strict.stats.bytesWritten).toBe(0);
      });
    });
  }

  describe('native addon: wrong types and ranges throw TypeError/RangeError, syscall errors carry errno', () => {
    let fd: number;
    let roFd: number;
    /**
     * The number of an fd closed just now, synchronously, right before the call that uses it (no
     * JS runs in between, so nothing in this process can have reused the number yet).
     */
    const closedFd = (): number => {
      const n = native.openSync(file, C.O_RDONLY, 0);
      native.closeSync(n);
      return n;
    };
    const buf = alignedBuffer(4096).fill(0xdd);
    /** An fd number that can never be open: above any RLIMIT_NOFILE / fs.nr_open (max 2^30). */
    const NEVER_OPEN_FD = 2 ** 31 - 1;

    beforeAll(() => {
      fd = native.openSync(file, C.O_RDWR | C.O_DIRECT, 0);
      roFd = native.openSync(file, C.O_RDONLY, 0);
    });

    afterAll(() => {
      native.closeSync(fd);
      native.closeSync(roFd);
    });

    const any = (v: unknown) => v as never;
    const errnoCheck = (errno: number, syscall: string) => (e: Record<string, unknown>) => {
      expect(e.errno).toBe(errno);
      expect(e.syscall).toBe(syscall);
    };

    const nativeCases = (): Case[] => [
      { name: 'pwritev2Sync(fd, [], 0, 0)', call: () => native.pwritev2Sync(fd, [], 0, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [detached])', call: () => native.pwritev2Sync(fd, [detachedView()], 0, 0), cls: TypeError, sync: true },
      { name: 'pwritev2Sync(fd, [zero-length])', call: () => native.pwritev2Sync(fd, [Buffer.alloc(0)], 0, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [123])', call: () => native.pwritev2Sync(fd, [any(123)], 0, 0), cls: TypeError, sync: true },
      { name: "pwritev2Sync(fd, 'buf')", call: () => native.pwritev2Sync(fd, any('buf'), 0, 0), cls: TypeError, sync: true },
      { name: 'pwritev2Sync(fd, 1025 buffers)', call: () => native.pwritev2Sync(fd, new Array(1025).fill(buf), 0, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(-1, …)', call: () => native.pwritev2Sync(-1, [buf], 0, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(1.5, …)', call: () => native.pwritev2Sync(1.5, [buf], 0, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(2^31, …)', call: () => native.pwritev2Sync(2 ** 31, [buf], 0, 0), cls: RangeError, sync: true },
      { name: "pwritev2Sync('3', …)", call: () => native.pwritev2Sync(any('3'), [buf], 0, 0), cls: TypeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], -1)', call: () => native.pwritev2Sync(fd, [buf], -1, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], 1.5)', call: () => native.pwritev2Sync(fd, [buf], 1.5, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], NaN)', call: () => native.pwritev2Sync(fd, [buf], NaN, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], Infinity)', call: () => native.pwritev2Sync(fd, [buf], Infinity, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], 2^53)', call: () => native.pwritev2Sync(fd, [buf], 2 ** 53, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], 2n**64n)', call: () => native.pwritev2Sync(fd, [buf], 2n ** 64n, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], 2n**63n)', call: () => native.pwritev2Sync(fd, [buf], 2n ** 63n, 0), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], -1n)', call: () => native.pwritev2Sync(fd, [buf], -1n, 0), cls: RangeError, sync: true },
      { name: "pwritev2Sync(fd, [buf], '0')", call: () => native.pwritev2Sync(fd, [buf], any('0'), 0), cls: TypeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], 0, -1)', call: () => native.pwritev2Sync(fd, [buf], 0, -1), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf], 0, 2^32)', call: () => native.pwritev2Sync(fd, [buf], 0, 2 ** 32), cls: RangeError, sync: true },
      { name: 'pwritev2Sync(fd, [buf]) missing args', call: () => (native.pwritev2Sync as (...a: unknown[]) => number)(fd, [buf]), cls: TypeError, sync: true },
      {
        name: 'pwritev2Sync(fd, [buf], 0, unknown RWF bit) → EOPNOTSUPP',
        call: () => native.pwritev2Sync(fd, [buf], 0, 0x40000000),
        cls: Error,
        code: 'EOPNOTSUPP',
        sync: true,
        check: errnoCheck(95, 'pwritev2'),
      },
      {
        name: 'pwritev2Sync(never-open fd) → EBADF',
        call: () => native.pwritev2Sync(NEVER_OPEN_FD, [buf], 0, 0),
        cls: Error,
        code: 'EBADF',
        sync: true,
        check: errnoCheck(9, 'pwritev2'),
      },
      {
        name: 'pwritev2Sync(read-only fd) → EBADF',
        call: () => native.pwritev2Sync(roFd, [buf], 0, 0),
        cls: Error,
        code: 'EBADF',
        sync: true,
        check: errnoCheck(9, 'pwritev2'),
      },
      {
        name: 'pwritev2Sync(fd, misaligned O_DIRECT) → EINVAL',
        call: () => native.pwritev2Sync(fd, [buf.subarray(0, 100)], 1, 0),
        cls: Error,
        code: 'EINVAL',
        sync: true,
        check: errnoCheck(22, 'pwritev2'),
      },
      {
        name: 'pwritev2 (async) with a closed-fd number rejects EBADF',
        // A read-only probe of a closed fd is harmless even if the number were reused meanwhile.
        call: () => native.preadv2(closedFd(), [alignedBuffer(4096)], 0, 0),
        cls: Error,
        code: 'EBADF',
        check: errnoCheck(9, 'preadv2'),
      },
      {
        name: 'preadv2Sync(closed fd) → EBADF',
        call: () => native.preadv2Sync(closedFd(), [alignedBuffer(4096)], 0, 0),
        cls: Error,
        code: 'EBADF',
        sync: true,
        check: errnoCheck(9, 'preadv2'),
      },
      { name: 'preadv2Sync(fd, [buf], NaN)', call: () => native.preadv2Sync(fd, [buf], NaN, 0), cls: RangeError, sync: true },
      { name: 'preadv2Sync(fd, [detached])', call: () => native.preadv2Sync(fd, [detachedView()], 0, 0), cls: TypeError, sync: true },
      { name: 'preadv2Sync(fd, null)', call: () => native.preadv2Sync(fd, any(null), 0, 0), cls: TypeError, sync: true },
      { name: "statxSync('')", call: () => native.statxSync(''), cls: TypeError, sync: true },
      { name: 'statxSync(path with NUL)', call: () => native.statxSync(`${file}\0`), cls: TypeError, sync: true },
      { name: 'statxSync(-1)', call: () => native.statxSync(-1), cls: RangeError, sync: true },
      { name: 'statxSync({})', call: () => native.statxSync(any({})), cls: TypeError, sync: true },
      { name: 'statxSync() no args', call: () => (native.statxSync as (...a: unknown[]) => unknown)(), cls: TypeError, sync: true },
      {
        name: 'statxSync(missing) → ENOENT',
        call: () => native.statxSync(path.join(dir, 'missing')),
        cls: Error,
        code: 'ENOENT',
        sync: true,
        check: errnoCheck(2, 'statx'),
      },
      {
        name: 'statxSync(closed fd) → EBADF',
        call: () => native.statxSync(closedFd()),
        cls: Error,
        code: 'EBADF',
        sync: true,
        check: errnoCheck(9, 'statx'),
      },
      { name: 'openSync(42, …)', call: () => native.openSync(any(42), C.O_RDONLY, 0), cls: TypeError, sync: true },
      { name: "openSync(path, 'r', 0)", call: () => native.openSync(file, any('r'), 0), cls: TypeError, sync: true },
      { name: 'openSync(path, 2^32, 0)', call: () => native.openSync(file, 2 ** 32, 0), cls: RangeError, sync: true },
      { name: 'openSync(path, flags, -1)', call: () => native.openSync(file, C.O_RDONLY, -1), cls: RangeError, sync: true },
      { name: 'openSync(path, flags, 0o10000)', call: () => native.openSync(file, C.O_RDONLY, 0o10000), cls: RangeError, sync: true },
      {
        name: 'openSync(missing) → ENOENT',
        call: () => native.openSync(path.join(dir, 'missing'), C.O_RDONLY, 0),
        cls: Error,
        code: 'ENOENT',
        sync: true,
        check: errnoCheck(2, 'open'),
      },
      {
        name: 'openSync(directory, O_RDWR) → EISDIR',
        call: () => native.openSync(dir, C.O_RDWR, 0),
        cls: Error,
        code: 'EISDIR',
        sync: true,
        check: errnoCheck(21, 'open'),
      },
      { name: 'fallocateSync(fd, 0, 0, 0)', call: () => native.fallocateSync(fd, 0, 0, 0), cls: RangeError, sync: true },
      { name: 'fallocateSync(fd, 0, -1, 4096)', call: () => native.fallocateSync(fd, 0, -1, 4096), cls: RangeError, sync: true },
      { name: 'fallocateSync(fd, 0, 0, NaN)', call: () => native.fallocateSync(fd, 0, 0, NaN), cls: RangeError, sync: true },
      { name: "fallocateSync(fd, 'x', 0, 1)", call: () => native.fallocateSync(fd, any('x'), 0, 1), cls: TypeError, sync: true },
      { name: 'fallocateSync(fd, 2^31, 0, 1)', call: () => native.fallocateSync(fd, 2 ** 31, 0, 1), cls: RangeError, sync: true },
      {
        name: 'fallocateSync(read-only fd) → EBADF',
        call: () => native.fallocateSync(roFd, 0, 0, 1 << 20),
        cls: Error,
        code: 'EBADF',
        sync: true,
        check: errnoCheck(9, 'fallocate'),
      },
      { name: 'ftruncateSync(fd, -1)', call: () => native.ftruncateSync(fd, -1), cls: RangeError, sync: true },
      { name: 'ftruncateSync(fd, 1.5)', call: () => native.ftruncateSync(fd, 1.5), cls: RangeError, sync: true },
      { name: 'ftruncateSync(fd, -5n)', call: () => native.ftruncateSync(fd, -5n), cls: RangeError, sync: true },
      {
        name: 'ftruncateSync(read-only fd) → EINVAL/EBADF',
        call: () => native.ftruncateSync(roFd, 0),
        cls: Error,
        sync: true,
        check: (e) => expect(['EBADF', 'EINVAL']).toContain(e.code),
      },
      { name: 'syncFileRangeSync(fd, -1, 0, 0)', call: () => native.syncFileRangeSync(fd, -1, 0, 0), cls: RangeError, sync: true },
      { name: "fadviseSync(fd, 0, 0, 'x')", call: () => native.fadviseSync(fd, 0, 0, any('x')), cls: TypeError, sync: true },
      {
        name: 'fadviseSync(fd, 0, 0, 12345) → EINVAL',
        call: () => native.fadviseSync(fd, 0, 0, 12345),
        cls: Error,
        code: 'EINVAL',
        sync: true,
        check: errnoCheck(22, 'posix_fadvise'),
      },
      { name: 'residentPagesSync(fd, 0, 0)', call: () => native.residentPagesSync(fd, 0, 0), cls: RangeError, sync: true },
      { name: 'residentPagesSync(fd, -1, 1)', call: () => native.residentPagesSync(fd, -1, 1), cls: RangeError, sync: true },
      { name: "addressModulo('x', 8)", call: () => native.addressModulo(any('x'), 8), cls: TypeError, sync: true },
      { name: 'addressModulo(buf, 3)', call: () => native.addressModulo(buf, 3), cls: RangeError, sync: true },
      { name: 'addressModulo(detached, 8)', call: () => native.addressModulo(detachedView(), 8), cls: TypeError, sync: true },
      { name: 'closeSync(-1)', call: () => native.closeSync(-1), cls: RangeError, sync: true },
      {
        name: 'closeSync(never-open fd) → EBADF',
        call: () => native.closeSync(NEVER_OPEN_FD),
        cls: Error,
        code: 'EBADF',
        sync: true,
        check: errnoCheck(9, 'close'),
      },
    ];

    for (const c of nativeCases()) {
      it(c.name, () => expectCase(c));
    }

    it('async variants check arguments the same way (throw or reject, never crash)', async () => {
      const outcomes = await Promise.allSettled([
        (async () => native.pwritev2(fd, [], 0, 0))(),
        (async () => native.pwritev2(fd, [buf], -1, 0))(),
        (async () => native.preadv2(fd, [detachedView()], 0, 0))(),
        (async () => native.fallocate(fd, 0, 0, 0))(),
        (async () => native.statx(''))(),
      ]);
      const classes = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).constructor : 'fulfilled'));
      expect(classes).toEqual([RangeError, RangeError, TypeError, RangeError, TypeError]);
    });
  });

  it('after the whole table the file has exactly its old bytes, size and mtime (O_DIRECT read back)', async () => {
    const st = native.statxSync(file);
    expect(st.size).toBe(KNOWN_SIZE);
    expect(fs.statSync(file).size).toBe(KNOWN_SIZE);
    expect(fs.statSync(file).mtimeMs).toBe(mtimeBefore);
    const back = readBackDirect(file);
    expect(back.length).toBe(KNOWN_SIZE);
    expect(firstDiff(back, known)).toBe(-1);
    // And through a fresh DirectFile (its own read path).
    const g = await open(file, { readOnly: true });
    try {
      const into = alignedBuffer(KNOWN_SIZE + 4096);
      expect(await g.read(into, 0)).toBe(KNOWN_SIZE);
      expect(firstDiff(into.subarray(0, KNOWN_SIZE), known)).toBe(-1);
    } finally {
      await g.close();
    }
    expect(fs.readFileSync(roFile, 'utf8')).toBe('read only');
    // Nothing was created by the failed opens.
    expect(fs.readdirSync(dir).sort()).toEqual(['readonly.bin', 'target.bin']);
  });
});
