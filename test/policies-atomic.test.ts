/**
 * Atomic-write policy on real loop-mounted XFS (reflink: software RWF_ATOMIC) and ext4 (no
 * atomics without hardware), both engines: each rule's error comes before any I/O and leaves the
 * file as it was; every valid size from 4 KiB up to unitMax (capped at 1 MiB) is written and
 * read back; ext4 says EOPNOTSUPP; a write cut short by RLIMIT_FSIZE is an error, not a success,
 * and the file goes back to its old size.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtomicWriteError, DirectFile, alignedBuffer, open, type WriteOptions } from '../lib/index';
import { native } from '../lib/native';
import { ENGINES } from './helpers/engines';
import { prng } from './helpers/random';
import { readBackDirect } from './helpers/read-back';
import { alignedCopy, dataExtents, firstDiff, unalignedCopy, writeKnown } from './helpers/files';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const MiB = 1 << 20;
const FILE_SIZE = 2 * MiB;
const DIST = path.resolve(__dirname, '..', 'dist', 'index.js');
const CHILD = path.join(__dirname, 'fixtures', 'policies-atomic-fsize-child.cjs');

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

describeOnFs('xfs', 'atomic writes on xfs (software atomics through reflink)', (mnt) => {
  let dir: string;
  beforeAll(() => {
    dir = uniqueDir(mnt, 'policies-atomic-xfs');
  });

  for (const engine of ENGINES) {
    describe(`engine ${engine}`, () => {
      let f: DirectFile;
      let buffered: DirectFile;
      let model: Buffer;
      let file: string;
      let unitMax: number;

      beforeAll(async () => {
        file = path.join(dir, `${engine}-atomic.bin`);
        model = prng(17).bytes(FILE_SIZE);
        writeKnown(file, model);
        f = await open(file, { engine });
        buffered = await open(file, { engine, direct: false });
        unitMax = f.capabilities.atomic.unitMax;
      });

      afterAll(async () => {
        await f?.close().catch(() => undefined);
        await buffered?.close().catch(() => undefined);
      });

      it('capabilities.atomic are the statx values of the file', () => {
        const st = native.statxSync(file);
        expect(st.writeAtomic).toBe(1);
        expect(f.capabilities.atomic).toMatchObject({
          supported: true,
          unitMin: st.atomicWriteUnitMin,
          unitMax: st.atomicWriteUnitMax,
          segmentsMax: st.atomicWriteSegmentsMax,
        });
        expect(f.capabilities.atomic.unitMin).toBe(4096);
        expect(f.capabilities.atomic.unitMax).toBeGreaterThanOrEqual(64 * 1024);
        expect(buffered.direct).toBe(false);
      });

      describe('each rule refused before any I/O, file unchanged', () => {
        const mtimes: number[] = [];
        beforeAll(() => {
          mtimes.push(fs.statSync(file).mtimeMs);
        });

        const refused = (
          name: string,
          code: string,
          call: () => Promise<unknown>,
          where?: { position: number; length: number },
        ) =>
          it(`${name} → ${code}`, async () => {
            const stats = { ...f.stats };
            const err = await rejection(call());
            expect(err).toBeInstanceOf(AtomicWriteError);
            expect((err as AtomicWriteError).code).toBe(code);
            if (where) expect(err).toMatchObject(where);
            // No I/O: the counters did not move, and the kernel's copy is untouched.
            expect(f.stats).toEqual(stats);
            const back = readBackDirect(file);
            expect(back.length).toBe(FILE_SIZE);
            expect(firstDiff(back, model)).toBe(-1);
            expect(fs.statSync(file).mtimeMs).toBe(mtimes[0]);
          });

        refused('3 × 4 KiB: not a power of two', 'ERR_ATOMIC_NOT_POWER_OF_TWO', () => f.writeAtomic(alignedBuffer(3 * 4096).fill(1), 0), {
          position: 0,
          length: 3 * 4096,
        });
        refused('1000 bytes: not a power of two', 'ERR_ATOMIC_NOT_POWER_OF_TWO', () => f.writeAtomic(alignedBuffer(1000).fill(1), 0));
        refused('2 KiB: below unitMin', 'ERR_ATOMIC_TOO_SMALL', () => f.writeAtomic(alignedBuffer(2048).fill(2), 0));
        refused('512 bytes: below unitMin', 'ERR_ATOMIC_TOO_SMALL', () => f.write(alignedBuffer(512).fill(2), 0, { atomic: true }));
        refused('2 × unitMax: above unitMax', 'ERR_ATOMIC_TOO_LARGE', () => f.writeAtomic(alignedBuffer(2 * unitMax).fill(3), 0));
        refused('8 KiB at 4 KiB: not naturally aligned', 'ERR_ATOMIC_UNALIGNED', () => f.writeAtomic(alignedBuffer(8192).fill(4), 4096), {
          position: 4096,
          length: 8192,
        });
        refused('64 KiB at 32 KiB: not naturally aligned', 'ERR_ATOMIC_UNALIGNED', () => f.writeAtomic(alignedBuffer(65536).fill(4), 32768));
        refused('4 KiB at 512: not naturally aligned', 'ERR_ATOMIC_UNALIGNED', () => f.writeAtomic(alignedBuffer(4096).fill(4), 512));
        refused('two segments via writev', 'ERR_ATOMIC_SEGMENTS', () =>
          f.writev([alignedBuffer(4096).fill(5), alignedBuffer(4096).fill(5)], 0, { atomic: true }),
        );
        refused("cache:'dontcache' with atomic", 'ERR_ATOMIC_NOT_DIRECT', () =>
          f.write(alignedBuffer(4096).fill(6), 0, { atomic: true, cache: 'dontcache' }),
        );
        refused("cache:'writethrough' with writeAtomic", 'ERR_ATOMIC_NOT_DIRECT', () =>
          f.writeAtomic(alignedBuffer(4096).fill(6), 0, { cache: 'writethrough' } as WriteOptions),
        );

        it('buffered file (open direct:false) → ERR_ATOMIC_NOT_DIRECT, file unchanged', async () => {
          const err = await rejection(buffered.writeAtomic(alignedBuffer(4096).fill(7), 0));
          expect(err).toBeInstanceOf(AtomicWriteError);
          expect((err as AtomicWriteError).code).toBe('ERR_ATOMIC_NOT_DIRECT');
          expect(buffered.stats.bytesWritten).toBe(0);
          const back = readBackDirect(file);
          expect(firstDiff(back, model)).toBe(-1);
          expect(fs.statSync(file).mtimeMs).toBe(mtimes[0]);
        });
      });

      it('every power-of-two size from 4 KiB to min(unitMax, 1 MiB) is written whole and reads back', async () => {
        const cap = Math.min(unitMax, MiB);
        const rnd = prng(23);
        const atomicBefore = f.stats.atomic;
        let count = 0;
        for (let size = 4096; size <= cap; size *= 2) {
          const data = rnd.bytes(size);
          const pos = size; // naturally aligned, inside the 2 MiB file
          const r = await f.writeAtomic(alignedCopy(data), pos);
          expect(r, `${size} bytes at ${pos}`).toEqual({ bytesWritten: size, path: 'direct' });
          data.copy(model, pos);
          count++;
        }
        expect(count).toBeGreaterThanOrEqual(5);
        expect(f.stats.atomic - atomicBefore).toBe(count);
        const back = readBackDirect(file);
        expect(back.length).toBe(FILE_SIZE);
        expect(firstDiff(back, model)).toBe(-1);
      });

      it('atomic writes from unaligned memory (bounced), through writev with one segment, and extending the file', async () => {
        const atomicBefore = f.stats.atomic;
        const a = prng(29).bytes(16384);
        expect(await f.writeAtomic(unalignedCopy(a, 7), 16384 * 3)).toEqual({ bytesWritten: 16384, path: 'direct' });
        a.copy(model, 16384 * 3);
        const b = prng(31).bytes(8192);
        expect(await f.writev([alignedCopy(b)], 8192 * 9, { atomic: true })).toEqual({ bytesWritten: 8192, path: 'direct' });
        b.copy(model, 8192 * 9);
        const c = prng(37).bytes(65536);
        expect(await f.write(alignedCopy(c), FILE_SIZE, { atomic: true, dsync: true })).toEqual({ bytesWritten: 65536, path: 'direct' });
        expect(f.stats.atomic - atomicBefore).toBe(3);
        expect(f.size).toBe(FILE_SIZE + 65536);
        const back = readBackDirect(file);
        expect(back.length).toBe(FILE_SIZE + 65536);
        expect(firstDiff(back.subarray(0, FILE_SIZE), model)).toBe(-1);
        expect(firstDiff(back.subarray(FILE_SIZE), c)).toBe(-1);
      });

      it('RLIMIT_FSIZE=32 KiB: a 64 KiB atomic write at 0 is an AtomicWriteError and the file stays at size 0', (ctx) => {
        if (!fs.existsSync(DIST)) ctx.skip(`dist/index.js missing: build with \`npm run build:ts\` first (${DIST})`);
        const target = path.join(dir, `${engine}-fsize.bin`);
        const run = (limit: number | undefined) => {
          fs.writeFileSync(target, '');
          const cmd = limit === undefined ? 'exec "$0" "$@"' : `trap "" XFSZ; exec prlimit --fsize=${limit} "$0" "$@"`;
          const r = spawnSync('bash', ['-c', cmd, process.execPath, CHILD, target, engine, String(65536)], {
            encoding: 'utf8',
            timeout: 30_000,
          });
          expect(r.status, `child failed (signal ${r.signal}): ${r.stderr}`).toBe(0);
          const line = r.stdout.trim().split('\n').pop() ?? '';
          return JSON.parse(line) as {
            ok: boolean;
            result?: { bytesWritten: number; path: string };
            error?: { name: string; isAtomicWriteError: boolean; code: string; errno?: number; message: string };
            handleSize: number;
            sizeAfter: number;
            engine: string;
          };
        };

        // Control: without the limit the same child writes all 64 KiB atomically.
        const control = run(undefined);
        expect(control.engine).toBe(engine);
        expect(control).toMatchObject({ ok: true, result: { bytesWritten: 65536, path: 'direct' }, sizeAfter: 65536 });
        expect(readBackDirect(target).every((b) => b === 0x5a)).toBe(true);

        const limited = run(32768);
        expect(limited.ok, `the write was reported as a success: ${JSON.stringify(limited.result)}`).toBe(false);
        expect(limited.error?.isAtomicWriteError, JSON.stringify(limited.error)).toBe(true);
        expect(limited.error?.name).toBe('AtomicWriteError');
        expect(['ERR_ATOMIC_SHORT', 'EFBIG']).toContain(limited.error?.code);
        // Nothing of it is left: old size, no data blocks.
        expect(limited.sizeAfter).toBe(0);
        expect(limited.handleSize).toBe(0);
        expect(native.statxSync(target).size).toBe(0);
        expect(dataExtents(target).blocks).toBe(0);
        // (Report what the kernel did: a short write, or a refusal.)
        console.info(`[${engine}] 64 KiB atomic write under RLIMIT_FSIZE=32768: ${limited.error?.code}: ${limited.error?.message}`);
      });
    });
  }
});

describeOnFs('ext4', 'atomic writes on ext4 (no hardware atomics on loop)', (mnt) => {
  let dir: string;
  beforeAll(() => {
    dir = uniqueDir(mnt, 'policies-atomic-ext4');
  });

  for (const engine of ENGINES) {
    it(`engine ${engine}: capabilities say unsupported; writeAtomic → AtomicWriteError EOPNOTSUPP, file unchanged`, async () => {
      const file = path.join(dir, `${engine}-atomic.bin`);
      const model = prng(41).bytes(256 * 1024);
      writeKnown(file, model);
      const mtime = fs.statSync(file).mtimeMs;
      const f = await open(file, { engine });
      try {
        expect(f.capabilities.atomic.supported).toBe(false);
        expect(f.capabilities.atomic.reason).toMatch(/ext4/);
        for (const call of [
          () => f.writeAtomic(alignedBuffer(4096).fill(1), 0),
          () => f.write(alignedBuffer(65536).fill(1), 65536, { atomic: true }),
          () => f.writev([alignedBuffer(4096).fill(1)], 0, { atomic: true }),
          () => f.writeAtomic(alignedBuffer(4096).fill(1), model.length), // extending
        ]) {
          const err = await rejection(call());
          expect(err).toBeInstanceOf(AtomicWriteError);
          expect(err).toMatchObject({ code: 'EOPNOTSUPP', errno: 95 });
        }
        expect(f.stats.bytesWritten).toBe(0);
        expect(f.size).toBe(model.length);
      } finally {
        await f.close();
      }
      const back = readBackDirect(file);
      expect(back.length).toBe(model.length);
      expect(firstDiff(back, model)).toBe(-1);
      expect(fs.statSync(file).mtimeMs).toBe(mtime);
    });
  }
});
