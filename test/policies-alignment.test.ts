/**
 * Alignment policy on real loop-mounted ext4 and XFS, both engines: unaligned offsets, lengths
 * and memory are bounced or read-modify-written so that the file always equals an in-memory
 * model; concurrent sub-block writes to one block lose nothing; strict mode refuses with the
 * rule's code and leaves the file alone; the alignments used are the file's own (statx).
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlignmentError, DirectFile, alignedBuffer, open } from '../lib/index';
import { native } from '../lib/native';
import { ENGINES } from './helpers/engines';
import { prng } from './helpers/random';
import { readBackDirect } from './helpers/read-back';
import { alignedCopy, firstDiff, unalignedCopy, writeKnown } from './helpers/files';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const FILE_MAX = 1 << 20; // the model file never grows past 1 MiB
const OPS = 2000;
const MAX_WRITE = 24 * 1024;

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `alignment policy on ${fsName}`, (mnt) => {
    let dir: string;
    beforeAll(() => {
      dir = uniqueDir(mnt, `policies-alignment-${fsName}`);
    });

    for (const engine of ENGINES) {
      describe(`engine ${engine}`, () => {
        const opened: DirectFile[] = [];
        /** Opens a fresh file; `content` is written (with node:fs) before the open, so the handle knows its size. */
        const openFile = async (name: string, opts: Parameters<typeof open>[1] = {}, content?: Uint8Array) => {
          const p = path.join(dir, `${engine}-${name}`);
          if (content) writeKnown(p, content);
          const f = await open(p, { create: true, engine, ...opts });
          opened.push(f);
          return f;
        };
        afterAll(async () => {
          for (const f of opened) await f.close().catch(() => undefined);
        });

        it("uses the file's own alignments from statx (dio_mem_align / dio_offset_align)", async () => {
          const f = await openFile('caps');
          const st = native.statxSync(f.path);
          expect(st.dioMemAlign).toBeGreaterThan(0);
          expect(st.dioOffsetAlign).toBeGreaterThan(0);
          expect(f.capabilities.direct.supported).toBe(true);
          expect(f.capabilities.direct.memAlign).toBe(st.dioMemAlign);
          expect(f.capabilities.direct.offsetAlign).toBe(st.dioOffsetAlign);
          expect(f.capabilities.direct.readOffsetAlign).toBe(st.dioReadOffsetAlign || st.dioOffsetAlign);
          expect(f.engine).toBe(engine);
          expect(f.direct).toBe(true);

          // A write aligned to exactly what statx says (not more) goes straight through:
          // no bounce and no read-modify-write.
          const a = st.dioOffsetAlign;
          const data = alignedCopy(prng(7).bytes(a));
          const before = { ...f.stats };
          const r = await f.write(data, a * 3);
          expect(r).toEqual({ bytesWritten: a, path: 'direct' });
          expect(f.stats.direct).toBe(before.direct + 1);
          expect(f.stats.bounced).toBe(before.bounced);
          expect(f.stats.readModifyWrite).toBe(before.readModifyWrite);
          const back = readBackDirect(f.path);
          expect(back.length).toBe(a * 4);
          expect(firstDiff(back.subarray(a * 3), data)).toBe(-1);
          expect(back.subarray(0, a * 3).every((b) => b === 0)).toBe(true);
        });

        it(`${OPS} random unaligned writes and reads match an in-memory model`, async () => {
          const seed = 0x5eed + (fsName === 'xfs' ? 1 : 0) + (engine === 'uring' ? 2 : 0);
          const rnd = prng(seed);
          const f = await openFile('model');
          const model = Buffer.alloc(FILE_MAX);
          let modelSize = 0;
          let writes = 0;
          let unalignedPastEof = 0;
          let reads = 0;
          const log: string[] = [];
          for (let op = 0; op < OPS; op++) {
            const kind = rnd.int(10);
            if (kind < 7 || modelSize === 0) {
              // Offsets biased to straddle block edges and the current end of file.
              const pick = rnd.int(4);
              let pos =
                pick === 0
                  ? rnd.int(FILE_MAX - 1)
                  : pick === 1
                    ? Math.max(0, Math.min(FILE_MAX - 1, modelSize - rnd.int(5000) + rnd.int(5000)))
                    : Math.min(FILE_MAX - 1, rnd.int(FILE_MAX >> 12) * 4096 + (rnd.int(2) ? -1 : 1) * rnd.int(600));
              pos = Math.max(0, pos);
              const len = 1 + rnd.int(Math.min(MAX_WRITE, FILE_MAX - pos));
              const data = rnd.bytes(len);
              // Memory: mostly unaligned (skew 1..4095), sometimes 512- or 4096-aligned.
              const memPick = rnd.int(8);
              const view = memPick === 0 ? alignedCopy(data) : memPick === 1 ? unalignedCopy(data, 512) : unalignedCopy(data, 1 + rnd.int(4095));
              log.push(`w ${pos} ${len}`);
              const r = await f.write(view, pos);
              expect(r.bytesWritten, `op ${op}: write ${pos}+${len}`).toBe(len);
              // Direct, unless its last 512-byte block lies past EOF: then through the page cache
              // (no block-sized overshoot of the size, as ext4 does for unaligned extending writes).
              const unaligned = pos % 512 !== 0 || len % 512 !== 0;
              const lastBlockEnd = Math.ceil((pos + len) / 512) * 512;
              const pastEof = unaligned && lastBlockEnd > modelSize;
              expect(r.path, `op ${op}: write ${pos}+${len} at size ${modelSize}`).toBe(pastEof ? 'buffered' : 'direct');
              if (pastEof) unalignedPastEof++;
              data.copy(model, pos);
              modelSize = Math.max(modelSize, pos + len);
              writes++;
            } else {
              const pos = rnd.int(modelSize + 100);
              const len = 1 + rnd.int(MAX_WRITE);
              const into = rnd.int(3) === 0 ? alignedBuffer(len) : unalignedCopy(Buffer.alloc(len), 1 + rnd.int(4095));
              log.push(`r ${pos} ${len}`);
              const n = await f.read(into, pos);
              const expectN = Math.max(0, Math.min(len, modelSize - pos));
              expect(n, `op ${op}: read ${pos}+${len} (size ${modelSize})`).toBe(expectN);
              const diff = firstDiff(into.subarray(0, n), model.subarray(pos, pos + n));
              expect(diff, `op ${op}: read ${pos}+${len} differs at +${diff}; last ops: ${log.slice(-5).join(', ')}`).toBe(-1);
              reads++;
            }
            expect(f.size).toBe(modelSize);
          }
          expect(writes).toBeGreaterThan(OPS / 2);
          expect(reads).toBeGreaterThan(OPS / 10);

          // The kernel's view, without the DirectFile: size and every byte.
          const back = readBackDirect(f.path);
          expect(back.length).toBe(modelSize);
          expect(native.statxSync(f.path).size).toBe(modelSize);
          const diff = firstDiff(back, model.subarray(0, modelSize));
          expect(diff, `file differs from the model at byte ${diff}`).toBe(-1);
          expect(f.stats.bounced).toBeGreaterThan(0);
          expect(f.stats.readModifyWrite).toBeGreaterThan(0);
          expect(f.stats.bufferedFallback).toBe(unalignedPastEof);
          // Bounce, read-modify-write and the buffered writes past EOF (written back and dropped) leave nothing cached.
          expect(await f.residentPages(0, modelSize)).toBe(0);
        });

        it('concurrent batches of unaligned writes to disjoint byte ranges match the model', async () => {
          const rnd = prng(0xc0c0 + (fsName === 'xfs' ? 1 : 0) + (engine === 'uring' ? 2 : 0));
          const f = await openFile('model-concurrent');
          const model = Buffer.alloc(FILE_MAX);
          let modelSize = 0;
          const BATCHES = 250;
          for (let b = 0; b < BATCHES; b++) {
            const ranges: Array<[number, number]> = [];
            for (let tries = 0; tries < 20 && ranges.length < 6; tries++) {
              // Near the end of file half of the time, so extending and tail-block writes race.
              const near = rnd.int(2) === 0;
              const pos = near ? Math.max(0, Math.min(FILE_MAX - 2, modelSize - 6000 + rnd.int(12000))) : rnd.int(FILE_MAX - 1);
              const len = 1 + rnd.int(Math.min(9000, FILE_MAX - pos));
              if (ranges.some(([p, l]) => pos < p + l && p < pos + len)) continue;
              ranges.push([pos, len]);
            }
            const batch = ranges.map(([pos, len]) => {
              const data = rnd.bytes(len);
              data.copy(model, pos);
              modelSize = Math.max(modelSize, pos + len);
              return f.write(rnd.int(4) === 0 ? alignedCopy(data) : unalignedCopy(data, 1 + rnd.int(4095)), pos);
            });
            const results = await Promise.all(batch);
            results.forEach((r, i) => expect(r.bytesWritten, `batch ${b} write ${i}`).toBe(ranges[i]![1]));
            const size = native.statxSync(f.path).size;
            expect(size, `batch ${b}: file size after ${JSON.stringify(ranges)}`).toBe(modelSize);
          }
          const back = readBackDirect(f.path);
          expect(back.length).toBe(modelSize);
          const diff = firstDiff(back, model.subarray(0, modelSize));
          expect(diff, `file differs from the model at byte ${diff}`).toBe(-1);
        });

        it('unaligned reads return exactly the bytes on disk, including at and past EOF', async () => {
          const content = prng(99).bytes(3 * 4096 + 777);
          const f = await openFile('reads', {}, content);
          await f.dropCache(0, 0);
          const cases: Array<[number, number]> = [
            [1, 1],
            [511, 2],
            [4095, 4098],
            [100, 3 * 4096],
            [3 * 4096 + 700, 500], // crosses EOF: short
            [content.length - 1, 1],
            [content.length, 10], // at EOF: 0
            [content.length + 5000, 10], // past EOF: 0
          ];
          for (const [pos, len] of cases) {
            const into = unalignedCopy(Buffer.alloc(len, 0xaa), 3);
            const n = await f.read(into, pos);
            const want = content.subarray(Math.min(pos, content.length), Math.min(pos + len, content.length));
            expect(n, `read ${pos}+${len}`).toBe(want.length);
            expect(firstDiff(into.subarray(0, n), want), `read ${pos}+${len}`).toBe(-1);
            // Bytes past what was read are not touched.
            expect(into.subarray(n).every((b) => b === 0xaa), `read ${pos}+${len} leaves the rest`).toBe(true);
          }
          // Reads at or past EOF return 0 without I/O; every other one bounced.
          expect(f.stats.bounced).toBeGreaterThanOrEqual(cases.length - 2);
        });

        it('64 concurrent sub-block writes into one 4 KiB block all survive (no lost update)', async () => {
          const base = prng(3).bytes(16 * 1024);
          const f = await openFile('same-block', {}, base);
          const model = Buffer.from(base);
          const block = 8192;
          const rmwBefore = f.stats.readModifyWrite;
          const writes: Promise<unknown>[] = [];
          for (let i = 0; i < 64; i++) {
            const start = block + i * 64;
            const len = 1 + i; // 1..64 bytes
            const data = Buffer.alloc(len, 0x40 + i); // a distinct byte per writer
            data.copy(model, start);
            writes.push(f.write(unalignedCopy(data, 1 + (i % 511)), start));
          }
          const results = await Promise.all(writes);
          for (const r of results) expect(r).toMatchObject({ path: 'direct' });
          expect(f.stats.readModifyWrite - rmwBefore).toBe(64);
          const back = readBackDirect(f.path);
          expect(back.length).toBe(base.length);
          const diff = firstDiff(back, model);
          expect(diff, `lost update at byte ${diff} (writer ${Math.floor((diff - block) / 64)})`).toBe(-1);
        });

        it('64 concurrent sub-block extending writes into a fresh block all survive, size = last byte', async () => {
          const f = await openFile('same-block-extending', { truncate: true });
          const model = Buffer.alloc(4096);
          const writes: Promise<unknown>[] = [];
          // Issued in a shuffled order so later bytes do not always arrive last.
          const order = Array.from({ length: 64 }, (_, i) => i);
          const rnd = prng(11);
          for (let i = order.length - 1; i > 0; i--) {
            const j = rnd.int(i + 1);
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          for (const i of order) {
            const start = i * 64 + 1;
            const len = 1 + (i % 63);
            const data = Buffer.alloc(len, 0x80 + i);
            data.copy(model, start);
            writes.push(f.write(unalignedCopy(data, 7), start));
          }
          await Promise.all(writes);
          const maxEnd = Math.max(...order.map((i) => i * 64 + 1 + 1 + (i % 63)));
          expect(f.size).toBe(maxEnd);
          const back = readBackDirect(f.path);
          expect(back.length).toBe(maxEnd);
          expect(firstDiff(back, model.subarray(0, maxEnd))).toBe(-1);
        });

        describe("alignment:'strict'", () => {
          let f: DirectFile;
          let content: Buffer;
          let memAlign: number;
          let offsetAlign: number;
          beforeAll(async () => {
            const p = path.join(dir, `${engine}-strict`);
            content = prng(5).bytes(64 * 1024);
            writeKnown(p, content);
            f = await open(p, { engine, alignment: 'strict' });
            opened.push(f);
            ({ memAlign, offsetAlign } = f.capabilities.direct);
          });

          const expectRefused = async (p: Promise<unknown>, code: string, position: number, length: number) => {
            const err = await p.then(
              () => {
                throw new Error('strict mode accepted a misaligned request');
              },
              (e: unknown) => e,
            );
            expect(err).toBeInstanceOf(AlignmentError);
            expect(err).toMatchObject({ code, position, length, path: f.path });
          };

          it('misaligned offset → ERR_ALIGNMENT_OFFSET', async () => {
            await expectRefused(f.write(alignedBuffer(4096, 4096).fill(1), offsetAlign / 2), 'ERR_ALIGNMENT_OFFSET', offsetAlign / 2, 4096);
            await expectRefused(f.write(alignedBuffer(4096, 4096).fill(1), 4097), 'ERR_ALIGNMENT_OFFSET', 4097, 4096);
          });

          it('misaligned length → ERR_ALIGNMENT_LENGTH (single and vectored)', async () => {
            await expectRefused(f.write(alignedBuffer(100).fill(2), 0), 'ERR_ALIGNMENT_LENGTH', 0, 100);
            await expectRefused(f.write(alignedBuffer(offsetAlign + 1).fill(2), 4096), 'ERR_ALIGNMENT_LENGTH', 4096, offsetAlign + 1);
            await expectRefused(
              f.writev([alignedBuffer(4096).fill(2), alignedBuffer(offsetAlign / 2).fill(2)], 8192),
              'ERR_ALIGNMENT_LENGTH',
              8192,
              4096 + offsetAlign / 2,
            );
          });

          it('misaligned memory → ERR_ALIGNMENT_MEMORY', async () => {
            const skewed = alignedBuffer(4096 + memAlign, 4096).subarray(memAlign / 2, memAlign / 2 + 4096).fill(3);
            expect(native.addressModulo(skewed, memAlign)).not.toBe(0);
            await expectRefused(f.write(skewed, 0), 'ERR_ALIGNMENT_MEMORY', 0, 4096);
            await expectRefused(f.writev([alignedBuffer(4096), skewed], 0), 'ERR_ALIGNMENT_MEMORY', 0, 8192);
          });

          it('misaligned reads are refused too', async () => {
            const ro = f.capabilities.direct.readOffsetAlign;
            await expectRefused(f.read(alignedBuffer(4096), ro / 2), 'ERR_ALIGNMENT_OFFSET', ro / 2, 4096);
            await expectRefused(f.read(alignedBuffer(ro + 1), 0), 'ERR_ALIGNMENT_LENGTH', 0, ro + 1);
            await expectRefused(f.read(unalignedCopy(Buffer.alloc(4096), 1), 0), 'ERR_ALIGNMENT_MEMORY', 0, 4096);
          });

          it('aligned requests still work, and the refused ones changed nothing', async () => {
            const back = readBackDirect(f.path);
            expect(back.length).toBe(content.length);
            expect(firstDiff(back, content)).toBe(-1);
            expect(f.stats.bytesWritten).toBe(0);
            expect(f.stats.bounced).toBe(0);
            expect(f.stats.readModifyWrite).toBe(0);
            const data = alignedCopy(prng(6).bytes(offsetAlign * 2));
            expect(await f.write(data, offsetAlign)).toEqual({ bytesWritten: offsetAlign * 2, path: 'direct' });
            const into = alignedBuffer(offsetAlign * 2);
            expect(await f.read(into, offsetAlign)).toBe(offsetAlign * 2);
            expect(firstDiff(into, data)).toBe(-1);
            const after = readBackDirect(f.path);
            content.set(data, offsetAlign);
            expect(firstDiff(after, content)).toBe(-1);
          });
        });
      });
    }
  });
}

