// lib/habits.ts without a kernel: the signature check, AbortError, abortable()'s
// outcomes, and stat()'s shaping of a statx record.
import { describe, expect, it } from 'vitest';
import { abortable, AbortError, checkSignature, toStat } from '../../lib/habits';
import type { NativeStatx } from '../../lib/native';
import { OdirectError } from '../../lib/errors';
import { ArgumentError } from '../../lib/validate';

function args(...a: unknown[]): IArguments {
  return (function (this: unknown) {
    return arguments; // eslint-disable-line prefer-rest-params
  }).apply(null, a as []);
}

describe('checkSignature', () => {
  it("refuses node:fs's (buffer, offset, length, position) and a number where options go", () => {
    const sig = 'read(into, position, options?)';
    expect(() => checkSignature(args('b', 0, 4096, 4096), sig, 2)).toThrow(ArgumentError);
    expect(() => checkSignature(args('b', 0, 4096, 4096), sig, 2)).toThrow(/read\(into, position, options\?\).*got 4.*subarray/s);
    expect(() => checkSignature(args('b', 0, 4096), sig, 2)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => checkSignature(args('b', 0, {}, undefined), sig, 2)).toThrow(ArgumentError);
  });

  it('accepts two arguments, or an options object (or undefined) third', () => {
    expect(() => checkSignature(args('b', 0), 'x', 2)).not.toThrow();
    expect(() => checkSignature(args('b', 0, {}), 'x', 2)).not.toThrow();
    expect(() => checkSignature(args('b', 0, undefined), 'x', 2)).not.toThrow();
  });
});

describe('abortable', () => {
  it('an aborted signal: AbortError (name, code, cause) and run never called', async () => {
    let ran = false;
    const reason = new Error('why');
    const p = abortable(() => 'x', AbortSignal.abort(reason), async () => {
      ran = true;
      return 1;
    });
    await expect(p).rejects.toBeInstanceOf(AbortError);
    await expect(p).rejects.toBeInstanceOf(OdirectError);
    await expect(p).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    expect(ran).toBe(false);
  });

  it('without a signal it is run() itself: no promise of its own, and the name is never made', async () => {
    const result = Promise.resolve(5);
    let named = 0;
    const p = abortable(
      () => {
        named++;
        return 'x';
      },
      undefined,
      () => result,
    );
    expect(p).toBe(result);
    await expect(p).resolves.toBe(5);
    expect(named).toBe(0);
  });

  it('aborted while running: rejects after run settles, whether run resolved or failed', async () => {
    const ac = new AbortController();
    let settled = false;
    const p = abortable(() => 'x', ac.signal, async () => {
      await new Promise((r) => setTimeout(r, 5));
      settled = true;
      return 7;
    });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(settled).toBe(true);
    const ac2 = new AbortController();
    const p2 = abortable(() => 'x', ac2.signal, async () => {
      ac2.abort();
      throw new Error('ECANCELED');
    });
    await expect(p2).rejects.toBeInstanceOf(AbortError);
  });

  it('not aborted: the result, or the error as it is', async () => {
    await expect(abortable(() => 'x', new AbortController().signal, async () => 3)).resolves.toBe(3);
    const e = new Error('boom');
    await expect(
      abortable(() => 'x', new AbortController().signal, async () => {
        throw e;
      }),
    ).rejects.toBe(e);
    await expect(abortable(() => 'x', undefined, async () => 4)).resolves.toBe(4);
  });
});

describe('toStat', () => {
  const base: NativeStatx = {
    mask: 0x7ff, blksize: 4096, attributes: 0n, attributesMask: 0n, mode: 0o100644, nlink: 1, uid: 1, gid: 2, ino: 99,
    size: 8192, blocks: 16, rdevMajor: 0, rdevMinor: 0, devMajor: 7, devMinor: 3, mntId: 1, dioMemAlign: 512,
    dioOffsetAlign: 512, dioReadOffsetAlign: 512, atomicWriteUnitMin: 0, atomicWriteUnitMax: 0, atomicWriteUnitMaxOpt: 0,
    atomicWriteSegmentsMax: 0, dax: 0, writeAtomic: 0,
    atimeNs: 1_700_000_000_123_456_789n, mtimeNs: 1_700_000_001_000_000_001n, ctimeNs: 1_700_000_002_999_999_999n, btimeNs: 5n,
  };

  it("times as Dates (ms) and BigInt ns; dev as node's makedev; no birthtime without STATX_BTIME", () => {
    const st = toStat(base);
    expect(st.atime.getTime()).toBe(1_700_000_000_123);
    expect(st.ctime.getTime()).toBe(1_700_000_002_999);
    expect(st.mtimeNs).toBe(1_700_000_001_000_000_001n);
    expect(st.dev).toBe(0x703);
    expect(st.birthtime).toBeUndefined();
    expect(st.birthtimeNs).toBeUndefined();
    expect(st.isFile()).toBe(true);
    const withBirth = toStat({ ...base, mask: base.mask | 0x800, btimeNs: 1_000_000_000n });
    expect(withBirth.birthtime?.getTime()).toBe(1000);
    expect(withBirth.birthtimeNs).toBe(1_000_000_000n);
    expect(toStat({ ...base, mode: 0o060660 }).isBlockDevice()).toBe(true);
  });
});
