// Issue 10: overlapping software (CoW) atomic writes on XFS are ordered; the
// rule that says which writes, and the lock's promise that nothing else waits.
import { describe, expect, it } from 'vitest';
import { atomicWriteNeedsExclusiveRange, hasSoftwareAtomicWrites } from '../lib/policies/atomic-overlap';
import { RangeLock, type Release } from '../lib/policies/range-lock';
import type { Capabilities } from '../lib/types';
import type { DeviceInfo } from '../lib/probe/device';

function caps(fsType: string, unitMax: number, hardwareMax: number | undefined): Capabilities {
  const device: DeviceInfo | undefined =
    hardwareMax === undefined
      ? undefined
      : {
          name: 'test0',
          size: 1 << 30,
          logicalBlockSize: 512,
          physicalBlockSize: 4096,
          writeCache: 'write back',
          fua: false,
          rotational: false,
          atomicWriteUnitMin: hardwareMax ? 4096 : 0,
          atomicWriteUnitMax: hardwareMax,
          atomicWriteMax: hardwareMax,
          atomicWriteBoundary: 0,
        };
  return {
    path: '/x',
    kind: 'file',
    fsType,
    size: 0,
    direct: { supported: true, memAlign: 512, offsetAlign: 512, readOffsetAlign: 512 } as Capabilities['direct'],
    atomic: { supported: unitMax > 0, unitMin: unitMax ? 4096 : 0, unitMax, unitMaxOpt: 0, segmentsMax: 1 },
    dontcache: true,
    ioUring: { available: true },
    dax: false,
    ...(device ? { device } : {}),
  };
}

describe('which atomic writes hold their range exclusively', () => {
  it('XFS on a device without hardware atomics (a loop device): every atomic write', () => {
    expect(hasSoftwareAtomicWrites(caps('xfs', 1 << 20, 0))).toBe(true);
    expect(atomicWriteNeedsExclusiveRange(caps('xfs', 1 << 20, 0), true)).toBe(true);
    expect(atomicWriteNeedsExclusiveRange(caps('xfs', 1 << 20, undefined), true)).toBe(true);
  });

  it('XFS whose software unit exceeds the hardware one: every atomic write (XFS may fall back to CoW for any)', () => {
    expect(atomicWriteNeedsExclusiveRange(caps('xfs', 1 << 20, 65536), true)).toBe(true);
  });

  it('XFS with hardware atomics only (statx unit no larger than the device): none', () => {
    expect(atomicWriteNeedsExclusiveRange(caps('xfs', 65536, 65536), true)).toBe(false);
  });

  it('plain writes never; ext4, block devices and filesystems without atomics never', () => {
    expect(atomicWriteNeedsExclusiveRange(caps('xfs', 1 << 20, 0), false)).toBe(false);
    expect(atomicWriteNeedsExclusiveRange(caps('ext4', 65536, 65536), true)).toBe(false);
    expect(atomicWriteNeedsExclusiveRange(caps('block', 65536, 65536), true)).toBe(false);
    expect(atomicWriteNeedsExclusiveRange(caps('xfs', 0, 0), true)).toBe(false);
  });
});

describe('the range lock, taken exclusively by software atomic writes', () => {
  it('a write that overlaps nothing in flight does not wait (the release comes at once)', () => {
    const lock = new RangeLock();
    const a = lock.acquire(0, 65536, true);
    const b = lock.acquire(65536, 131072, true);
    expect(typeof a).toBe('function');
    expect(typeof b).toBe('function');
    (a as Release)();
    (b as Release)();
  });

  it('overlapping writes run one at a time, in issue order', async () => {
    const lock = new RangeLock();
    const order: string[] = [];
    const run = async (name: string) => {
      const got = lock.acquire(0, 65536, true);
      const release = typeof got === 'function' ? got : await got;
      order.push(`${name} start`);
      await new Promise((r) => setTimeout(r, 5));
      order.push(`${name} end`);
      release();
    };
    await Promise.all([run('a'), run('b'), run('c')]);
    expect(order).toEqual(['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
  });

  it('a plain (shared) write overlapping an exclusive atomic one waits for it', async () => {
    const lock = new RangeLock();
    const atomic = lock.acquire(0, 65536, true) as Release;
    const plain = lock.acquire(4096, 8192, false);
    expect(plain).toBeInstanceOf(Promise);
    let released = false;
    const waited = (plain as Promise<Release>).then((r) => {
      expect(released).toBe(true);
      r();
    });
    released = true;
    atomic();
    await waited;
  });
});