// Issue 4: "no allocation per I/O in steady state" for bounce buffers.
describeOnFs('xfs', 'bounce buffers in steady state', (mnt) => {
  for (const engine of ENGINES) {
    it(`${engine}: after warm-up, bounced and read-modify-write I/O allocates no buffer, and every byte lands`, async () => {
      const f = await open(path.join(uniqueDir(mnt, `steady-${engine}`), 'f'), { create: true, engine });
      try {
        await f.write(alignedBuffer(1 << 20), 0);
        const model = Buffer.alloc(1 << 20);
        const rnd = prng(11);
        const round = async () => {
          for (let i = 0; i < 200; i++) {
            const len = 1 + rnd.int(8191);
            const pos = rnd.int((1 << 20) - len);
            const data = rnd.bytes(len);
            await f.write(unalignedCopy(data, 1 + rnd.int(511)), pos);
            data.copy(model, pos);
          }
        };
        await round(); // warm-up: the pool fills
        const { bouncePool } = await import('../lib/mechanisms/bounce-pool');
        const before = bouncePool.allocations;
        const bouncedBefore = f.stats.bounced + f.stats.readModifyWrite;
        await round();
        expect(f.stats.bounced + f.stats.readModifyWrite - bouncedBefore).toBe(200);
        expect(bouncePool.allocations - before).toBe(0);
        expect(firstDiff(readBackDirect(f.path), model)).toBe(-1);
      } finally {
        await f.close();
      }
    });
  }
});
