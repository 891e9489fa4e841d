// Issue 9: memory the kernel touches is always memory odirect holds. One test
// per item of the issue, each on both engines where it does I/O, asserting
// what the kernel did (bytes read back) and how each op settled.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { alignedBuffer, open, registeredBuffer, releaseBuffer } from '../lib/index';
import { C, native } from '../lib/native';
import { isShrinkable, memoryKind, needsOwnedCopy } from '../lib/policies/ownership';
import { isPrivateOwnedDir, sweepStaleScratch, type ScratchFs } from '../lib/scratch/scratchfs';
import { shutdownScratchFs } from '../lib/scratch/shutdown';
import { readMounts } from '../lib/probe/mountinfo';
import { ENGINES } from './helpers/engines';
import { describeOnFs, requireLoop, scratchEnv, uniqueDir } from './helpers/scratch';

const root = path.join(__dirname, '..');

function readBack(file: string, position: number, length: number): Buffer {
  const fd = native.openSync(file, C.O_RDONLY, 0);
  try {
    const into = Buffer.alloc(length);
    return into.subarray(0, native.preadv2Sync(fd, [into], position, 0));
  } finally {
    native.closeSync(fd);
  }
}

function fill(b: Uint8Array, seed: number): Uint8Array {
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + seed * 7 + (i >> 12)) & 0xff;
  return b;
}

/** A view of `size` bytes over a SharedArrayBuffer, at an address `skew` bytes past a 4 KiB boundary. */
function sharedView(size: number, skew: number): Uint8Array {
  const sab = new SharedArrayBuffer(size + 8192);
  const whole = new Uint8Array(sab);
  const skip = ((4096 - native.addressModulo(whole, 4096)) % 4096) + skew;
  return new Uint8Array(sab, skip, size);
}

describe('ownership policy (pure)', () => {
  const owned = new WeakSet<ArrayBufferLike>();
  const mine = new ArrayBuffer(8);
  owned.add(mine);
  const isOwned = (b: ArrayBufferLike) => owned.has(b);
  it('classifies owned, shared and caller memory', () => {
    expect(memoryKind(new Uint8Array(mine), isOwned)).toBe('owned');
    expect(memoryKind(new Uint8Array(new SharedArrayBuffer(8)), isOwned)).toBe('shared');
    expect(memoryKind(new Uint8Array(8), isOwned)).toBe('caller');
    expect(needsOwnedCopy([new Uint8Array(mine), new Uint8Array(new SharedArrayBuffer(8))], isOwned)).toBe(false);
    expect(needsOwnedCopy([new Uint8Array(mine), new Uint8Array(8)], isOwned)).toBe(true);
  });
  it('tells a shrinkable buffer from a growable shared one', () => {
    const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer;
    const Growable = SharedArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => SharedArrayBuffer;
    expect(isShrinkable(new Uint8Array(new Resizable(8, { maxByteLength: 16 })))).toBe(true);
    expect(isShrinkable(new Uint8Array(new Growable(8, { maxByteLength: 16 })))).toBe(false);
    expect(isShrinkable(new Uint8Array(8))).toBe(false);
  });
});

