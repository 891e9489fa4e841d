// Issue 2: the native core and the public API on real loop-mounted ext4 and XFS,
// a raw loop device and tmpfs. Every check reads back what the kernel stored.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { alignedBuffer, open, probe } from '../lib/index';
import { C, native } from '../lib/native';
import { ENGINES } from './helpers/engines';
import { readDirect } from './helpers/read-back';
import { describeOnFs, uniqueDir } from './helpers/scratch';

function pattern(size: number, seed: number): Buffer {
  const b = alignedBuffer(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 17 + (i >> 9)) & 0xff;
  return b;
}

describeOnFs('xfs', 'probe on XFS', (mnt) => {
  it('reports software atomic writes, 512-byte DIO alignment and DONTCACHE', async () => {
    const caps = await probe(mnt);
    expect(caps.fsType).toBe('xfs');
    expect(caps.kind).toBe('directory');
    expect(caps.atomic.supported).toBe(true);
    expect(caps.atomic.unitMin).toBe(4096);
    expect(caps.atomic.unitMax).toBeGreaterThanOrEqual(65536);
    expect(caps.atomic.segmentsMax).toBe(1);
    expect(caps.direct).toMatchObject({ supported: true, memAlign: 512, offsetAlign: 512 });
    expect(caps.dontcache).toBe(true);
    expect(caps.dax).toBe(false);
    expect(caps.device?.name).toMatch(/^loop\d+$/);
    expect(caps.device?.logicalBlockSize).toBe(512);
  });
});

describeOnFs('ext4', 'probe on ext4', (mnt) => {
  it('reports no atomic writes, 512-byte DIO alignment and DONTCACHE', async () => {
    const caps = await probe(mnt);
    expect(caps.fsType).toBe('ext4');
    expect(caps.atomic.supported).toBe(false);
    expect(caps.atomic.reason).toMatch(/hardware/);
    expect(caps.direct).toMatchObject({ supported: true, memAlign: 512, offsetAlign: 512 });
    expect(caps.dontcache).toBe(true);
  });
});

describeOnFs('tmpfs', 'probe on tmpfs', (dir) => {
  it('reports no DONTCACHE and no real direct I/O', async () => {
    const caps = await probe(dir);
    expect(caps.fsType).toBe('tmpfs');
    expect(caps.dontcache).toBe(false);
    expect(caps.direct.supported).toBe(false);
    expect(caps.direct.reason).toMatch(/page cache/);
    expect(caps.atomic.supported).toBe(false);
    expect(caps.device).toBeUndefined();
  });
});

describeOnFs('rawDevice', 'a raw loop device with no filesystem', (device) => {
  it('probe reports its size and 512-byte sectors', async () => {
    const caps = await probe(device);
    expect(caps.kind).toBe('blockDevice');
    expect(caps.fsType).toBe('block');
    expect(caps.size).toBe(64 * 1024 * 1024);
    expect(caps.device?.logicalBlockSize).toBe(512);
    expect(caps.direct).toMatchObject({ supported: true, offsetAlign: 512 });
  });

  for (const engine of ENGINES) {
    it(`aligned direct writes read back (${engine})`, async () => {
      const f = await open(device, { engine });
      try {
        expect(f.direct).toBe(true);
        const offset = 8 * 1024 * 1024 + (engine === 'uring' ? 1 << 20 : 0);
        const data = pattern(64 * 1024, 3);
        expect(await f.write(data, offset)).toEqual({ bytesWritten: data.length, path: 'direct' });
        expect(readDirect(device, offset, data.length).equals(data)).toBe(true);
      } finally {
        await f.close();
      }
    });
  }
});

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `direct I/O on ${fsName}`, (mnt) => {
    let dir: string;
    beforeAll(() => {
      dir = uniqueDir(mnt, 'core');
    });

    for (const engine of ENGINES) {
      describe(`engine ${engine}`, () => {
        it('a direct write then a direct read returns the same bytes', async () => {
          const file = path.join(dir, `rw-${engine}`);
          const f = await open(file, { create: true, engine });
          try {
            expect(f.engine).toBe(engine);
            const data = pattern(128 * 1024, 1);
            expect(await f.write(data, 0)).toEqual({ bytesWritten: data.length, path: 'direct' });
            const back = alignedBuffer(data.length);
            expect(await f.read(back, 0)).toBe(data.length);
            expect(back.equals(data)).toBe(true);
            expect(readDirect(file, 0, data.length).equals(data)).toBe(true);
            // Direct writes leave nothing in the page cache.
            expect(await f.residentPages(0, data.length)).toBe(0);
            expect(f.stats.direct).toBe(1);
          } finally {
            await f.close();
          }
        });

        it('writev with several aligned buffers lands them back to back', async () => {
          const file = path.join(dir, `writev-${engine}`);
          const f = await open(file, { create: true, engine });
          try {
            const parts = [pattern(4096, 1), pattern(8192, 2), pattern(512, 3), pattern(3584, 4)];
            const total = parts.reduce((n, p) => n + p.length, 0);
            expect(await f.writev(parts, 4096)).toEqual({ bytesWritten: total, path: 'direct' });
            expect(readDirect(file, 4096, total).equals(Buffer.concat(parts))).toBe(true);
          } finally {
            await f.close();
          }
        });

        it('accepts RWF_DSYNC per write and O_DSYNC per file, and the data is on disk', async () => {
          const file = path.join(dir, `dsync-${engine}`);
          const f = await open(file, { create: true, engine });
          const g = await open(file, { dsync: true, engine });
          try {
            const a = pattern(4096, 5);
            const b = pattern(4096, 6);
            expect(await f.write(a, 0, { dsync: true })).toEqual({ bytesWritten: 4096, path: 'direct' });
            expect(await g.write(b, 4096)).toEqual({ bytesWritten: 4096, path: 'direct' });
            expect(readDirect(file, 0, 8192).equals(Buffer.concat([a, b]))).toBe(true);
          } finally {
            await f.close();
            await g.close();
          }
        });

        it('a write past EOF grows the file', async () => {
          const file = path.join(dir, `grow-${engine}`);
          const f = await open(file, { create: true, truncate: true, engine });
          try {
            expect(fs.statSync(file).size).toBe(0);
            const data = pattern(8192, 7);
            await f.write(data, 1 << 20);
            expect(fs.statSync(file).size).toBe((1 << 20) + 8192);
            expect(native.statxSync(file).size).toBe((1 << 20) + 8192);
            expect(f.size).toBe((1 << 20) + 8192);
            expect(readDirect(file, 0, 4096).every((b) => b === 0)).toBe(true);
            expect(readDirect(file, 1 << 20, 8192).equals(data)).toBe(true);
          } finally {
            await f.close();
          }
        });
      });
    }

    it('RWF_DONTCACHE on a buffered write leaves its pages out of the page cache', async () => {
      const file = path.join(dir, 'dontcache-raw');
      const size = 4 * 1024 * 1024;
      const fd = native.openSync(file, C.O_RDWR | C.O_CREAT | C.O_TRUNC, 0o644);
      try {
        const data = pattern(size, 9);
        expect(native.pwritev2Sync(fd, [data], 0, C.RWF_DONTCACHE)).toBe(size);
        // Pruning happens when writeback of those pages completes (docs/kernel-facts.md §4).
        let resident = native.residentPagesSync(fd, 0, size);
        for (let i = 0; i < 50 && resident > 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
          resident = native.residentPagesSync(fd, 0, size);
        }
        expect(resident).toBe(0);
        expect(readDirect(file, 0, size).equals(data)).toBe(true);
        // A plain buffered write of the same size stays cached: the check above can fail.
        expect(native.pwritev2Sync(fd, [data], size, 0)).toBe(size);
        expect(native.residentPagesSync(fd, size, size)).toBe(size / 4096);
      } finally {
        native.closeSync(fd);
      }
    });
  });
}

