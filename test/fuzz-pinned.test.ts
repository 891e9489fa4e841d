// What the fuzzer (test/fuzz.test.ts) found, pinned: deterministic (or nearly: bounded races
// run many rounds) versions of the failures it hits by chance, so each shows up on every run.
// The ones that were routing decisions are also rows of the route table (test/unit/route.test.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { alignedBuffer, open, type OdirectError } from '../lib/index';
import { ENGINES } from './helpers/engines';
import { firstDiff } from './helpers/files';
import { readDirect } from './helpers/read-back';
import { sharedRangeLockCount } from '../lib/mechanisms/range-lock';
import { describeOnFs, uniqueDir } from './helpers/scratch';
import { FILESYSTEMS, KiB, MiB, PAGE, SECTOR } from './fuzz/config';
import { bufferAt } from './fuzz/generators';

function errorText(r: PromiseSettledResult<unknown>): string {
  if (r.status !== 'rejected') return 'ok';
  const e = r.reason as { code?: unknown; message?: unknown };
  return `${String(e?.code)}: ${String(e?.message)}`;
}

for (const fsName of FILESYSTEMS) {
  describeOnFs(fsName, `fuzz findings on ${fsName}, pinned`, (mnt) => {
    let dir: string;
    beforeAll(() => {
      dir = uniqueDir(mnt, 'fuzz-pinned');
    });

    for (const engine of ENGINES) {
      it(`${engine}: cached and direct writes to different bytes of one page, issued together, all land and none fails`, async () => {
        // A cache-mode write goes through the page cache without the range lock: a direct write
        // to another sector of the same page then collides with it in the kernel ("Page cache
        // invalidation failure on direct I/O" / "Direct I/O collision with buffered writes!"),
        // which answers EIO and can lose either write.
        const file = path.join(dir, `page-share-${engine}.bin`);
        const f = await open(file, { create: true, truncate: true, engine });
        try {
          const SIZE = 16 * PAGE;
          await f.write(alignedBuffer(SIZE), 0);
          const model = Buffer.alloc(SIZE);
          for (let round = 0; round < 200; round++) {
            const v = (round % 250) + 1;
            const cache = round % 2 ? 'writethrough' : 'dontcache';
            const ops: Array<Promise<unknown>> = [];
            for (let pg = 0; pg < 16; pg++) {
              ops.push(f.write(Buffer.alloc(100, v), pg * PAGE, { cache }));
              ops.push(f.write(alignedBuffer(SECTOR).fill(v), (pg + 1) * PAGE - SECTOR));
              model.fill(v, pg * PAGE, pg * PAGE + 100);
              model.fill(v, (pg + 1) * PAGE - SECTOR, (pg + 1) * PAGE);
            }
            const failed = (await Promise.allSettled(ops)).filter((r) => r.status === 'rejected').map(errorText);
            expect(failed.join('; '), `round ${round} (${cache}): calls that failed`).toBe('');
            const onDisk = readDirect(file, 0, SIZE);
            const diff = firstDiff(onDisk, model);
            expect(diff, `round ${round} (${cache}): first byte that differs from what was written`).toBe(-1);
          }
        } finally {
          await f.close().catch(() => undefined);
        }
      });

      it(`${engine}: writev of a sector-sized chunk at a misaligned address and a 7-byte chunk writes all 1031 bytes`, async () => {
        // The alignment check stops at the first chunk's misaligned address and takes the whole
        // request for a memory-only problem: bounced as it is, 1031 bytes at 0 (kernel: EINVAL).
        const file = path.join(dir, `writev-mixed-${engine}.bin`);
        const f = await open(file, { create: true, truncate: true, engine });
        try {
          const first = bufferAt(1024, 1).fill(0x11);
          const second = Buffer.alloc(7, 0x22);
          const r = await f.writev([first, second], 0).catch((e: unknown) => `${String((e as OdirectError).code)}: ${String((e as Error).message)}`);
          // 1031 bytes into an empty file: the last sector lies past EOF, so it goes through the page cache.
          expect(r).toEqual({ bytesWritten: 1031, path: 'buffered' });
          const back = readDirect(file, 0, PAGE);
          expect(back.equals(Buffer.concat([first, second]))).toBe(true);
          expect(fs.statSync(file).size).toBe(1031);
        } finally {
          await f.close().catch(() => undefined);
        }
      });

      it(`${engine}: a read racing an unaligned write into the partial last block never sees past EOF`, async () => {
        // The read-modify-write writes the whole 512-byte block, then trims the file back: in
        // between the file is longer than it is, and a concurrent read (or statx) sees that.
        const file = path.join(dir, `tail-race-${engine}.bin`);
        const f = await open(file, { create: true, truncate: true, engine });
        try {
          await f.write(alignedBuffer(2 * PAGE).fill(1), 0);
          await f.truncate(PAGE + 100);
          const into = alignedBuffer(PAGE);
          const seen = new Map<string, number>();
          for (let round = 0; round < 150; round++) {
            let done = false;
            const w = f.write(Buffer.from('0123456789'), PAGE + 90).then(() => (done = true));
            for (let i = 0; i < 50 && !done; i++) {
              const n = await f.read(into, PAGE);
              const size = fs.statSync(file).size;
              const key = `read ${n} bytes, size ${size}`;
              seen.set(key, (seen.get(key) ?? 0) + 1);
            }
            await w;
          }
          const total = [...seen.values()].reduce((a, b) => a + b, 0);
          expect(JSON.stringify(Object.fromEntries(seen))).toBe(JSON.stringify({ [`read 100 bytes, size ${PAGE + 100}`]: total }));
          expect(fs.statSync(file).size).toBe(PAGE + 100);
        } finally {
          await f.close().catch(() => undefined);
        }
      });

      it(`${engine}: two handles: a direct write into the old EOF page and an extending buffered write, issued together, both land and neither fails`, async () => {
        // Found with ODIRECT_FUZZ_SEED=0xa80213ad (ext4/uring, batch 264). A buffered write past
        // EOF also reads, zeroes past EOF and dirties the page holding the old EOF (traced on
        // 6.18: mm_filemap_add_to_page_cache + writeback_dirty_folio for that page). A direct
        // write to that page through another handle, in flight meanwhile, then finds it dirty
        // when it completes: "Page cache invalidation failure on direct I/O", -EIO set in the
        // mapping's wb_err, reported by the next sync_file_range on any fd (the buffered write's
        // writeback), and the page, read before the direct write landed, can overwrite it later.
        const file = path.join(dir, `two-handles-eof-${engine}.bin`);
        const locksBefore = sharedRangeLockCount();
        const a = await open(file, { create: true, truncate: true, engine });
        const b = await open(file, { engine, alignment: 'strict' });
        try {
          const BASE = 40 * PAGE;
          const SIZE = BASE + PAGE / 2; // EOF in the middle of page 40
          const FAR = 640 * PAGE;
          for (let round = 0; round < 60; round++) {
            const v = (round % 250) + 1;
            await a.truncate(0);
            await a.write(alignedBuffer(BASE + PAGE).fill(0xee), 0);
            await a.truncate(SIZE);
            const direct = alignedBuffer(SECTOR).fill(v);
            const tail = Buffer.alloc(345, v);
            const results = await Promise.allSettled([b.write(direct, BASE + SECTOR), a.write(tail, FAR + round)]);
            const failed = results.filter((r) => r.status === 'rejected').map(errorText);
            expect(failed.join('; '), `round ${round}: calls that failed`).toBe('');
            const size = FAR + round + tail.byteLength;
            expect(fs.statSync(file).size).toBe(size);
            const model = Buffer.alloc(size);
            model.fill(0xee, 0, SIZE);
            direct.copy(model, BASE + SECTOR);
            tail.copy(model, FAR + round);
            // Write back whatever the page cache still holds dirty, then compare what is on disk.
            await a.sync();
            const diff = firstDiff(readDirect(file, 0, size), model);
            expect(diff, `round ${round}: first byte that differs from what was written`).toBe(-1);
          }
        } finally {
          await b.close().catch(() => undefined);
          await a.close().catch(() => undefined);
        }
        // Both handles shared one lock, and closing both let go of it.
        expect(sharedRangeLockCount()).toBe(locksBefore);
      });

      if (fsName === 'xfs') {
        it(`${engine}: after an extending atomic write and a cached write past it, a read past EOF returns the bytes up to EOF`, async () => {
          // Observed on Linux 6.18: a direct read reaching past the block that holds EOF fails with
          // EIO (the kernel logs "Direct I/O collision with buffered writes!"), from any fd, until
          // the file changes again. Reads never need to go past that block.
          const file = path.join(dir, `atomic-eof-${engine}.bin`);
          const f = await open(file, { create: true, truncate: true, engine });
          try {
            const A = 128 * KiB;
            const model = Buffer.alloc(A + 64 * KiB + 585 + 465);
            const base = alignedBuffer(A).fill(1);
            await f.write(base, 0);
            base.copy(model, 0);
            const atomic = alignedBuffer(64 * KiB).fill(2);
            await f.writeAtomic(atomic, A);
            atomic.copy(model, A);
            const tail = Buffer.alloc(465, 3);
            expect(await f.write(tail, A + 64 * KiB + 585, { cache: 'writethrough' })).toEqual({ bytesWritten: 465, path: 'buffered' });
            tail.copy(model, A + 64 * KiB + 585);
            expect(fs.statSync(file).size).toBe(model.byteLength);
            for (const [position, length, misalign] of [
              [A, 128 * KiB, 0],
              [0, 1 * MiB, 0],
              [A + 64 * KiB, 64 * KiB, 0],
              [A + 1000, 100 * KiB, 3],
            ] as const) {
              const into = bufferAt(length, misalign);
              const expected = model.subarray(position, Math.min(position + length, model.byteLength));
              const n = await f.read(into, position).catch((e: unknown) => `${String((e as OdirectError).code)}: ${String((e as Error).message)}`);
              expect(n, `read(${length} bytes at ${position})`).toBe(expected.byteLength);
              expect(into.subarray(0, expected.byteLength).equals(expected)).toBe(true);
            }
          } finally {
            await f.close().catch(() => undefined);
          }
        });
      }
    }
  });
}

