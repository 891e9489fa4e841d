/**
 * Ordering policy on real loop-mounted ext4 and XFS, both engines: a failed extending write
 * (ENOSPC) leaves the size and the allocation where they were; truncate and close wait for the
 * I/O issued before them and go before the I/O issued after; extending writes issued all at
 * once are serialised so the file ends up with every byte; a sub-block write in the tail block
 * cannot cut back a concurrent extending write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectFile, OdirectError, alignedBuffer, open } from '../lib/index';
import { native } from '../lib/native';
import { ENGINES } from './helpers/engines';
import { prng } from './helpers/random';
import { readBackDirect } from './helpers/read-back';
import { alignedCopy, dataExtents, firstDiff, unalignedCopy, writeKnown } from './helpers/files';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const MiB = 1 << 20;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

describeOnFs('tiny', 'ordering: an extending write that hits ENOSPC leaves size and blocks where they were (16 MiB ext4)', (mnt) => {
  for (const engine of ENGINES) {
    describe(`engine ${engine}`, () => {
      let dir: string;
      let filler: DirectFile;
      let f: DirectFile;
      let victim: string;
      let known: Buffer;

      beforeAll(async () => {
        dir = uniqueDir(mnt, `policies-ordering-enospc-${engine}`);
        victim = path.join(dir, 'victim.bin');
        known = prng(1).bytes(8192 + 300); // a partial last block, so RMW reads it
        writeKnown(victim, known);
        f = await open(victim, { engine });
        filler = await open(path.join(dir, 'filler.bin'), { create: true, engine });
        // Fill the filesystem with fallocate: big steps first, then smaller, until ENOSPC at 4 KiB.
        let pos = 0;
        let step = 4 * MiB;
        let enospc = 0;
        for (let i = 0; i < 400 && step >= 4096; i++) {
          try {
            await filler.allocate(pos, step);
            pos += step;
          } catch (err) {
            expect(err).toBeInstanceOf(OdirectError);
            expect((err as OdirectError).code).toBe('ENOSPC');
            enospc++;
            step /= 2;
          }
        }
        expect(enospc, 'the filler reached ENOSPC').toBeGreaterThan(0);
        expect(step).toBeLessThan(4096);
      }, 60_000);

      afterAll(async () => {
        await f?.close().catch(() => undefined);
        await filler?.close().catch(() => undefined);
        // Give the space back at once: the tiny filesystem is shared with other test files.
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
      });

      /**
       * Size, allocation and bytes as before. `metadataSlack` (512-byte sectors) allows for an ext4
       * extent-tree block that a fragmented partial allocation grows and truncate does not shrink;
       * the data extents (FIEMAP) must still be exactly the old ones.
       */
      const expectUnchanged = (what: string, before: { size: number; blocks: number }, metadataSlack = 0) => {
        const st = native.statxSync(victim);
        expect(st.size, `${what}: size`).toBe(before.size);
        expect(st.blocks, `${what}: statx blocks`).toBeLessThanOrEqual(before.blocks + metadataSlack);
        const map = dataExtents(victim);
        expect(map.blocks, `${what}: mapped data blocks ${JSON.stringify(map.extents)}`).toBeLessThanOrEqual(
          Math.ceil(before.size / map.blockSize),
        );
        for (const e of map.extents) expect(e.end * map.blockSize, `${what}: extent past EOF`).toBeLessThan(before.size);
        expect(f.size, `${what}: the handle's size`).toBe(before.size);
        const back = readBackDirect(victim);
        expect(firstDiff(back, known), `${what}: content`).toBe(-1);
      };

      const snapshot = () => {
        const st = native.statxSync(victim);
        return { size: st.size, blocks: st.blocks };
      };

      it('the filesystem is full: even a 4 KiB allocation fails with ENOSPC', async () => {
        // (statfs still shows ext4's internal reserve, s_resv_clusters, which nobody may use.)
        const err = await rejection(filler.allocate(filler.size, 4096));
        expect(err).toBeInstanceOf(OdirectError);
        expect(err).toMatchObject({ code: 'ENOSPC', errno: 28, syscall: 'fallocate' });
      });

      it('aligned direct extending write of 4 MiB → ENOSPC, size and blocks unchanged', async () => {
        const before = snapshot();
        const err = await rejection(f.write(alignedBuffer(4 * MiB).fill(0x11), 3 * 4096));
        expect(err).toBeInstanceOf(OdirectError);
        expect(err).toMatchObject({ code: 'ENOSPC', errno: 28 });
        expectUnchanged('aligned', before);
      });

      it('unaligned (read-modify-write) extending write of 3 MiB → ENOSPC, size and blocks unchanged', async () => {
        const before = snapshot();
        const data = unalignedCopy(Buffer.alloc(3 * MiB + 123, 0x22), 5);
        // Starts inside the partial last block, past EOF: the old bytes of that block are read and
        // rewritten as they were (a write overlapping old bytes may leave its part inside EOF).
        const err = await rejection(f.write(data, known.length + 50));
        expect(err).toBeInstanceOf(OdirectError);
        expect((err as OdirectError).code).toBe('ENOSPC');
        expectUnchanged('unaligned', before);
      });

      it("cache:'dontcache' extending write of 4 MiB → ENOSPC, size and blocks unchanged", async () => {
        const before = snapshot();
        const err = await rejection(f.write(alignedBuffer(4 * MiB).fill(0x33), known.length, { cache: 'dontcache' }));
        expect(err).toBeInstanceOf(OdirectError);
        expect((err as OdirectError).code).toBe('ENOSPC');
        expectUnchanged('dontcache', before);
      });

      it('with 1 MiB free, a 4 MiB extending write fails part-way and is cut back to the old size', async () => {
        // Free 1 MiB at the end of the filler.
        await filler.truncate(filler.size - MiB);
        const freeBefore = native.statfsSync(mnt).bfree;
        expect(freeBefore * native.statfsSync(mnt).bsize).toBeGreaterThanOrEqual(MiB - 64 * 1024);
        const before = snapshot();
        const err = await rejection(f.write(alignedBuffer(4 * MiB).fill(0x44), 3 * 4096));
        expect(err).toBeInstanceOf(OdirectError);
        expect((err as OdirectError).code).toBe('ENOSPC');
        expectUnchanged('partial', before, 8);
        // The blocks the partial write took were given back.
        expect(native.statfsSync(mnt).bfree).toBeGreaterThanOrEqual(freeBefore - 16);
        // And a write that fits still works afterwards.
        const ok = alignedCopy(prng(2).bytes(64 * 1024));
        expect(await f.write(ok, 3 * 4096)).toEqual({ bytesWritten: ok.length, path: 'direct' });
        const back = readBackDirect(victim);
        expect(back.length).toBe(3 * 4096 + ok.length);
        expect(firstDiff(back.subarray(0, known.length), known)).toBe(-1);
        expect(firstDiff(back.subarray(3 * 4096), ok)).toBe(-1);
      });
    });
  }
});

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `ordering policy on ${fsName}`, (mnt) => {
    let dir: string;
    beforeAll(() => {
      dir = uniqueDir(mnt, `policies-ordering-${fsName}`);
    });

    for (const engine of ENGINES) {
      describe(`engine ${engine}`, () => {
        const opened: DirectFile[] = [];
        const openFresh = async (name: string) => {
          const f = await open(path.join(dir, `${engine}-${name}`), { create: true, truncate: true, engine });
          opened.push(f);
          return f;
        };
        afterAll(async () => {
          for (const f of opened) await f.close().catch(() => undefined);
        });

        it('truncate(0) with 64 writes in flight: lands after them and before the writes issued after it', async () => {
          const f = await openFresh('truncate');
          const events: string[] = [];
          const first = Array.from({ length: 64 }, (_, i) =>
            f.write(alignedBuffer(4096).fill(1 + i), i * 4096).then((r) => {
              events.push('w1');
              return r;
            }),
          );
          const truncated = f.truncate(0).then(() => events.push('t'));
          const second = Array.from({ length: 16 }, (_, j) =>
            f.write(alignedBuffer(4096).fill(0xc0 + j), j * 4096).then((r) => {
              events.push('w2');
              return r;
            }),
          );
          // And an unaligned one past the end, through read-modify-write.
          second.push(
            f.write(unalignedCopy(Buffer.alloc(50, 0xee), 9), 16 * 4096 + 100).then((r) => {
              events.push('w2');
              return r;
            }),
          );
          const settled = await Promise.allSettled([...first, truncated, ...second]);
          for (const s of settled) expect(s.status).toBe('fulfilled');
          // Completion order: every first-batch write, then the truncate, then the second batch.
          expect(events.join(' ')).toBe([...Array(64).fill('w1'), 't', ...Array(17).fill('w2')].join(' '));

          const size = 16 * 4096 + 150;
          expect(f.size).toBe(size);
          const back = readBackDirect(f.path);
          expect(back.length, 'size: the first batch beyond the second is gone').toBe(size);
          for (let j = 0; j < 16; j++) {
            const blk = back.subarray(j * 4096, (j + 1) * 4096);
            expect(blk.every((b) => b === 0xc0 + j), `block ${j} holds the write issued after truncate`).toBe(true);
          }
          expect(back.subarray(16 * 4096, 16 * 4096 + 100).every((b) => b === 0)).toBe(true);
          expect(back.subarray(16 * 4096 + 100).every((b) => b === 0xee)).toBe(true);
          // No block of the first batch survives past the new end (nothing mapped out there).
          // Checked after close: the unaligned write went through the page cache, and XFS keeps
          // speculative preallocation past EOF for an open file until it is released.
          await f.close();
          const map = dataExtents(f.path);
          for (const e of map.extents) expect((e.end + 1) * map.blockSize).toBeLessThanOrEqual(17 * 4096);
        });

        it('close() waits for writes in flight; they all succeed and a new handle reads them', async () => {
          const f = await openFresh('close');
          const model = Buffer.alloc(40 * 4096);
          const rnd = prng(21);
          const writes: Promise<unknown>[] = [];
          for (let i = 0; i < 32; i++) {
            const data = rnd.bytes(4096);
            data.copy(model, i * 4096);
            writes.push(f.write(alignedCopy(data), i * 4096));
          }
          for (let i = 0; i < 8; i++) {
            const pos = 32 * 4096 + i * 4096 + 17; // unaligned and extending
            const data = rnd.bytes(1000);
            data.copy(model, pos);
            writes.push(f.write(unalignedCopy(data, 3), pos));
          }
          const closing = f.close();
          expect(f.closed).toBe(true);
          const late = await rejection(f.write(alignedBuffer(4096), 0));
          expect(late).toBeInstanceOf(OdirectError);
          expect((late as OdirectError).code).toBe('EBADF');
          const results = await Promise.allSettled(writes);
          results.forEach((r, i) => expect(r.status, `write ${i}`).toBe('fulfilled'));
          await closing;
          const size = 32 * 4096 + 7 * 4096 + 17 + 1000;
          const g = await open(f.path, { engine, readOnly: true });
          try {
            const into = alignedBuffer(model.length);
            expect(await g.read(into, 0)).toBe(size);
            expect(firstDiff(into.subarray(0, size), model.subarray(0, size))).toBe(-1);
          } finally {
            await g.close();
          }
          expect(native.statxSync(f.path).size).toBe(size);
        });

        it('200 extending 4 KiB appends issued at once are serialised: size 200×4096, every byte right', async () => {
          const f = await openFresh('appends');
          const block = (i: number) => {
            const b = alignedBuffer(4096).fill((i * 7 + 1) & 0xff);
            b.writeUInt32LE(i, 0);
            return b;
          };
          const results = await Promise.all(Array.from({ length: 200 }, (_, i) => f.write(block(i), i * 4096)));
          for (const r of results) expect(r).toEqual({ bytesWritten: 4096, path: 'direct' });
          expect(f.size).toBe(200 * 4096);
          expect(native.statxSync(f.path).size).toBe(200 * 4096);
          expect(f.stats.direct).toBe(200);
          const back = readBackDirect(f.path);
          expect(back.length).toBe(200 * 4096);
          for (let i = 0; i < 200; i++) {
            expect(firstDiff(back.subarray(i * 4096, (i + 1) * 4096), block(i)), `block ${i}`).toBe(-1);
          }
        });

        it('200 unaligned 1000-byte appends issued at once (read-modify-write of shared blocks): every byte right', async () => {
          const f = await openFresh('appends-unaligned');
          const model = Buffer.alloc(200 * 1000);
          for (let i = 0; i < 200; i++) model.fill((i * 13 + 5) & 0xff, i * 1000, (i + 1) * 1000);
          const results = await Promise.all(
            Array.from({ length: 200 }, (_, i) => f.write(unalignedCopy(model.subarray(i * 1000, (i + 1) * 1000), 1 + i), i * 1000)),
          );
          for (const r of results) expect(r.bytesWritten).toBe(1000);
          expect(f.size).toBe(200 * 1000);
          const back = readBackDirect(f.path);
          expect(back.length).toBe(200 * 1000);
          const diff = firstDiff(back, model);
          expect(diff, `byte ${diff} (append ${Math.floor(diff / 1000)})`).toBe(-1);
        });

        it('a sub-block write inside the last block does not cut back an extending write racing it', async () => {
          const f = await openFresh('tail-race');
          const head = prng(8).bytes(1000);
          await f.write(unalignedCopy(head, 1), 0);
          const failures: string[] = [];
          for (let round = 0; round < 30; round++) {
            await f.truncate(1000);
            const ext = alignedBuffer(4096).fill(0x50 + (round % 16));
            const small = Buffer.alloc(10, 0xa0 + (round % 16));
            // Both issued together: the extending aligned write past the tail block, and a
            // non-extending 10-byte write in the tail block (a read-modify-write of block 0).
            await Promise.all([f.write(ext, 4096), f.write(unalignedCopy(small, 3), 900)]);
            const size = native.statxSync(f.path).size;
            const back = readBackDirect(f.path);
            const want = Buffer.alloc(8192);
            head.copy(want, 0);
            small.copy(want, 900);
            ext.copy(want, 4096);
            if (size !== 8192 || firstDiff(back, want) !== -1) {
              failures.push(`round ${round}: size ${size}, first difference at ${firstDiff(back, want)}`);
            }
            if (f.size !== 8192) failures.push(`round ${round}: handle size ${f.size}`);
          }
          expect(failures, failures.join('; ')).toEqual([]);
        });
      });
    }
  });
}
