// Issue 3: the io_uring engine under load, at its limits and at exit.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { uringEngine } from '../lib/engines/uring';
import { threadPoolEngine } from '../lib/engines/threadpool';
import { alignedBuffer, open, registeredBuffer, releaseBuffer } from '../lib/index';
import { C, native } from '../lib/native';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const root = path.join(__dirname, '..');
const distIndex = path.join(root, 'dist', 'index.js');

/** Runs a script in a fresh node with the compiled package; returns status, signal and output. */
function runNode(script: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function readBack(file: string, position: number, length: number): Buffer {
  const fd = native.openSync(file, C.O_RDONLY | C.O_DIRECT, 0);
  try {
    const into = alignedBuffer(length);
    return into.subarray(0, native.preadv2Sync(fd, [into], position, 0));
  } finally {
    native.closeSync(fd);
  }
}

function block(seed: number, tag: number): Buffer {
  const b = alignedBuffer(4096);
  b.writeUInt32LE(seed, 0);
  b.writeUInt32LE(tag, 4);
  for (let i = 8; i < 4096; i++) b[i] = (seed * 13 + tag * 7 + i) & 0xff;
  return b;
}

/** Tiny seeded PRNG (mulberry32): the same run every time. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `io_uring engine on ${fsName}`, (mnt) => {
    let dir: string;
    beforeAll(() => {
      dir = uniqueDir(mnt, 'uring');
    });

    it('10,000 random 4 KiB direct writes with 256 in flight all read back', async () => {
      const blocks = 4096;
      const f = await open(path.join(dir, 'random'), { create: true, engine: 'uring' });
      try {
        await f.allocate(0, blocks * 4096);
        const rand = prng(42);
        const model = new Int32Array(blocks).fill(-1);
        const busy = new Set<number>();
        let issued = 0;
        let maxInFlight = 0;
        const worker = async () => {
          while (issued < 10_000) {
            const tag = issued++;
            let b = Math.floor(rand() * blocks);
            while (busy.has(b)) b = (b + 1) % blocks; // two writes to one block in flight have no order
            busy.add(b);
            maxInFlight = Math.max(maxInFlight, uringEngine().inFlight);
            const r = await f.write(block(b, tag), b * 4096);
            expect(r).toEqual({ bytesWritten: 4096, path: 'direct' });
            model[b] = tag;
            busy.delete(b);
          }
        };
        await Promise.all(Array.from({ length: 256 }, worker));
        expect(maxInFlight).toBeGreaterThan(100);
        const all = alignedBuffer(blocks * 4096);
        expect(await f.read(all, 0)).toBe(all.length);
        let checked = 0;
        for (let b = 0; b < blocks; b++) {
          const got = all.subarray(b * 4096, (b + 1) * 4096);
          if (model[b] === -1) expect(got.every((x) => x === 0)).toBe(true);
          else expect(got.equals(block(b, model[b]!))).toBe(true);
          checked++;
        }
        expect(checked).toBe(blocks);
        expect(f.stats.direct).toBe(10_000);
      } finally {
        await f.close();
      }
    });

    it('more operations in flight than the ring has entries all complete', async () => {
      const n = 3000; // ring: 256 SQEs, 512 CQEs
      const f = await open(path.join(dir, 'overflow'), { create: true, engine: 'uring' });
      try {
        await f.allocate(0, n * 4096);
        const writes = Array.from({ length: n }, (_, i) => f.write(block(i, 1), i * 4096));
        // Once the writes have passed the policies (a few microtask hops), the
        // ring holds what it can and the backlog the rest.
        await new Promise((resolve) => setImmediate(resolve));
        expect(uringEngine().inFlight).toBeGreaterThan(0);
        expect(uringEngine().queued).toBeGreaterThan(0);
        const results = await Promise.all(writes);
        expect(results.every((r) => r.bytesWritten === 4096)).toBe(true);
        const all = alignedBuffer(n * 4096);
        expect(await f.read(all, 0)).toBe(all.length);
        for (let i = 0; i < n; i++) expect(all.subarray(i * 4096, (i + 1) * 4096).equals(block(i, 1))).toBe(true);
        expect(uringEngine().inFlight).toBe(0);
      } finally {
        await f.close();
      }
    });

    it('errors are the same typed errors as on the thread-pool engine', async () => {
      const file = path.join(dir, 'errors');
      fs.writeFileSync(file, Buffer.alloc(8192, 1));
      const fd = native.openSync(file, C.O_RDWR | C.O_DIRECT, 0);
      const unaligned = alignedBuffer(4096).subarray(1, 4001);
      const cases: Array<[string, (e: typeof threadPoolEngine | ReturnType<typeof uringEngine>) => Promise<unknown>]> = [
        ['misaligned O_DIRECT', (e) => e.writev(fd, [unaligned], 1, 0)],
        ['unknown RWF flag', (e) => e.writev(fd, [alignedBuffer(4096)], 0, 0x40000000)],
        ['read-only fd written', (e) => e.writev(roFd, [alignedBuffer(4096)], 0, 0)],
        ['closed fd', (e) => e.writev(closedFd, [alignedBuffer(4096)], 0, 0)],
        ['fsync on closed fd', (e) => e.fsync(closedFd, true)],
      ];
      const roFd = native.openSync(file, C.O_RDONLY, 0);
      const closedFd = native.openSync(file, C.O_RDONLY, 0);
      native.closeSync(closedFd);
      try {
        for (const [name, call] of cases) {
          const a = await call(threadPoolEngine).then(() => 'resolved', (e: unknown) => e);
          const b = await call(uringEngine()).then(() => 'resolved', (e: unknown) => e);
          expect(a, name).toBeInstanceOf(Error);
          const shape = (e: unknown) => {
            const x = e as { name: string; code: string; errno: number; syscall: string; message: string };
            return { name: x.name, code: x.code, errno: x.errno, syscall: x.syscall, message: x.message };
          };
          expect(shape(b), name).toEqual(shape(a));
        }
      } finally {
        native.closeSync(fd);
        native.closeSync(roFd);
      }
      // Through the public API: EBADF after close, on both engines.
      for (const engine of ['threadpool', 'uring'] as const) {
        const f = await open(file, { engine });
        await f.close();
        await expect(f.write(alignedBuffer(4096), 0)).rejects.toMatchObject({ name: 'OdirectError', code: 'EBADF' });
      }
      expect(fs.readFileSync(file).equals(Buffer.alloc(8192, 1))).toBe(true);
    });

    it('registered buffers go out as WRITE_FIXED, but atomic writes never do', async () => {
      const file = path.join(dir, 'fixed');
      const f = await open(file, { create: true, engine: 'uring' });
      const fd = native.openSync(file, C.O_RDWR | C.O_DIRECT, 0);
      try {
        const engine = uringEngine();
        expect(engine.arena).toBeDefined();
        const data = registeredBuffer(16384);
        expect(engine.arena!.contains(data)).toBe(true);
        data.fill(0xa5);
        expect(await f.write(data, 0)).toEqual({ bytesWritten: 16384, path: 'direct' });
        const back = registeredBuffer(16384);
        expect(await f.read(back, 0)).toBe(16384);
        expect(back.equals(data)).toBe(true);
        // Asking the ring for a fixed write with RWF_ATOMIC: the kernel's answer
        // for a fixed buffer (docs/kernel-facts.md §2) proves the fixed opcode is used.
        const fixedAtomic = new Promise<number>((resolve, reject) => {
          const done = engine as unknown as { issue(s: string, p: (id: number) => boolean): Promise<number> };
          done.issue('pwritev2', (id) => native.uringPrepWritev(fd, [data], 0, C.RWF_ATOMIC, id, true, false)).then(resolve, reject);
        });
        if (f.capabilities.atomic.supported) {
          await expect(fixedAtomic).rejects.toMatchObject({ code: 'EINVAL' });
          // …while the policy sends atomic writes from registered memory as plain WRITE.
          data.fill(0x5a);
          expect(await f.writeAtomic(data, 16384)).toEqual({ bytesWritten: 16384, path: 'direct' });
          expect(readBack(file, 16384, 16384).equals(data)).toBe(true);
        } else {
          await expect(fixedAtomic).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
        }
        // A fixed request outside the registered memory is refused before the kernel.
        expect(() => native.uringPrepWritev(fd, [alignedBuffer(4096)], 0, 0, 77, true, false)).toThrow(RangeError);
        releaseBuffer(data);
        releaseBuffer(back);
      } finally {
        native.closeSync(fd);
        await f.close();
      }
    });

    it('1,000 open/close cycles leak no file descriptor', async () => {
      const file = path.join(dir, 'cycles');
      fs.writeFileSync(file, Buffer.alloc(4096));
      const f0 = await open(file, { engine: 'uring' }); // the ring exists before counting
      await f0.close();
      const before = fs.readdirSync('/proc/self/fd').length;
      for (let i = 0; i < 1000; i++) {
        const f = await open(file, { engine: 'uring' });
        await f.write(block(i, 2), 0);
        await f.close();
      }
      expect(fs.readdirSync('/proc/self/fd').length).toBe(before);
    });

    describe.skipIf(!fs.existsSync(distIndex))('lifecycle in other threads and processes', () => {
      it('a worker thread opens a file, writes, and exits cleanly', () => {
        const file = path.join(dir, 'worker');
        const script = `
          const { Worker } = require('node:worker_threads');
          const w = new Worker(\`
            const o = require(${JSON.stringify(distIndex)});
            (async () => {
              const f = await o.open(${JSON.stringify(file)}, { create: true, engine: 'uring' });
              const b = o.alignedBuffer(4096); b.fill(0x5a);
              for (let i = 0; i < 16; i++) await f.write(b, i * 4096);
              // Exit with writes still in flight: the ring waits for them.
              for (let i = 16; i < 64; i++) f.write(b, i * 4096);
              process.exit(0);
            })();
          \`, { eval: true });
          w.on('exit', (code) => { console.log('worker exit', code); });
          w.on('error', (e) => { console.error(e); process.exit(3); });
        `;
        const r = runNode(script);
        expect(r.stderr).toBe('');
        expect(r.stdout.trim()).toBe('worker exit 0');
        expect(r.status).toBe(0);
        const data = fs.readFileSync(file);
        expect(data.subarray(0, 16 * 4096).every((x) => x === 0x5a)).toBe(true);
      });

      it('a process that exits with writes in flight exits cleanly', () => {
        const file = path.join(dir, 'exit');
        const script = `
          const o = require(${JSON.stringify(distIndex)});
          (async () => {
            const f = await o.open(${JSON.stringify(file)}, { create: true, engine: 'uring' });
            await f.allocate(0, 256 * 4096);
            const b = o.alignedBuffer(4096); b.fill(0x33);
            for (let i = 0; i < 256; i++) f.write(b, i * 4096);
            setImmediate(() => process.exit(7));
          })();
        `;
        const r = runNode(script);
        expect(r.signal).toBeNull();
        expect(r.status).toBe(7);
        expect(r.stderr).toBe('');
        expect(fs.statSync(file).size).toBe(256 * 4096);
      });

      it('works with SINGLE_ISSUER|DEFER_TASKRUN (completions fetched by io_uring_get_events)', () => {
        const file = path.join(dir, 'defer');
        const script = `
          const o = require(${JSON.stringify(distIndex)});
          (async () => {
            const f = await o.open(${JSON.stringify(file)}, { create: true, engine: 'uring' });
            await f.allocate(0, 1024 * 4096);
            const ps = [];
            for (let i = 0; i < 1024; i++) { const b = o.alignedBuffer(4096); b.fill(i & 0xff); ps.push(f.write(b, i * 4096)); }
            await Promise.all(ps);
            const all = o.alignedBuffer(1024 * 4096);
            await f.read(all, 0);
            let bad = 0;
            for (let i = 0; i < 1024; i++) if (!all.subarray(i * 4096, (i + 1) * 4096).every((x) => x === (i & 0xff))) bad++;
            console.log(JSON.stringify({ defer: require(${JSON.stringify(path.join(root, 'dist', 'engines', 'uring.js'))}).uringEngine().deferTaskrun, bad }));
            await f.close();
          })();
        `;
        const r = runNode(script, { ODIRECT_URING_DEFER_TASKRUN: '1' });
        expect(r.stderr).toBe('');
        expect(JSON.parse(r.stdout)).toEqual({ defer: true, bad: 0 });
      });

      it("falls back to the thread pool when io_uring can't be set up, and says why", () => {
        const script = `
          const o = require(${JSON.stringify(distIndex)});
          (async () => {
            const caps = await o.probe(${JSON.stringify(dir)});
            const f = await o.open(${JSON.stringify(path.join(dir, 'fallback'))}, { create: true });
            let forced;
            try { await o.open(${JSON.stringify(path.join(dir, 'fallback'))}, { engine: 'uring' }); forced = 'opened'; }
            catch (e) { forced = e.name + ' ' + e.code + ' ' + e.message; }
            console.log(JSON.stringify({ ioUring: caps.ioUring, engine: f.engine, forced }));
            await f.close();
          })();
        `;
        const r = runNode(script, { ODIRECT_SIMULATE_URING_FAILURE: 'EPERM' });
        expect(r.stderr).toBe('');
        const out = JSON.parse(r.stdout) as { ioUring: { available: boolean; reason: string }; engine: string; forced: string };
        expect(out.ioUring.available).toBe(false);
        expect(out.ioUring.reason).toMatch(/EPERM/);
        expect(out.engine).toBe('threadpool');
        expect(out.forced).toMatch(/^UnsupportedError ERR_URING_UNAVAILABLE .*EPERM/);
        // ODIRECT_ENGINE forces an engine for the whole process.
        const forced = runNode(
          `const o = require(${JSON.stringify(distIndex)}); o.open(${JSON.stringify(path.join(dir, 'fallback'))}, { engine: 'uring' }).then(f => { console.log(f.engine); return f.close(); });`,
          { ODIRECT_ENGINE: 'threadpool' },
        );
        expect(forced.stdout.trim()).toBe('threadpool');
      });
    });
  });
}