describe('owned memory (native)', () => {
  it('alignedBuffer is odirect memory; its .buffer is that allocation alone', () => {
    const b = alignedBuffer(8192);
    expect(native.isOwned(b)).toBe(true);
    expect(native.addressModulo(b, 4096)).toBe(0);
    expect(b.buffer.byteLength).toBe(8192);
    expect(native.isOwned(Buffer.alloc(8192))).toBe(false);
  });

  it('an async op refuses caller memory with ERR_BUFFER_NOT_OWNED; the sync form (no JS runs meanwhile) takes it', async () => {
    const file = path.join(os.tmpdir(), `odirect-mem-${process.pid}-${Date.now()}`);
    const fd = native.openSync(file, C.O_RDWR | C.O_CREAT, 0o600);
    try {
      const plain = fill(new Uint8Array(4096), 1);
      expect(() => native.pwritev2(fd, [plain], 0, 0)).toThrow(expect.objectContaining({ code: 'ERR_BUFFER_NOT_OWNED' }));
      expect(() => native.preadv2(fd, [plain], 0, 0)).toThrow(expect.objectContaining({ code: 'ERR_BUFFER_NOT_OWNED' }));
      expect(fs.statSync(file).size).toBe(0); // nothing reached the kernel
      expect(native.pwritev2Sync(fd, [plain], 0, 0)).toBe(4096);
      expect(readBack(file, 0, 4096).equals(plain)).toBe(true);
    } finally {
      native.closeSync(fd);
      fs.rmSync(file, { force: true });
    }
  });

  it('transfer cannot move odirect memory away (structuredClone copies it), and releaseBuffer detaches it', () => {
    const b = alignedBuffer(4096);
    b[0] = 7;
    const clone = new Uint8Array(structuredClone(b.buffer, { transfer: [b.buffer] }));
    clone[0] = 9;
    expect(b.byteLength).toBe(4096); // still attached: external memory is not transferable
    expect(b[0]).toBe(7);
  });
});

describe('residentPages with a huge length (no allocation sized by the caller)', () => {
  it('sync and async answer, and offset + length past 2^63-1 is a RangeError', async () => {
    const file = path.join(os.tmpdir(), `odirect-rp-${process.pid}-${Date.now()}`);
    fs.writeFileSync(file, Buffer.alloc(16384, 1));
    const fd = native.openSync(file, C.O_RDONLY, 0);
    try {
      const sync = native.residentPagesSync(fd, 0, Number.MAX_SAFE_INTEGER);
      expect(sync).toBeGreaterThanOrEqual(0);
      expect(sync).toBeLessThanOrEqual(4);
      expect(await native.residentPages(fd, 0, 2n ** 62n)).toBe(sync);
      expect(await native.residentPages(fd, 2n ** 62n, 2n ** 62n - 1n)).toBe(0);
      expect(() => native.residentPagesSync(fd, 2n ** 62n, 2n ** 62n)).toThrow(RangeError);
      expect(() => native.residentPages(fd, 2n ** 63n, 1)).toThrow(RangeError);
    } finally {
      native.closeSync(fd);
      fs.rmSync(file, { force: true });
    }
  });
});

describe("the bench's interrupt lets go of files without freeing fd numbers", () => {
  it('fdToDevNull points the fd at /dev/null: its number stays taken, and I/O aimed at it misses the file', () => {
    const file = path.join(os.tmpdir(), `odirect-devnull-${process.pid}-${Date.now()}`);
    fs.writeFileSync(file, Buffer.alloc(4096, 1));
    const fd = native.openSync(file, C.O_RDWR, 0);
    try {
      native.fdToDevNull(fd);
      expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe('/dev/null');
      const other = native.openSync(file, C.O_RDONLY, 0);
      expect(other).not.toBe(fd); // the number was not handed out again
      native.closeSync(other);
      expect(native.pwritev2Sync(fd, [Buffer.alloc(4096, 2)], 0, 0)).toBe(4096); // to /dev/null
      expect(fs.readFileSync(file).equals(Buffer.alloc(4096, 1))).toBe(true);
    } finally {
      native.closeSync(fd);
      fs.rmSync(file, { force: true });
    }
  });
});