describeOnFs('xfs', 'raw RWF_ATOMIC on XFS', (mnt) => {
  it('16 KiB at a 16 KiB-aligned offset succeeds and reads back', async () => {
    const file = path.join(uniqueDir(mnt, 'atomic-raw'), 'f');
    const fd = native.openSync(file, C.O_RDWR | C.O_CREAT | C.O_DIRECT, 0o644);
    try {
      const data = pattern(16384, 11);
      expect(native.pwritev2Sync(fd, [data], 16384, C.RWF_ATOMIC)).toBe(16384);
      expect(readDirect(file, 16384, 16384).equals(data)).toBe(true);
      // The kernel's own rules (docs/kernel-facts.md §2): not naturally aligned → EINVAL.
      expect(() => native.pwritev2Sync(fd, [data], 4096, C.RWF_ATOMIC)).toThrow(
        expect.objectContaining({ code: 'EINVAL', errno: 22, syscall: 'pwritev2' }),
      );
    } finally {
      native.closeSync(fd);
    }
  });
});

describeOnFs('ext4', 'raw RWF_ATOMIC on ext4', (mnt) => {
  for (const engine of ENGINES) {
    it(`fails with EOPNOTSUPP and leaves the file unchanged (${engine})`, async () => {
      const file = path.join(uniqueDir(mnt, `atomic-ext4-${engine}`), 'f');
      const before = pattern(65536, 12);
      fs.writeFileSync(file, before);
      const fd = native.openSync(file, C.O_RDWR | C.O_DIRECT, 0);
      try {
        const data = pattern(16384, 13);
        expect(() => native.pwritev2Sync(fd, [data], 16384, C.RWF_ATOMIC)).toThrow(
          expect.objectContaining({ code: 'EOPNOTSUPP', errno: 95, syscall: 'pwritev2' }),
        );
      } finally {
        native.closeSync(fd);
      }
      const f = await open(file, { engine });
      try {
        await expect(f.writeAtomic(pattern(16384, 14), 16384)).rejects.toMatchObject({
          name: 'AtomicWriteError',
          code: 'EOPNOTSUPP',
        });
      } finally {
        await f.close();
      }
      expect(readDirect(file, 0, 65536).equals(before)).toBe(true);
      expect(fs.statSync(file).size).toBe(65536);
    });
  }
});

describe('package entry points', () => {
  const root = path.join(__dirname, '..');
  const dist = path.join(root, 'dist', 'index.js');
  it.skipIf(!fs.existsSync(dist))('both require() and import work and share one module', () => {
    const cjs = spawnSync(process.execPath, ['-e', `const o=require(${JSON.stringify(root)}); console.log(typeof o.open, typeof o.probe, typeof o.alignedBuffer)`], { encoding: 'utf8' });
    expect(cjs.stdout.trim()).toBe('function function function');
    const esm = spawnSync(process.execPath, ['--input-type=module', '-e', `import { open, probe, AtomicWriteError } from ${JSON.stringify(path.join(root, 'dist', 'index.mjs'))}; console.log(typeof open, typeof probe, AtomicWriteError.name)`], { encoding: 'utf8' });
    expect(esm.stderr).toBe('');
    expect(esm.stdout.trim()).toBe('function function AtomicWriteError');
  });
});

