// The invalid-call tables shared by test/bad-input.test.ts (one row per value) and the fuzzer
// (test/fuzz/generators.ts, which draws from them): bad positions, data and write options,
// each with the error it must give before any I/O.
import { alignedBuffer } from '../../lib/aligned';
import { ArgumentError, AtomicWriteError, type OdirectError } from '../../lib/index';
import { native } from '../../lib/native';

export const TYPE = 'ERR_INVALID_ARG_TYPE';
export const VALUE = 'ERR_INVALID_ARG_VALUE';
export const RANGE = 'ERR_OUT_OF_RANGE';

export interface Expected {
  cls: typeof OdirectError;
  code: string;
}

/** A Uint8Array whose ArrayBuffer has been transferred away (detached). */
export function detachedView(size = 4096): Uint8Array {
  const ab = new ArrayBuffer(size);
  const view = new Uint8Array(ab);
  const ta = ab as ArrayBuffer & { transfer?: () => ArrayBuffer };
  if (typeof ta.transfer === 'function') ta.transfer();
  else structuredClone(ab, { transfer: [ab] });
  if (ab.byteLength !== 0) throw new Error('detachedView: the buffer did not detach');
  return view;
}

/** A short, readable description of a value, for test names and failure messages. */
export function describeValue(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.constructor.name}(${v.byteLength}${v.byteLength ? `, addr%512=${native.addressModulo(v, 512)}` : ''})`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.byteLength} bytes)`;
  if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength})`;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' && Object.is(v, -0)) return '-0';
  if (Array.isArray(v)) return v.length > 4 ? `[${v.length} items]` : `[${v.map(describeValue).join(', ')}]`;
  if (v && typeof v === 'object') {
    try {
      return JSON.stringify(v);
    } catch {
      return String(v);
    }
  }
  return String(v);
}

/** Positions (and sizes) that checkPosition refuses. */
export const BAD_POSITIONS: ReadonlyArray<{ value: unknown; code: string }> = [
  { value: -1, code: RANGE },
  { value: -4096, code: RANGE },
  { value: NaN, code: RANGE },
  { value: 1.5, code: RANGE },
  { value: 4096.25, code: RANGE },
  { value: Infinity, code: RANGE },
  { value: -Infinity, code: RANGE },
  { value: 2 ** 53, code: RANGE },
  { value: 2 ** 64, code: RANGE },
  { value: Number.MAX_VALUE, code: RANGE },
  { value: -0.5, code: RANGE },
  { value: '0', code: TYPE },
  { value: '4096', code: TYPE },
  { value: 0n, code: TYPE },
  { value: 4096n, code: TYPE },
  { value: null, code: TYPE },
  { value: undefined, code: TYPE },
  { value: {}, code: TYPE },
  { value: [0], code: TYPE },
  { value: true, code: TYPE },
];

/** Data a write refuses (made fresh per call: some of them detach). */
export const BAD_DATA: ReadonlyArray<{ value: () => unknown; code: string }> = [
  { value: () => 'some text', code: TYPE },
  { value: () => 4096, code: TYPE },
  { value: () => null, code: TYPE },
  { value: () => undefined, code: TYPE },
  { value: () => ({ length: 4096 }), code: TYPE },
  { value: () => [1, 2, 3], code: TYPE },
  { value: () => new ArrayBuffer(4096), code: TYPE },
  { value: () => new DataView(new ArrayBuffer(4096)), code: TYPE },
  { value: () => new Uint16Array(2048), code: TYPE },
  { value: () => new Float64Array(512), code: TYPE },
  { value: () => Buffer.alloc(0), code: VALUE },
  { value: () => new Uint8Array(0), code: VALUE },
  { value: () => alignedBuffer(4096).subarray(4096), code: VALUE },
  { value: () => detachedView(), code: VALUE },
];

/** Write options refused before any I/O. */
export const BAD_WRITE_OPTIONS: ReadonlyArray<{ value: unknown; expected: Expected }> = [
  { value: 'dsync', expected: { cls: ArgumentError, code: TYPE } },
  { value: 'nope', expected: { cls: ArgumentError, code: TYPE } },
  { value: 1, expected: { cls: ArgumentError, code: TYPE } },
  { value: null, expected: { cls: ArgumentError, code: TYPE } },
  { value: [], expected: { cls: ArgumentError, code: TYPE } },
  { value: true, expected: { cls: ArgumentError, code: TYPE } },
  { value: { atomic: 'yes' }, expected: { cls: ArgumentError, code: TYPE } },
  { value: { atomic: 1 }, expected: { cls: ArgumentError, code: TYPE } },
  { value: { dsync: 1 }, expected: { cls: ArgumentError, code: TYPE } },
  { value: { dsync: 'true' }, expected: { cls: ArgumentError, code: TYPE } },
  { value: { cache: 'none' }, expected: { cls: ArgumentError, code: VALUE } },
  { value: { cache: 1 }, expected: { cls: ArgumentError, code: VALUE } },
  { value: { cache: '' }, expected: { cls: ArgumentError, code: VALUE } },
  { value: { cache: 'x' }, expected: { cls: ArgumentError, code: VALUE } },
  { value: { atomic: true, cache: 'dontcache' }, expected: { cls: AtomicWriteError, code: 'ERR_ATOMIC_NOT_DIRECT' } },
  { value: { atomic: true, cache: 'writethrough' }, expected: { cls: AtomicWriteError, code: 'ERR_ATOMIC_NOT_DIRECT' } },
];