describe('io_uring opcode probe', () => {
  it('reports the needed opcodes this kernel lacks (none here: 6.x)', () => {
    const support = native.uringSupport();
    if (support.errno !== 0) return; // no io_uring at all: probe().ioUring says why (uring.test.ts)
    expect(support.missing).toEqual([]);
  });

  it('a ring without READ/WRITE (5.1–5.5) is not chosen: auto takes the thread pool, probe().ioUring names the opcodes', () => {
    const script = `
      const o = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
      const { uringAvailability } = require(${JSON.stringify(path.join(root, 'dist', 'probe', 'uring.js'))});
      const { selectEngine } = require(${JSON.stringify(path.join(root, 'dist', 'engines', 'select.js'))});
      let forced;
      try { selectEngine('uring'); forced = 'chosen'; } catch (e) { forced = e.code; }
      console.log(JSON.stringify({ avail: uringAvailability(), auto: selectEngine('auto').name, forced }));
    `;
    const r = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, ODIRECT_SIMULATE_URING_MISSING_OPS: 'READ,WRITE' },
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.avail.available).toBe(false);
    expect(out.avail.reason).toMatch(/IORING_OP_READ, IORING_OP_WRITE/);
    expect(out.auto).toBe('threadpool');
    expect(out.forced).toBe('ERR_URING_UNAVAILABLE');
  });
});

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `memory safety on ${fsName}`, (mnt) => {
    let dir: string;
    beforeAll(() => {
      dir = uniqueDir(mnt, 'memory');
    });

    for (const engine of ENGINES) {
      describe(`engine ${engine}`, () => {
        it('transfer (structuredClone, worker postMessage, ArrayBuffer.prototype.transfer) + gc during I/O: no fresh buffer holds file bytes; the file holds the old or the new bytes', () => {
          const sub = fs.mkdtempSync(path.join(dir, `transfer-${engine}-`));
          const r = spawnSync(process.execPath, ['--expose-gc', path.join(root, 'test', 'fixtures', 'memory-transfer.cjs'), sub, engine], {
            encoding: 'utf8',
            timeout: 120_000,
          });
          expect(r.status, r.stderr).toBe(0);
          const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
          const cases = lines.filter((l) => !l.skipped);
          const skipped = lines.filter((l) => l.skipped);
          // Node 20 has no ArrayBuffer.prototype.transfer: that method is skipped there, with the reason printed.
          expect(cases.length).toBe((typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function' ? 3 : 2) * 16);
          if (skipped.length) expect(skipped[0].reason).toMatch(/absent/);
          for (const c of cases) {
            const what = JSON.stringify(c);
            expect(c.freshWithFileBytes, what).toBe(0);
            if (c.op === 'write') {
              expect(c.file, what).toBe(c.settled.ok ? 'new' : 'old');
              if (!c.settled.ok) expect(c.settled.code, what).toBe('ERR_BUFFER_DETACHED');
            } else if (c.settled.ok) {
              expect(c.settled.value, what).toBe(1 << 20);
            } else {
              expect(c.kind, what).toMatch(/^caller/); // odirect memory cannot be taken away
              expect(c.settled.code, what).toBe('ERR_BUFFER_DETACHED');
            }
          }
          fs.rmSync(sub, { recursive: true, force: true });
        });

        it('a resizable ArrayBuffer is refused before any I/O (it could shrink mid-read)', async () => {
          const file = path.join(dir, `resizable-${engine}`);
          const f = await open(file, { create: true, truncate: true, engine });
          try {
            const data = fill(alignedBuffer(1 << 20), 3);
            await f.write(data, 0);
            const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & {
              resize(n: number): void;
            };
            const ab = new Resizable(1 << 20, { maxByteLength: 1 << 20 });
            const into = new Uint8Array(ab);
            const read = f.read(into, 0);
            ab.resize(4096);
            await expect(read).rejects.toMatchObject({ name: 'ArgumentError', code: 'ERR_BUFFER_RESIZABLE' });
            await expect(f.write(new Uint8Array(new Resizable(4096, { maxByteLength: 8192 })), 0)).rejects.toMatchObject({
              code: 'ERR_BUFFER_RESIZABLE',
            });
            expect(readBack(file, 0, 1 << 20).equals(data)).toBe(true);
          } finally {
            await f.close();
          }
        });

        it('SharedArrayBuffer views are written and read zero-copy (aligned) and bounced (unaligned)', async () => {
          const file = path.join(dir, `shared-${engine}`);
          const f = await open(file, { create: true, truncate: true, engine });
          try {
            const aligned = fill(sharedView(65536, 0), 5);
            expect(await f.write(aligned, 0)).toEqual({ bytesWritten: 65536, path: 'direct' });
            const unaligned = fill(sharedView(65536, 512 + 3), 6);
            expect((await f.write(unaligned, 65536)).bytesWritten).toBe(65536);
            expect(readBack(file, 0, 65536).equals(Buffer.from(aligned))).toBe(true);
            expect(readBack(file, 65536, 65536).equals(Buffer.from(unaligned))).toBe(true);
            const back = sharedView(131072, 0);
            expect(await f.read(back, 0)).toBe(131072);
            expect(Buffer.from(back).equals(Buffer.concat([Buffer.from(aligned), Buffer.from(unaligned)]))).toBe(true);
            const backUnaligned = sharedView(4096, 7);
            expect(await f.read(backUnaligned, 65536)).toBe(4096);
            expect(Buffer.from(backUnaligned).equals(Buffer.from(unaligned.subarray(0, 4096)))).toBe(true);
            // The raw native forms take them too (they cannot be detached).
            const rawFd = native.openSync(file, C.O_RDONLY, 0);
            try {
              const raw = sharedView(4096, 0);
              expect(await native.preadv2(rawFd, [raw], 0, 0)).toBe(4096);
              expect(Buffer.from(raw).equals(Buffer.from(aligned.subarray(0, 4096)))).toBe(true);
            } finally {
              native.closeSync(rawFd);
            }
          } finally {
            await f.close();
          }
        });

        it('caller memory aligned for O_DIRECT goes through a copy, with the same bytes on disk and back', async () => {
          const file = path.join(dir, `caller-${engine}`);
          const f = await open(file, { create: true, truncate: true, engine });
          try {
            const ab = new ArrayBuffer(65536 + 4096);
            const skip = (4096 - native.addressModulo(new Uint8Array(ab), 4096)) % 4096;
            const data = fill(new Uint8Array(ab, skip, 65536), 8);
            expect(await f.write(data, 0)).toEqual({ bytesWritten: 65536, path: 'direct' });
            expect(readBack(file, 0, 65536).equals(Buffer.from(data))).toBe(true);
            const into = new Uint8Array(new ArrayBuffer(65536 + 4096), skip, 65536);
            expect(await f.read(into, 0)).toBe(65536);
            expect(Buffer.from(into).equals(Buffer.from(data))).toBe(true);
            // Several caller chunks: gathered into one owned buffer.
            const chunks = [fill(new Uint8Array(4096), 9), fill(new Uint8Array(8192), 10)];
            await f.writev(chunks, 0);
            expect(readBack(file, 0, 12288).equals(Buffer.concat(chunks.map((c) => Buffer.from(c))))).toBe(true);
          } finally {
            await f.close();
          }
        });
      });
    }

    it('a kept subarray of a registered buffer keeps its slot: new registered buffers never overlap it', async () => {
      const f = await open(path.join(dir, 'registered'), { create: true, truncate: true, engine: 'uring' });
      try {
        let kept: Uint8Array;
        {
          const whole = registeredBuffer(8192);
          expect(whole.buffer.byteLength).toBe(8192); // the slot only, not the 16 MiB region
          kept = whole.subarray(4096);
        }
        fill(kept, 11);
        const snapshot = Buffer.from(kept);
        // Run the region round more than once: if the slot were reused, a new buffer
        // would overlap `kept` (and zero it on acquire).
        const others: Buffer[] = [];
        for (let i = 0; i < 6000; i++) {
          const b = registeredBuffer(4096);
          others.push(b);
          if (i % 1000 === 0) {
            await f.write(b, 0);
            for (const o of others.splice(0)) releaseBuffer(o);
            await new Promise((r) => setImmediate(r)); // released slots come back after finalizers
          }
        }
        expect(Buffer.from(kept).equals(snapshot)).toBe(true);
        expect(native.isOwned(kept)).toBe(true);
        // releaseBuffer detaches every view of the slot, kept subarrays included.
        const r = registeredBuffer(4096);
        const view = r.subarray(100);
        releaseBuffer(r);
        expect(view.byteLength).toBe(0);
        await expect(f.write(view, 0)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      } finally {
        await f.close();
      }
    });

    it('two copies of the module on one thread both do I/O on the shared ring (engine auto and uring)', async () => {
      vi.resetModules();
      const a = await import('../lib/index');
      vi.resetModules();
      const b = await import('../lib/index');
      expect(a.open).not.toBe(b.open); // really two module instances
      for (const engine of ['auto', 'uring'] as const) {
        const fa = await a.open(path.join(dir, `copy-a-${engine}`), { create: true, truncate: true, engine });
        const fb = await b.open(path.join(dir, `copy-b-${engine}`), { create: true, truncate: true, engine });
        try {
          expect(fa.engine).toBe(fb.engine);
          const da = fill(a.alignedBuffer(8192), 12);
          const db = fill(b.alignedBuffer(8192), 13);
          await Promise.all([fa.write(da, 0), fb.write(db, 0), fa.write(db, 8192), fb.write(da, 8192)]);
          expect(readBack(path.join(dir, `copy-a-${engine}`), 0, 16384).equals(Buffer.concat([da, db]))).toBe(true);
          expect(readBack(path.join(dir, `copy-b-${engine}`), 0, 16384).equals(Buffer.concat([db, da]))).toBe(true);
        } finally {
          await fa.close();
          await fb.close();
        }
      }
    });

    it('a worker that exits with io_uring reads in flight tears its ring down without harm (teardown waits, then frees)', async () => {
      const file = path.join(dir, 'worker-exit');
      const f = await open(file, { create: true, truncate: true, engine: 'uring' });
      await f.write(fill(alignedBuffer(8 << 20), 16), 0);
      await f.close();
      const { Worker } = await import('node:worker_threads');
      const code = `
        const o = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
        (async () => {
          const f = await o.open(${JSON.stringify(file)}, { engine: 'uring' });
          for (let i = 0; i < 64; i++) f.read(o.alignedBuffer(1 << 20), (i % 8) << 20).catch(() => {});
          await new Promise((r) => setImmediate(r));
          process.exit(0); // ends this worker thread with the reads in flight
        })();
      `;
      for (let round = 0; round < 3; round++) {
        const w = new Worker(code, { eval: true });
        const exitCode = await new Promise<number>((resolve) => w.once('exit', resolve));
        expect(exitCode).toBe(0);
      }
      // This thread's engine is untouched, and the file holds what was written.
      const g = await open(file, { engine: 'uring' });
      try {
        const back = alignedBuffer(1 << 20);
        expect(await g.read(back, 0)).toBe(1 << 20);
        expect(back.equals(fill(alignedBuffer(8 << 20), 16).subarray(0, 1 << 20))).toBe(true);
      } finally {
        await g.close();
      }
    });

    it('a submit error that never clears rejects the queued requests (bounded), and their I/O never happens', async () => {
      const { uringEngine } = await import('../lib/engines/uring');
      const engine = uringEngine();
      const file = path.join(dir, 'submit-error');
      const fd = native.openSync(file, C.O_RDWR | C.O_CREAT | C.O_TRUNC, 0o644);
      const real = native.uringSubmit;
      try {
        (native as { uringSubmit: () => number }).uringSubmit = () => {
          throw native.errnoError(16, 'io_uring_enter'); // EBUSY, for ever
        };
        const started = Date.now();
        const data = fill(alignedBuffer(4096), 14);
        await expect(engine.writev(fd, [data], 0, 0)).rejects.toMatchObject({ code: 'ERR_URING_SUBMIT' });
        expect(Date.now() - started).toBeLessThan(20_000);
        (native as { uringSubmit: () => number }).uringSubmit = real;
        // The ring works again, and the cancelled write (now a NOP) wrote nothing.
        const next = fill(alignedBuffer(4096), 15);
        expect(await engine.writev(fd, [next], 4096, 0)).toBe(4096);
        const back = readBack(file, 0, 8192);
        expect(back.subarray(0, 4096).equals(Buffer.alloc(4096))).toBe(true);
        expect(back.subarray(4096).equals(next)).toBe(true);
      } finally {
        (native as { uringSubmit: () => number }).uringSubmit = real;
        native.closeSync(fd);
      }
    }, 30_000);
  });
}

describe('scratch sweep and shutdown refuse what this process did not make', () => {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const needsRoot = !isRoot && !requireLoop();

  function forgeStaleDir(name: string): string {
    const dir = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), `odirect-scratch-${name}-`));
    fs.chmodSync(dir, 0o755);
    // A marker naming a pid that does not exist: stale by the sweep's rule.
    const marker = { tool: 'odirect-scratch', pid: 4194304 + 7, startTime: null, kind: 'ext4', image: path.join(dir, 'image.img'), loop: '' };
    fs.writeFileSync(path.join(dir, 'odirect-scratch.json'), JSON.stringify(marker));
    return dir;
  }

  it.skipIf(needsRoot)('a stale-looking dir owned by another uid, a symlink, or a group-writable dir is left alone; our own private one is swept', () => {
    if (!isRoot) throw new Error('needs root to chown a dir to another uid (CI=true forbids skipping)');
    const foreign = forgeStaleDir('foreign');
    fs.chownSync(foreign, 65534, 65534);
    const writable = forgeStaleDir('groupwritable');
    fs.chmodSync(writable, 0o775);
    const target = forgeStaleDir('target');
    const link = path.join(path.dirname(target), `odirect-scratch-link-${process.pid}`);
    fs.symlinkSync(target, link);
    const ours = forgeStaleDir('ours');
    try {
      expect(isPrivateOwnedDir(foreign)).toBe(false);
      expect(isPrivateOwnedDir(link)).toBe(false);
      expect(isPrivateOwnedDir(writable)).toBe(false);
      const removed = sweepStaleScratch();
      expect(fs.existsSync(path.join(foreign, 'odirect-scratch.json'))).toBe(true);
      expect(fs.existsSync(path.join(writable, 'odirect-scratch.json'))).toBe(true);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
      expect(removed).not.toContain(`rm -r ${link}`);
      // The positive control: the sweep does run, on a private dir of ours.
      expect(removed).toContain(`rm -r ${ours}`);
      expect(fs.existsSync(ours)).toBe(false);
    } finally {
      for (const d of [foreign, writable, target, ours]) fs.rmSync(d, { recursive: true, force: true });
      fs.rmSync(link, { force: true });
    }
  });

  it('shutdownScratchFs refuses a real loop-mounted scratch filesystem made by another process (global setup)', async () => {
    const env = scratchEnv();
    if (!env.available || !env.ext4) {
      if (requireLoop()) throw new Error(`no ext4 scratch filesystem: ${env.reason}`);
      return;
    }
    const mountpoint = env.ext4;
    const mount = readMounts().find((m) => m.mountPoint === mountpoint);
    expect(mount).toBeDefined();
    const forged: ScratchFs = {
      kind: 'ext4',
      dir: path.dirname(mountpoint),
      image: path.join(path.dirname(mountpoint), 'image.img'),
      loop: mount!.source,
      mountpoint,
    };
    await expect(shutdownScratchFs(forged)).rejects.toMatchObject({ code: 'ERR_NOT_OUR_FILESYSTEM' });
    // Still alive: a write and fsync there work.
    const probeFile = path.join(mountpoint, `alive-${process.pid}`);
    fs.writeFileSync(probeFile, 'x');
    fs.rmSync(probeFile);
  });
});
