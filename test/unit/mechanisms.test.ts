// The stateful mechanisms (lib/mechanisms/): range lock, ordering gate, known size. No I/O.
import { describe, expect, it } from 'vitest';
import { KnownSize } from '../../lib/mechanisms/known-size';
import { OrderingGate } from '../../lib/mechanisms/ordering-gate';
import { RangeLock, sharedRangeLock, sharedRangeLockCount, type Release } from '../../lib/mechanisms/range-lock';

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('RangeLock', () => {
  it('an uncontended acquire returns the release at once (no promise)', () => {
    const locks = new RangeLock();
    const a = locks.acquire(0, 4096, false);
    expect(typeof a).toBe('function');
    const b = locks.acquire(0, 4096, false); // shared with shared: no conflict
    expect(typeof b).toBe('function');
    (a as Release)();
    (b as Release)();
    expect(typeof locks.acquire(0, 4096, true)).toBe('function');
  });

  it('exclusive waits for overlapping holders, not for disjoint ones', async () => {
    const locks = new RangeLock();
    const shared = locks.acquire(0, 1024, false) as Release;
    const disjoint = locks.acquire(1024, 2048, true);
    expect(typeof disjoint).toBe('function');
    const overlapping = locks.acquire(512, 1536, true);
    expect(overlapping).toBeInstanceOf(Promise);
    let got = false;
    void (overlapping as Promise<Release>).then(() => (got = true));
    await settle();
    expect(got).toBe(false);
    shared();
    await settle();
    expect(got).toBe(false); // still waits for the exclusive [1024, 2048)
    (disjoint as Release)();
    await settle();
    expect(got).toBe(true);
  });

  it('FIFO: a shared request behind a waiting exclusive one waits for it', async () => {
    const locks = new RangeLock();
    const first = locks.acquire(0, 4096, false) as Release;
    const order: string[] = [];
    const ex = (locks.acquire(0, 4096, true) as Promise<Release>).then((r) => (order.push('exclusive'), r));
    const sh = Promise.resolve(locks.acquire(0, 4096, false)).then((r) => (order.push('shared'), r));
    first();
    const rEx = await ex;
    await settle();
    expect(order).toEqual(['exclusive']);
    rEx();
    (await sh)();
    expect(order).toEqual(['exclusive', 'shared']);
  });

  it('holdShared/holdExclusive: a hold at once only when nothing held or waiting conflicts; FIFO kept among overlapping requests', async () => {
    const locks = new RangeLock();
    const a = locks.holdExclusive(0, 4096)!;
    expect(a).toBeDefined();
    expect(locks.holdExclusive(2048, 8192)).toBeUndefined(); // overlaps a held exclusive range
    expect(locks.holdShared(0, 10)).toBeUndefined();
    const disjoint = locks.holdShared(8192, 12288)!; // beside an exclusive range: fine
    expect(disjoint).toBeDefined();
    // [4096, 8192) touches neither held range: granted at once.
    const between = locks.acquire(4096, 8192, true);
    expect(typeof between).toBe('function');
    (between as Release)();
    // A request that has to wait is queued; a later overlapping one may not jump it.
    const queued = locks.acquire(0, 8192, true);
    expect(queued).toBeInstanceOf(Promise); // waits for `a`
    expect(locks.holdShared(4096, 8192)).toBeUndefined(); // overlaps the waiting exclusive request
    expect(locks.holdExclusive(12288, 16384)).toBeDefined(); // overlaps nothing
    locks.drop(a);
    (await (queued as Promise<Release>))();
    locks.drop(disjoint);
    locks.drop(disjoint); // a second drop is a no-op
    expect(locks.holdShared(0, 4096)).toBeDefined();
  });

  it('a second release is a no-op', () => {
    const locks = new RangeLock();
    const r = locks.acquire(0, 10, true) as Release;
    r();
    r();
    expect(typeof locks.acquire(0, 10, true)).toBe('function');
  });
});

