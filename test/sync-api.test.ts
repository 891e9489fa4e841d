// Issue 14: DirectFile.writeSync / readSync (the same routes as write/read, done
// with pwritev2/preadv2 on the JS thread) and the direct route's fast executor.
// Every check reads back what the kernel stored, on real ext4 and XFS.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alignedBuffer, open } from '../lib/index';
import { OdirectError, UnsupportedError, AlignmentError } from '../lib/errors';
import { ENGINES } from './helpers/engines';
import { readDirect } from './helpers/read-back';
import { describeOnFs, uniqueDir } from './helpers/scratch';

function pattern(size: number, seed: number): Buffer {
  const b = alignedBuffer(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 17 + (i >> 9)) & 0xff;
  return b;
}

for (const fsName of ['xfs', 'ext4'] as const) {
  describeOnFs(fsName, `writeSync / readSync on ${fsName}`, (mnt) => {
    for (const engine of ENGINES) {
      describe(`engine ${engine}`, () => {
        it('an aligned writeSync lands on disk, extends the file, and counts as direct', async () => {
          const p = path.join(uniqueDir(mnt, 'sync'), 'f');
          const f = await open(p, { create: true, engine });
          try {
            const data = pattern(8192, 1);
            expect(f.writeSync(data, 0)).toBe(8192);
            expect(f.size).toBe(8192);
            expect(fs.statSync(p).size).toBe(8192);
            expect(readDirect(p, 0, 8192).equals(data)).toBe(true);
            const more = pattern(4096, 2);
            expect(f.writeSync(more, 4096)).toBe(4096); // inside the file: not extending
            expect(readDirect(p, 4096, 4096).equals(more)).toBe(true);
            expect(f.stats).toMatchObject({ direct: 2, bounced: 0, buffered: 0, bytesWritten: 12288 });
          } finally {
            await f.close();
          }
        });

        it('misaligned memory is bounced, a misaligned position read-modify-written, both synchronously', async () => {
          const p = path.join(uniqueDir(mnt, 'sync'), 'f');
          const f = await open(p, { create: true, engine });
          try {
            const base = pattern(16384, 3);
            f.writeSync(base, 0);
            const odd = Buffer.from(pattern(4097, 4).subarray(1)); // 4096 bytes, caller memory, any address
            expect(f.writeSync(odd, 4096)).toBe(4096);
            const small = Buffer.from('hello, sync');
            expect(f.writeSync(small, 100)).toBe(small.length);
            const want = Buffer.from(base);
            odd.copy(want, 4096);
            small.copy(want, 100);
            expect(readDirect(p, 0, 16384).equals(want)).toBe(true);
            expect(f.stats.readModifyWrite).toBe(1);
            expect(f.size).toBe(16384);
          } finally {
            await f.close();
          }
        });

        it('readSync reads what is on disk: aligned, misaligned, clamped at EOF, nothing past it', async () => {
          const p = path.join(uniqueDir(mnt, 'sync'), 'f');
          const data = pattern(12288, 5);
          fs.writeFileSync(p, data.subarray(0, 10000));
          const f = await open(p, { engine });
          try {
            const into = alignedBuffer(8192);
            expect(f.readSync(into, 0)).toBe(8192);
            expect(into.equals(data.subarray(0, 8192))).toBe(true);
            const odd = Buffer.alloc(300);
            expect(f.readSync(odd, 777)).toBe(300);
            expect(odd.equals(data.subarray(777, 1077))).toBe(true);
            const tail = alignedBuffer(4096);
            expect(f.readSync(tail, 8192)).toBe(10000 - 8192);
            expect(tail.subarray(0, 10000 - 8192).equals(data.subarray(8192, 10000))).toBe(true);
            expect(f.readSync(alignedBuffer(4096), 12288)).toBe(0);
            expect(f.stats.reads).toBe(4);
            expect(f.stats.bytesRead).toBe(8192 + 300 + (10000 - 8192));
          } finally {
            await f.close();
          }
        });

        it('writeSync refuses (ERR_SYNC_CONFLICT) rather than wait for async I/O it must follow, before any I/O', async () => {
          const p = path.join(uniqueDir(mnt, 'sync'), 'f');
          const f = await open(p, { create: true, engine });
          try {
            f.writeSync(pattern(65536, 6), 0);
            // An async read-modify-write holds [0, 4096) exclusively while it runs.
            const pending = f.write(Buffer.from('xyz'), 10);
            const blocked = pattern(4096, 7);
            expect(() => f.writeSync(blocked, 0)).toThrow(expect.objectContaining({ code: 'ERR_SYNC_CONFLICT' }));
            expect(() => f.readSync(alignedBuffer(4096), 0)).toThrow(OdirectError);
            // A disjoint range does not conflict.
            const disjoint = pattern(4096, 8);
            expect(f.writeSync(disjoint, 32768)).toBe(4096);
            // An extending write while I/O is in flight would not be ordered behind it.
            expect(() => f.writeSync(pattern(4096, 9), 65536)).toThrow(expect.objectContaining({ code: 'ERR_SYNC_CONFLICT' }));
            await pending;
            expect(f.size).toBe(65536);
            expect(fs.statSync(p).size).toBe(65536);
            const back = readDirect(p, 0, 65536);
            expect(back.subarray(10, 13).toString()).toBe('xyz');
            expect(back.subarray(32768, 36864).equals(disjoint)).toBe(true);
            // Nothing in flight now: the same calls go through.
            expect(f.writeSync(blocked, 0)).toBe(4096);
            expect(f.writeSync(pattern(4096, 9), 65536)).toBe(4096);
            expect(fs.statSync(p).size).toBe(65536 + 4096);
          } finally {
            await f.close();
          }
        });

        it('a truncate under way makes writeSync refuse; a closed or read-only handle gives EBADF; bad input a typed error', async () => {
          const p = path.join(uniqueDir(mnt, 'sync'), 'f');
          const f = await open(p, { create: true, engine });
          f.writeSync(pattern(8192, 10), 0);
          const cut = f.truncate(4096);
          expect(() => f.writeSync(pattern(4096, 11), 0)).toThrow(expect.objectContaining({ code: 'ERR_SYNC_CONFLICT' }));
          await cut;
          expect(fs.statSync(p).size).toBe(4096);
          expect(() => f.writeSync(pattern(4096, 11), -1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
          expect(() => f.writeSync('text' as unknown as Uint8Array, 0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
          expect(fs.statSync(p).size).toBe(4096);
          await f.close();
          expect(() => f.writeSync(pattern(4096, 11), 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
          expect(() => f.readSync(alignedBuffer(4096), 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
          const ro = await open(p, { readOnly: true, engine });
          try {
            expect(() => ro.writeSync(pattern(4096, 12), 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
            expect(fs.statSync(p).size).toBe(4096);
          } finally {
            await ro.close();
          }
        });

        it('routes through the page cache are refused with ERR_SYNC_UNSUPPORTED; strict alignment with AlignmentError, before any I/O', async () => {
          const p = path.join(uniqueDir(mnt, 'sync'), 'f');
          const f = await open(p, { create: true, engine });
          try {
            expect(() => f.writeSync(pattern(4096, 13), 0, { cache: 'dontcache' })).toThrow(UnsupportedError);
            expect(() => f.writeSync(Buffer.from('tail'), 0)).toThrow(expect.objectContaining({ code: 'ERR_SYNC_UNSUPPORTED' })); // unaligned past EOF: fallback
            expect(fs.statSync(p).size).toBe(0);
          } finally {
            await f.close();
          }
          const strict = await open(p, { engine, alignment: 'strict' });
          try {
            expect(() => strict.writeSync(Buffer.from('x'), 0)).toThrow(AlignmentError);
            expect(fs.statSync(p).size).toBe(0);
          } finally {
            await strict.close();
          }
        });
      });
    }
  });
}

describeOnFs('xfs', 'the direct route fast path', (mnt) => {
  for (const engine of ENGINES) {
    it(`${engine}: 64 aligned writes in flight at once land, count, and close waits for them`, async () => {
      const p = path.join(uniqueDir(mnt, 'fast'), 'f');
      const f = await open(p, { create: true, engine });
      const blocks = 64;
      f.writeSync(alignedBuffer(blocks * 4096), 0);
      const datas = Array.from({ length: blocks }, (_, i) => pattern(4096, 100 + i));
      const writes = datas.map((d, i) => f.write(d, i * 4096));
      const closed = f.close(); // must wait for all of them
      const results = await Promise.all(writes);
      await closed;
      for (const r of results) expect(r).toEqual({ bytesWritten: 4096, path: 'direct' });
      expect(f.stats).toMatchObject({ direct: blocks + 1, bytesWritten: 2 * blocks * 4096 });
      const back = readDirect(p, 0, blocks * 4096);
      for (let i = 0; i < blocks; i++) expect(back.subarray(i * 4096, (i + 1) * 4096).equals(datas[i]!)).toBe(true);
    });

    it(`${engine}: an aligned write waits for an overlapping read-modify-write issued before it`, async () => {
      const p = path.join(uniqueDir(mnt, 'fast'), 'f');
      const f = await open(p, { create: true, engine });
      try {
        f.writeSync(pattern(8192, 1), 0);
        const rmw = f.write(Buffer.from('abc'), 4000); // holds [0, 4096) and [4096, 8192) exclusively
        const whole = pattern(8192, 2);
        const aligned = f.write(whole, 0); // issued after: must land after
        await Promise.all([rmw, aligned]);
        expect(readDirect(p, 0, 8192).equals(whole)).toBe(true);
      } finally {
        await f.close();
      }
    });
  }
});
