// Issue 15, node:fs habits of DirectFile: await using, fd, stat(), readv, the
// refused fs positional form, util.inspect, AbortSignal, close on collection and
// queueDepth. On ext4, XFS and tmpfs, both engines; each check asks the kernel
// (bytes read back, /proc/self/fd, fstat, statx via node:fs, /proc fdinfo).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AbortError, alignedBuffer, ArgumentError, OdirectError, open, readFile, replaceFile, writeFile } from '../lib/index';
import { existingUringEngine, uringEngine } from '../lib/engines/uring';
import { abortable } from '../lib/habits';
import { ENGINES } from './helpers/engines';
import { describeOnFs, uniqueDir } from './helpers/scratch';
import { checkPath } from '../lib/validate';

const root = path.join(__dirname, '..');

const pathKindsAccepted = (() => {
  try {
    checkPath(new URL('file:///x'));
    return true;
  } catch {
    return false;
  }
})();

function pattern(size: number, seed: number): Buffer {
  const b = alignedBuffer(size);
  for (let i = 0; i < size; i++) b[i] = (i * 13 + seed * 7 + (i >> 12)) & 0xff;
  return b;
}

/** What /proc says fd is now: the path it names, or undefined when it is not open. */
function fdTarget(fd: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

for (const fsName of ['ext4', 'xfs', 'tmpfs'] as const) {
  describeOnFs(fsName, `node:fs habits on ${fsName}`, (mnt) => {
    let dir: string;
    beforeAll(() => {
      dir = uniqueDir(mnt, 'habits');
    });

    for (const engine of ENGINES) {
      describe(`engine ${engine}`, () => {
        const file = (name: string) => path.join(dir, `${engine}-${name}`);

        it('await using closes the fd at the end of the block; fd is the kernel fd, -1 after close', async () => {
          const p = file('dispose');
          let fd = -1;
          {
            await using f = await open(p, { create: true, engine });
            fd = f.fd;
            expect(fdTarget(fd)).toBe(p);
            expect(fs.fstatSync(fd).ino).toBe(fs.statSync(p).ino);
          }
          expect(fdTarget(fd)).not.toBe(p);
          const g = await open(p, { engine });
          const gfd = g.fd;
          await g.close();
          expect(g.fd).toBe(-1);
          expect(() => fs.fstatSync(gfd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
        });

        // checkPath takes URLs and Buffers on branch issue-15-install (lib/validate.ts): this runs once both are merged.
        it.skipIf(!pathKindsAccepted)('opens file: URLs and Buffer paths', async () => {
          const p = file('url');
          const byUrl = await open(pathToFileURL(p), { create: true, engine });
          await byUrl.write(pattern(4096, 1), 0);
          await byUrl.close();
          const byBuffer = await open(Buffer.from(p), { engine });
          expect(byBuffer.path).toBe(p);
          const back = alignedBuffer(4096);
          expect(await byBuffer.read(back, 0)).toBe(4096);
          expect(back.equals(pattern(4096, 1))).toBe(true);
          await byBuffer.close();
        });

        it('stat() is statx of the open fd, matching node:fs bigint stats', async () => {
          const p = file('stat');
          await using f = await open(p, { create: true, engine });
          await f.write(pattern(8192, 2), 0);
          await f.write(pattern(4096, 3), 12288); // a hole at [8192, 12288)
          const st = await f.stat();
          const ref = fs.statSync(p, { bigint: true });
          expect(st.size).toBe(16384);
          expect(BigInt(st.size)).toBe(ref.size);
          expect(BigInt(st.blocks)).toBe(ref.blocks);
          expect(BigInt(st.blksize)).toBe(ref.blksize);
          expect(BigInt(st.mode)).toBe(ref.mode);
          expect(BigInt(st.ino)).toBe(ref.ino);
          expect(BigInt(st.dev)).toBe(ref.dev);
          expect(BigInt(st.nlink)).toBe(ref.nlink);
          expect(st.mtimeNs).toBe(ref.mtimeNs);
          expect(st.ctimeNs).toBe(ref.ctimeNs);
          expect(st.atimeNs).toBe(ref.atimeNs);
          expect(st.mtime.getTime()).toBe(ref.mtime.getTime());
          if (ref.birthtimeNs > 0n) expect(st.birthtimeNs).toBe(ref.birthtimeNs);
          expect(st.isFile()).toBe(true);
          expect(st.isBlockDevice()).toBe(false);
          // A later write moves mtime forward in the kernel; stat() sees it.
          await new Promise((r) => setTimeout(r, 20));
          await f.write(pattern(4096, 4), 0);
          const st2 = await f.stat();
          expect(st2.mtimeNs).toBe(fs.statSync(p, { bigint: true }).mtimeNs);
          expect(st2.mtimeNs > st.mtimeNs).toBe(true);
        });

        it('readv fills the buffers in order from the file, short at end of file', async () => {
          const p = file('readv');
          const data = pattern(3 * 4096 + 100, 5);
          fs.writeFileSync(p, data);
          await using f = await open(p, { engine });
          const a = alignedBuffer(4096);
          const b = Buffer.alloc(1000); // caller memory, misaligned length
          const c = alignedBuffer(8192);
          const n = await f.readv([a, b, c], 0);
          expect(n).toBe(data.length);
          expect(Buffer.concat([a, b, c]).subarray(0, n).equals(data)).toBe(true);
          expect(c.subarray(n - 5096).every((x) => x === 0)).toBe(true); // nothing past EOF
          const d = Buffer.alloc(100);
          const e = Buffer.alloc(100);
          expect(await f.readv([d, e], 4000)).toBe(200);
          expect(Buffer.concat([d, e]).equals(data.subarray(4000, 4200))).toBe(true);
        });

        it("refuses node:fs's read(buf, offset, length, position) form before any I/O", async () => {
          const p = file('positional');
          fs.writeFileSync(p, pattern(8192, 6));
          await using f = await open(p, { engine });
          const buf = alignedBuffer(4096);
          const reads = f.stats.reads;
          const refused = f.read(buf, 0, 4096 as never, 4096 as never);
          await expect(refused).rejects.toBeInstanceOf(ArgumentError);
          await expect(refused).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('read(into, position, options?)') });
          await expect(f.read(buf, 0, 4096 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
          expect(buf.every((x) => x === 0)).toBe(true);
          expect(f.stats.reads).toBe(reads);
          const before = fs.readFileSync(p);
          await expect(f.write(buf, 0, 4096 as never, 0 as never)).rejects.toMatchObject({
            code: 'ERR_INVALID_ARG_TYPE',
            message: expect.stringContaining('write(data, position, options?)'),
          });
          await expect(f.readv([buf], 0, 4096 as never)).rejects.toBeInstanceOf(ArgumentError);
          expect(fs.readFileSync(p).equals(before)).toBe(true);
        });

        it('util.inspect shows path, fd, engine, direct, size, closed and no internals', async () => {
          const p = file('inspect');
          const f = await open(p, { create: true, engine });
          await f.write(pattern(4096, 7), 0);
          const shown = inspect(f, { breakLength: Infinity });
          expect(shown).toBe(`DirectFile { path: '${p}', fd: ${f.fd}, engine: '${engine}', direct: ${f.direct}, size: 4096, closed: false }`);
          await f.close();
          expect(inspect(f, { breakLength: Infinity })).toBe(`DirectFile { path: '${p}', fd: -1, engine: '${engine}', direct: ${f.direct}, size: 4096, closed: true }`);
        });

        describe('AbortSignal', () => {
          it('an aborted signal rejects open, read and write with AbortError before any I/O', async () => {
            const p = file('aborted');
            const signal = AbortSignal.abort(new Error('stop'));
            const refusedOpen = open(p, { create: true, engine, signal });
            await expect(refusedOpen).rejects.toBeInstanceOf(AbortError);
            await expect(refusedOpen).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
            expect(fs.existsSync(p)).toBe(false); // open(2) never ran
            fs.writeFileSync(p, pattern(8192, 8));
            await using f = await open(p, { engine });
            const buf = alignedBuffer(4096);
            const reads = f.stats.reads;
            await expect(f.read(buf, 0, { signal })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
            await expect(f.readv([buf], 0, { signal })).rejects.toMatchObject({ name: 'AbortError' });
            expect(buf.every((x) => x === 0)).toBe(true);
            expect(f.stats.reads).toBe(reads);
            await expect(f.write(pattern(4096, 9), 0, { signal })).rejects.toBeInstanceOf(AbortError);
            await expect(f.write(pattern(4096, 9), 8192, { signal })).rejects.toBeInstanceOf(AbortError);
            expect(fs.readFileSync(p).equals(pattern(8192, 8))).toBe(true);
            expect(f.stats.bytesWritten).toBe(0);
            await expect(f.read(buf, 0, { signal: 'no' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
          });

          it('aborted while queued behind other writes: dropped, the file keeps its bytes and size', async () => {
            const p = file('queued');
            await using f = await open(p, { create: true, engine });
            const big = pattern(4 << 20, 10);
            const ac = new AbortController();
            // Extending writes run one at a time: the second waits for the first.
            const first = f.write(big, 0);
            const second = f.write(pattern(4096, 11), 4 << 20, { signal: ac.signal });
            ac.abort();
            await expect(first).resolves.toMatchObject({ bytesWritten: 4 << 20 });
            await expect(second).rejects.toMatchObject({ name: 'AbortError' });
            expect(fs.statSync(p).size).toBe(4 << 20);
            expect(f.size).toBe(4 << 20);
            expect(fs.readFileSync(p).equals(big)).toBe(true);
          });

          it('aborted in flight: settles only after the kernel is done; the file holds old or new bytes per sector', async () => {
            const p = file('inflight');
            const old = pattern(8 << 20, 12);
            fs.writeFileSync(p, old);
            await using f = await open(p, { engine });
            const fresh = pattern(8 << 20, 13);
            const ac = new AbortController();
            const pending = f.write(fresh, 0, { signal: ac.signal });
            await new Promise((r) => setImmediate(r)); // issued: on the ring or on a pool thread
            ac.abort();
            const outcome = await pending.then(
              (r) => ({ ok: true as const, r }),
              (err: unknown) => ({ ok: false as const, err }),
            );
            if (engine === 'uring') expect(existingUringEngine()?.inFlight ?? 0).toBe(0); // its CQE was reaped
            const now = fs.readFileSync(p);
            if (outcome.ok) {
              expect(outcome.r.bytesWritten).toBe(fresh.length); // completed before the abort was seen
              expect(now.equals(fresh)).toBe(true);
            } else {
              expect(outcome.err).toBeInstanceOf(AbortError);
              for (let at = 0; at < now.length; at += 512) {
                const s = now.subarray(at, at + 512);
                expect(s.equals(old.subarray(at, at + 512)) || s.equals(fresh.subarray(at, at + 512))).toBe(true);
              }
            }
            expect(now.length).toBe(old.length);
            // The handle is fine afterwards, and `fresh` (owned memory) is intact.
            expect(fresh.equals(pattern(8 << 20, 13))).toBe(true);
            await f.write(fresh.subarray(0, 4096), 0);
            expect(fs.readFileSync(p).subarray(0, 4096).equals(fresh.subarray(0, 4096))).toBe(true);
          });

          it('a read aborted in flight rejects with AbortError or delivers the bytes', async () => {
            const p = file('readabort');
            const data = pattern(8 << 20, 14);
            fs.writeFileSync(p, data);
            await using f = await open(p, { engine });
            const into = alignedBuffer(8 << 20);
            const ac = new AbortController();
            const pending = f.read(into, 0, { signal: ac.signal });
            await new Promise((r) => setImmediate(r));
            ac.abort();
            const n = await pending.catch((err: unknown) => err);
            if (typeof n === 'number') expect(into.equals(data)).toBe(true);
            else expect(n).toBeInstanceOf(AbortError);
            if (engine === 'uring') expect(existingUringEngine()?.inFlight ?? 0).toBe(0);
          });
        });
      });
    }

    it('readFile, writeFile and replaceFile with an aborted signal reject with an OdirectError AbortError, file untouched', async () => {
      const p = path.join(dir, 'whole');
      fs.writeFileSync(p, 'before');
      const signal = AbortSignal.abort();
      for (const call of [() => readFile(p, { signal }), () => writeFile(p, 'after', { signal }), () => replaceFile(p, 'after', { signal })]) {
        const err = await call().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AbortError);
        expect(err).toBeInstanceOf(OdirectError);
        expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
      }
      expect(fs.readFileSync(p, 'utf8')).toBe('before');
      expect(fs.readdirSync(dir).filter((n) => n.startsWith('whole'))).toEqual(['whole']); // no temp file left
    });

    it('a handle collected while open closes its fd with a warning (200 handles, child with --expose-gc)', () => {
      const sub = uniqueDir(dir, 'gc');
      for (const engine of ENGINES) {
        const r = spawnSync(process.execPath, ['--expose-gc', path.join(root, 'test', 'fixtures', 'unclosed-handles.cjs'), 'unclosed', sub, '200', engine], {
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(r.status, r.stderr).toBe(0);
        const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; opened: number; after: number; left: string[]; droppedBefore: number; droppedAfter: number; locksBefore: number; locksAfter: number; warnings: Array<{ code: string; message: string }> };
        // /proc/self/fd: each handle's file open twice, its O_DIRECT fd and the buffered one its cache
        // write opened (tmpfs too: it accepts O_DIRECT at open since Linux 6.6, then buffers).
        const perHandle = 2;
        expect(out.droppedBefore).toBe(200 * perHandle);
        expect(out.opened - out.before).toBeGreaterThanOrEqual(200 * perHandle);
        expect(out.droppedAfter).toBe(0);
        expect(out.locksBefore).toBe(200); // one shared range lock per file, let go on collection too
        expect(out.locksAfter).toBe(0);
        // Nothing of odirect's is left (node may open /dev/null for itself meanwhile).
        expect(out.left.filter((l) => !/:(\/dev\/null|\?)$/.test(l)), engine).toEqual([]);
        const unclosed = out.warnings.filter((w) => w.code === 'ODIRECT_UNCLOSED_FILE');
        expect(unclosed.length).toBe(200 * perHandle);
        expect(unclosed[0]!.message).toMatch(/Closing file descriptor \d+ on garbage collection/);
      }
    });
  });
}

describeOnFs('xfs', 'queueDepth sizes the io_uring ring', (mnt) => {
  it('the first open on a thread with queueDepth 8 makes an 8-entry SQ (fdinfo SqMask 0x7)', () => {
    const dir = uniqueDir(mnt, 'qd');
    for (const [depth, mask] of [
      [8, 7],
      [100, 127],
    ] as const) {
      const r = spawnSync(process.execPath, [path.join(root, 'test', 'fixtures', 'unclosed-handles.cjs'), 'queueDepth', dir, String(depth)], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.trim())).toEqual({ sqMask: mask });
    }
  });
});

describe('AbortSignal on an io_uring request that is really waiting in the kernel', () => {
  it.skipIf(!ENGINES.includes('uring'))('an abort whose cancel waited in the backlog never cancels the request that got its id meanwhile; backlog listeners do not pile up', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-stale-cancel-'));
    try {
      const r = spawnSync(process.execPath, [path.join(root, 'test', 'fixtures', 'stale-cancel.cjs'), dir], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim());
      expect(out.before).toEqual({ inFlight: 4, queued: 1 }); // the ring (CQ 4) full, W waiting
      expect(out.r).toEqual({ ok: 1 }); // R completed before its cancel could go
      expect(out.w).toEqual({ ok: 1 }); // W, on R's old id, was not cancelled
      expect(out.wByte).toBe(2);
      expect(out.inFlightAfter).toBe(0);
      expect(out.queuedWithSignal).toBe(8); // 4 on the ring, 8 waited in the backlog
      expect(out.listenersLeft).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!ENGINES.includes('uring'))('a read blocked on an empty FIFO is cancelled (IORING_OP_ASYNC_CANCEL): ECANCELED, then AbortError', async () => {
    const fifo = path.join(os.tmpdir(), `odirect-habits-fifo-${process.pid}`);
    fs.rmSync(fifo, { force: true });
    execFileSync('mkfifo', [fifo]);
    const fd = fs.openSync(fifo, fs.constants.O_RDWR); // O_RDWR: opening does not wait for a writer
    try {
      const engine = uringEngine();
      const ac = new AbortController();
      const buf = alignedBuffer(4096);
      const inFlightBefore = engine.inFlight;
      const pending = abortable(() => 'read', ac.signal, () => engine.readv(fd, [buf], 0, 0, ac.signal));
      await new Promise((r) => setTimeout(r, 50));
      expect(engine.inFlight).toBe(inFlightBefore + 1); // on the ring, waiting for data that never comes
      ac.abort();
      const err = await pending.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AbortError);
      expect((err as Error).message).toMatch(/ended with ECANCELED/); // the kernel's CQE for the read
      expect(engine.inFlight).toBe(inFlightBefore);
      // The pipe is intact: a byte written now is read by the next read, not by the cancelled one.
      fs.writeSync(fd, Buffer.from([42]));
      expect(await engine.readv(fd, [buf], 0, 0)).toBe(1);
      expect(buf[0]).toBe(42);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(fifo, { force: true });
    }
  });
});

describe('every error is an OdirectError', () => {
  it('AbortError is one', () => {
    const e = new AbortError('x');
    expect(e).toBeInstanceOf(OdirectError);
    expect(e.name).toBe('AbortError');
    expect(e.code).toBe('ABORT_ERR');
  });
});