describe('OrderingGate and KnownSize', () => {
  it('writes inside the known size run at once and concurrently; extending ones one after another', async () => {
    const size = new KnownSize(8192);
    const gate = new OrderingGate(size);
    const events: string[] = [];
    const d1 = deferred();
    const d2 = deferred();
    const inside = gate.write(4096, 4096, async (before) => (events.push(`inside@${before}`), 'in'));
    const ext1 = gate.write(12288, 12288, async (before) => {
      events.push(`ext1@${before}`);
      await d1.promise;
    });
    const ext2 = gate.write(16384, 16384, async (before) => {
      events.push(`ext2@${before}`);
      await d2.promise;
    });
    await settle();
    expect(events).toEqual(['inside@8192', 'ext1@8192']);
    expect(gate.inFlight).toBe(2); // the write inside has completed; both extending ones count
    d1.resolve();
    await settle();
    // the second extending write starts after the first completed, and sees the size it left
    expect(events).toEqual(['inside@8192', 'ext1@8192', 'ext2@12288']);
    d2.resolve();
    await Promise.all([inside, ext1, ext2]);
    expect(size.value).toBe(16384);
    expect(gate.inFlight).toBe(0);
  });

  it('a write that reaches past the size but ends inside it (read-modify-write) does not grow the size past its end', async () => {
    const size = new KnownSize(1000);
    const gate = new OrderingGate(size);
    await gate.write(1024, 900, async () => undefined);
    expect(size.value).toBe(1000);
    await gate.write(1536, 1100, async () => undefined);
    expect(size.value).toBe(1100);
  });

  it('a failed extending write leaves the size, and the next one still runs', async () => {
    const size = new KnownSize(0);
    const gate = new OrderingGate(size);
    const failed = gate.write(4096, 4096, async () => {
      throw new Error('ENOSPC');
    });
    const next = gate.write(8192, 8192, async (before) => before);
    await expect(failed).rejects.toThrow('ENOSPC');
    expect(await next).toBe(0);
    expect(size.value).toBe(8192);
  });

  it('exclusive (truncate, close) waits for I/O in flight, and I/O issued after it waits for it', async () => {
    const size = new KnownSize(0);
    const gate = new OrderingGate(size);
    const events: string[] = [];
    const d = deferred();
    const before = gate.run(async () => {
      events.push('before start');
      await d.promise;
      events.push('before end');
    });
    const barrier = gate.exclusive(async () => {
      events.push('exclusive');
      size.value = 100;
    });
    const after = gate.run(async () => events.push('after'));
    await settle();
    expect(events).toEqual(['before start']);
    d.resolve();
    await Promise.all([before, barrier, after]);
    expect(events).toEqual(['before start', 'before end', 'exclusive', 'after']);
    expect(size.value).toBe(100);
  });

  it('drain resolves when nothing is in flight', async () => {
    const gate = new OrderingGate(new KnownSize(0));
    await gate.drain();
    const d = deferred();
    const io = gate.run(() => d.promise);
    let drained = false;
    void gate.drain().then(() => (drained = true));
    await settle();
    expect(drained).toBe(false);
    d.resolve();
    await io;
    await settle();
    expect(drained).toBe(true);
  });
});

describe('the range lock is one per file for every handle in the process (docs/page-cache-collisions.md)', () => {
  it('two handles of one file get the same lock, another file its own; the last close lets go', async () => {
    const before = sharedRangeLockCount();
    const a = sharedRangeLock('7:16 13');
    const b = sharedRangeLock('7:16 13');
    const other = sharedRangeLock('7:16 14');
    expect(a.lock).toBe(b.lock);
    expect(other.lock).not.toBe(a.lock);
    expect(sharedRangeLockCount()).toBe(before + 2);
    // A buffered write's page claim through one handle holds off a direct write through the other.
    const held = a.lock.acquire(0, 4096, true) as Release;
    const waiting = b.lock.acquire(512, 1024, false);
    expect(typeof waiting).not.toBe('function');
    held();
    (await waiting)();
    a.unshare();
    a.unshare(); // a second unshare by the same handle counts once
    expect(sharedRangeLockCount()).toBe(before + 2);
    b.unshare();
    other.unshare();
    expect(sharedRangeLockCount()).toBe(before);
  });
});
