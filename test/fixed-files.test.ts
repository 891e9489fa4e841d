// Issue 14: registered files. A DirectFile on io_uring puts its fd in the ring's
// fixed-file table at open and takes it out before close; its reads and writes
// name the slot (IOSQE_FIXED_FILE). Checked against what the kernel shows and
// does: the ring's /proc fdinfo lists the table, and a request naming an
// emptied slot fails with EBADF although the fd itself is open.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { alignedBuffer, open } from '../lib/index';
import { uringEngine } from '../lib/engines/uring';
import { native } from '../lib/native';
import { ENGINES } from './helpers/engines';
import { readDirect } from './helpers/read-back';
import { describeOnFs, uniqueDir } from './helpers/scratch';

function pattern(size: number, seed: number): Buffer {
  const b = alignedBuffer(size);
  for (let i = 0; i < size; i++) b[i] = (i * 13 + seed * 7 + (i >> 10)) & 0xff;
  return b;
}

/** The paths in this process's io_uring fixed-file tables, from /proc/self/fdinfo (the kernel's io_uring_show_fdinfo). */
function registeredPaths(): string[] {
  const paths: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (!target.includes('io_uring')) continue;
    const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n');
    const start = info.findIndex((l) => l.startsWith('UserFiles:'));
    for (let i = start + 1; start >= 0 && i < info.length && /^\s+\d+: /.test(info[i]!); i++) paths.push(info[i]!.replace(/^\s+\d+: /, ''));
  }
  return paths;
}

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `registered files on ${fsName}`, (mnt) => {
    it.skipIf(!ENGINES.includes('uring'))('in the table while open, not after close; a reused fd number writes to its own file', async () => {
      const dir = uniqueDir(mnt, 'fixed');
      const pa = path.join(dir, 'a');
      const a = await open(pa, { create: true, engine: 'uring' });
      const fdA = a.fd;
      const engine = uringEngine();
      // 6.x kernels have sparse tables (5.19+): the slot is there, and the kernel lists the file in it.
      expect(engine.fileSlot(fdA)).toBeTypeOf('number');
      expect(registeredPaths()).toContain(pa);
      const da = pattern(8192, 1);
      expect(await a.write(da, 0)).toEqual({ bytesWritten: 8192, path: 'direct' });
      await a.close();
      expect(engine.fileSlot(fdA)).toBeUndefined();
      expect(registeredPaths()).not.toContain(pa);
      // The next open very likely gets the same fd number: its I/O reaches its own file.
      const pb = path.join(dir, 'b');
      const b = await open(pb, { create: true, engine: 'uring' });
      try {
        expect(registeredPaths()).toContain(pb);
        const db = pattern(8192, 2);
        await b.write(db, 0);
        const back = alignedBuffer(8192);
        expect(await b.read(back, 0)).toBe(8192);
        expect(back.equals(db)).toBe(true);
        expect(readDirect(pa, 0, 8192).equals(da)).toBe(true);
        expect(readDirect(pb, 0, 8192).equals(db)).toBe(true);
      } finally {
        await b.close();
      }
    });

    it.skipIf(!ENGINES.includes('uring'))('requests name the slot: with the slot emptied behind its back, a write fails with EBADF while the fd is open', async () => {
      const p = path.join(uniqueDir(mnt, 'slot'), 'f');
      const f = await open(p, { create: true, engine: 'uring' });
      try {
        await f.write(pattern(4096, 3), 0);
        const engine = uringEngine();
        const slot = engine.fileSlot(f.fd)!;
        native.uringUnregisterFile(slot);
        await expect(f.write(pattern(4096, 4), 0)).rejects.toMatchObject({ code: 'EBADF', syscall: 'pwritev2' });
        expect(fs.fstatSync(f.fd).isFile()).toBe(true); // the fd itself is fine
        expect(readDirect(p, 0, 4096).equals(pattern(4096, 3))).toBe(true);
        // Put back (the engine still maps the fd to the slot): the same handle writes again.
        engine.registerFile(f.fd);
        expect(await f.write(pattern(4096, 5), 0)).toEqual({ bytesWritten: 4096, path: 'direct' });
        expect(readDirect(p, 0, 4096).equals(pattern(4096, 5))).toBe(true);
      } finally {
        await f.close();
      }
      expect(registeredPaths()).not.toContain(p);
    });

    it.skipIf(!ENGINES.includes('uring'))('the thread-pool engine registers nothing', async () => {
      const p = path.join(uniqueDir(mnt, 'pool'), 'f');
      const f = await open(p, { create: true, engine: 'threadpool' });
      try {
        await f.write(pattern(4096, 6), 0);
        expect(registeredPaths()).not.toContain(p);
      } finally {
        await f.close();
      }
    });
  });
}
