/**
 * Fallback and cache policies on real loop-mounted filesystems, both engines:
 * - ext4 data=journal reports dio alignment 0 (O_DIRECT silently buffered): odirect says direct
 *   is unsupported, writes report path 'buffered', count as bufferedFallback, read back, and do
 *   not leave their range in the page cache; fallback:'error' refuses to open.
 * - cache modes on ext4 and XFS: 'dontcache' leaves nothing cached, 'writethrough' leaves the
 *   pages cached but clean, default direct writes never touch the page cache.
 * Page-cache residency is read with mincore (DirectFile.residentPages, and the raw binding on a
 * fresh fd) and cross-checked with util-linux fincore.
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectFile, UnsupportedError, alignedBuffer, open } from '../lib/index';
import { C, native } from '../lib/native';
import { ENGINES } from './helpers/engines';
import { prng } from './helpers/random';
import { readBackDirect } from './helpers/read-back';
import { alignedCopy, fincoreBytes, firstDiff, pollUntil, residentPagesOf, unalignedCopy } from './helpers/files';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const MiB = 1 << 20;
const PAGE = native.pageSize;

describeOnFs('ext4Journal', 'fallback: ext4 data=journal (dio alignment 0) writes buffered and drops the range', (mnt) => {
  let dir: string;
  beforeAll(() => {
    dir = uniqueDir(mnt, 'policies-fallback');
  });

  for (const engine of ENGINES) {
    describe(`engine ${engine}`, () => {
      const opened: DirectFile[] = [];
      afterAll(async () => {
        for (const f of opened) await f.close().catch(() => undefined);
      });

      it('statx reports alignment 0 and capabilities.direct.supported is false', async () => {
        const f = await open(path.join(dir, `${engine}-caps.bin`), { create: true, engine });
        opened.push(f);
        const st = native.statxSync(f.path);
        expect(st.mask & C.STATX_DIOALIGN).toBeTruthy();
        expect(st.dioMemAlign).toBe(0);
        expect(st.dioOffsetAlign).toBe(0);
        expect(f.capabilities.direct.supported).toBe(false);
        expect(f.capabilities.direct.reason).toMatch(/alignment 0/);
        expect(f.direct).toBe(false);
        expect(f.engine).toBe(engine);
      });

      /** Page indexes of `p` now in the page cache (raw binding, fresh fd). */
      const residentIndexes = (p: string, size: number): number[] => {
        const pages: number[] = [];
        for (let i = 0; i < Math.ceil(size / PAGE); i++) if (residentPagesOf(p, i * PAGE, PAGE)) pages.push(i);
        return pages;
      };

      it("aligned writes report path 'buffered', count as bufferedFallback, leave no pages cached, read back", async () => {
        const f = await open(path.join(dir, `${engine}-aligned.bin`), { create: true, truncate: true, engine });
        opened.push(f);
        const a = prng(51).bytes(2 * MiB);
        const b = prng(52).bytes(8192);
        expect(await f.write(alignedCopy(a), 0)).toEqual({ bytesWritten: a.length, path: 'buffered' });
        expect(await f.writev([alignedCopy(b.subarray(0, 4096)), alignedCopy(b.subarray(4096))], 2 * MiB)).toEqual({
          bytesWritten: 8192,
          path: 'buffered',
        });
        expect(f.stats.bufferedFallback).toBe(2);
        expect(f.stats.direct).toBe(0);
        expect(f.stats.readModifyWrite).toBe(0);

        // Residency first: reading the data back (buffered here) would bring it in again.
        const size = 2 * MiB + 8192;
        const resident = await pollUntil(() => f.residentPages(0, size), (n) => n === 0, 1000);
        expect(resident, `cached pages: ${JSON.stringify(residentIndexes(f.path, size))}`).toBe(0);
        expect(residentPagesOf(f.path, 0, size)).toBe(0);
        expect(fincoreBytes(f.path)).toBe(0);

        const back = readBackDirect(f.path);
        expect(back.length).toBe(size);
        expect(firstDiff(back.subarray(0, 2 * MiB), a)).toBe(-1);
        expect(firstDiff(back.subarray(2 * MiB), b)).toBe(-1);
      });

      it('an unaligned write leaves no page of its range cached either (partial head and tail pages included)', async () => {
        const model = prng(53).bytes(64 * 1024);
        const p = path.join(dir, `${engine}-unaligned.bin`);
        const f = await open(p, { create: true, truncate: true, engine });
        opened.push(f);
        expect(await f.write(alignedCopy(model), 0)).toMatchObject({ path: 'buffered' });
        const b = prng(54).bytes(10_000);
        // [12345, 22345): partial page 3, whole page 4, partial page 5.
        expect(await f.write(unalignedCopy(b, 3), 12_345)).toEqual({ bytesWritten: b.length, path: 'buffered' });
        b.copy(model, 12_345);
        expect(f.stats.bufferedFallback).toBe(2);
        expect(f.stats.readModifyWrite).toBe(0);
        const resident = await pollUntil(() => f.residentPages(0, model.length), (n) => n === 0, 1000);
        expect(resident, `cached pages: ${JSON.stringify(residentIndexes(p, model.length))}`).toBe(0);
        const back = readBackDirect(p);
        expect(firstDiff(back, model)).toBe(-1);
        const into = unalignedCopy(Buffer.alloc(5000), 9);
        expect(await f.read(into, 12_000)).toBe(5000);
        expect(firstDiff(into, model.subarray(12_000, 17_000))).toBe(-1);
      });

      it("fallback:'error' → open rejects with UnsupportedError ERR_DIRECT_UNSUPPORTED", async () => {
        const p = path.join(dir, `${engine}-strict-fallback.bin`);
        const err = await open(p, { create: true, engine, fallback: 'error' }).then(
          (f) => {
            opened.push(f);
            throw new Error('open succeeded on a filesystem without direct I/O');
          },
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(UnsupportedError);
        expect(err).toMatchObject({ code: 'ERR_DIRECT_UNSUPPORTED', path: p });
      });
    });
  }
});

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `cache modes on ${fsName}`, (mnt) => {
    let dir: string;
    beforeAll(() => {
      dir = uniqueDir(mnt, `policies-cache-${fsName}`);
    });

    for (const engine of ENGINES) {
      describe(`engine ${engine}`, () => {
        const SIZE = 8 * MiB;
        const PAGES = SIZE / PAGE;
        const opened: DirectFile[] = [];
        const fresh = async (name: string) => {
          const f = await open(path.join(dir, `${engine}-${name}`), { create: true, truncate: true, engine });
          opened.push(f);
          return f;
        };
        afterAll(async () => {
          for (const f of opened) await f.close().catch(() => undefined);
        });

        it('default direct writes leave 0 pages cached', async () => {
          const f = await fresh('direct.bin');
          const data = alignedCopy(prng(61).bytes(SIZE));
          expect(await f.write(data, 0)).toEqual({ bytesWritten: SIZE, path: 'direct' });
          expect(await f.residentPages(0, SIZE)).toBe(0);
          expect(fincoreBytes(f.path)).toBe(0);
          expect(firstDiff(readBackDirect(f.path), data)).toBe(-1);
        });

        it("cache:'dontcache' of 8 MiB: path 'buffered', then no page of it cached", async () => {
          const f = await fresh('dontcache.bin');
          expect(f.capabilities.dontcache, 'RWF_DONTCACHE probed as available (Linux 6.14+)').toBe(true);
          const data = alignedCopy(prng(62).bytes(SIZE));
          expect(await f.write(data, 0, { cache: 'dontcache' })).toEqual({ bytesWritten: SIZE, path: 'buffered' });
          expect(f.stats.buffered).toBe(1);
          expect(f.stats.direct).toBe(0);
          const right = await f.residentPages(0, SIZE);
          // RWF_DONTCACHE prunes at writeback completion, which is asynchronous: poll up to 1 s.
          const t0 = Date.now();
          const settled = await pollUntil(() => f.residentPages(0, SIZE), (n) => n === 0, 1000);
          console.info(
            `[${fsName}/${engine}] dontcache: ${right}/${PAGES} pages resident right after the write, ${settled} after ${Date.now() - t0} ms`,
          );
          expect(settled).toBe(0);
          expect(fincoreBytes(f.path)).toBe(0);
          const back = readBackDirect(f.path);
          expect(back.length).toBe(SIZE);
          expect(firstDiff(back, data)).toBe(-1);
        });

        it("cache:'writethrough' of 8 MiB: path 'buffered', pages stay cached and are clean", async () => {
          const f = await fresh('writethrough.bin');
          const data = alignedCopy(prng(63).bytes(SIZE));
          expect(await f.write(data, 0, { cache: 'writethrough' })).toEqual({ bytesWritten: SIZE, path: 'buffered' });
          expect(f.stats.buffered).toBe(1);
          const resident = await f.residentPages(0, SIZE);
          expect(resident).toBeGreaterThanOrEqual(Math.floor(PAGES * 0.9));
          expect(fincoreBytes(f.path) ?? 0).toBeGreaterThanOrEqual(Math.floor(SIZE * 0.9));
          // Clean: POSIX_FADV_DONTNEED drops clean pages at once but only starts writeback of
          // dirty ones (they stay cached). Written back already, everything goes.
          const fd = native.openSync(f.path, C.O_RDONLY, 0);
          try {
            native.fadviseSync(fd, 0, SIZE, C.POSIX_FADV_DONTNEED);
            expect(native.residentPagesSync(fd, 0, SIZE), 'pages left after DONTNEED: they were dirty').toBe(0);
          } finally {
            native.closeSync(fd);
          }
          const back = readBackDirect(f.path);
          expect(back.length).toBe(SIZE);
          expect(firstDiff(back, data)).toBe(-1);
        });

        it("direct:false with fallback:'error': writes are buffered as asked, not refused as a failed fallback", async () => {
          const p = path.join(dir, `${engine}-buffered-by-request.bin`);
          const g = await open(p, { create: true, truncate: true, engine, direct: false, fallback: 'error' });
          opened.push(g);
          expect(g.direct).toBe(false);
          const data = prng(66).bytes(64 * 1024);
          expect(await g.write(alignedCopy(data), 0)).toEqual({ bytesWritten: data.length, path: 'buffered' });
          expect(firstDiff(readBackDirect(p), data)).toBe(-1);
        });

        it('cache modes with unaligned data and position still write every byte', async () => {
          const f = await fresh('mixed.bin');
          const model = Buffer.alloc(3 * MiB);
          const a = prng(64).bytes(MiB + 333);
          const b = prng(65).bytes(700_001);
          expect(await f.write(unalignedCopy(a, 5), 1001, { cache: 'dontcache' })).toMatchObject({ path: 'buffered' });
          a.copy(model, 1001);
          expect(await f.write(unalignedCopy(b, 11), 2 * MiB + 17, { cache: 'writethrough' })).toMatchObject({ path: 'buffered' });
          b.copy(model, 2 * MiB + 17);
          const size = 2 * MiB + 17 + b.length;
          expect(f.size).toBe(size);
          const back = readBackDirect(f.path);
          expect(back.length).toBe(size);
          expect(firstDiff(back, model.subarray(0, size))).toBe(-1);
          const into = alignedBuffer(4096);
          expect(await f.read(into, 1000)).toBe(4096);
          expect(firstDiff(into, model.subarray(1000, 1000 + 4096))).toBe(-1);
        });
      });
    }
  });
}
