/**
 * The durable log's and replaceFile's own node:fs calls (mkdir, readdir, rename,
 * chmod) fail as OdirectErrors like every other odirect error: code, positive
 * errno, syscall, path, and the node error as `cause`. Each failure here is a
 * real one from the kernel, provoked on scratch ext4 and XFS.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { OdirectError, openLog } from '../lib/index';
import { spareName } from '../lib/log/segments';
import { replaceFileWith } from '../lib/replace';
import { recordBytes } from './helpers/log-records';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const KiB = 1024;

async function failure(p: Promise<unknown>): Promise<OdirectError> {
  const err = await p.then(
    () => {
      throw new Error('resolved, expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OdirectError);
  return err as OdirectError;
}

function expectFsError(err: OdirectError, want: { code: string; errno: number; syscall: string; path: string }): void {
  expect({ code: err.code, errno: err.errno, syscall: err.syscall, path: err.path }).toEqual(want);
  // The node:fs error is kept, as node reported it (libuv's errno is negated).
  expect(err.cause).toBeInstanceOf(Error);
  expect(err.cause).toMatchObject({ code: want.code, errno: -want.errno, syscall: want.syscall });
  expect(err.cause).not.toBeInstanceOf(OdirectError);
}

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `node:fs failures as OdirectErrors on ${fsName}`, (mnt) => {
    const root = uniqueDir(mnt, 'fs-errors');
    afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

    it('openLog on a regular file: ENOTDIR from scandir, naming the path', async () => {
      const file = path.join(root, 'not-a-dir');
      fs.writeFileSync(file, 'x');
      const err = await failure(openLog(file, { create: true }));
      expectFsError(err, { code: 'ENOTDIR', errno: 20, syscall: 'scandir', path: file });
    });

    it('openLog under a regular file with create: ENOTDIR from mkdir', async () => {
      const file = path.join(root, 'parent-file');
      fs.writeFileSync(file, 'x');
      const dir = path.join(file, 'log');
      const err = await failure(openLog(dir, { create: true }));
      expectFsError(err, { code: 'ENOTDIR', errno: 20, syscall: 'mkdir', path: dir });
    });

    it('truncateBefore whose retired segment cannot be renamed (a directory holds its spare name): EISDIR from rename', async () => {
      const dir = path.join(root, 'log-retire');
      const log = await openLog(dir, { create: true, segmentSize: 256 * KiB, maxBatchBytes: 32 * KiB, maxRecordSize: 16 * KiB });
      try {
        // Enough records for three segments (about 220 KiB of records each).
        for (let i = 1; i <= 1600 && log.stats.segments < 3; i++) await log.append(recordBytes(i, 500));
        expect(log.stats.segments).toBeGreaterThanOrEqual(3);
        const first = fs
          .readdirSync(dir)
          .filter((n) => /^\d{16}\.odlog$/.test(n))
          .sort()[0]!;
        // rename(2) of a file onto a directory: EISDIR.
        fs.mkdirSync(spareName(dir, Number(first.slice(0, 16))));
        const err = await failure(log.truncateBefore(1e9));
        expectFsError(err, { code: 'EISDIR', errno: 21, syscall: 'rename', path: path.join(dir, first) });
        expect(fs.existsSync(path.join(dir, first))).toBe(true);
      } finally {
        await log.close();
      }
    });

    it('replaceFile whose temp file is gone before its mode is set: ENOENT from chmod; the target is unchanged', async () => {
      const target = path.join(root, 'replace-target');
      fs.writeFileSync(target, 'old content');
      fs.chmodSync(target, 0o640); // an existing target: its mode is copied onto the temp file
      let temp = '';
      const err = await failure(
        replaceFileWith(target, 'new content', undefined, {
          syncData: true,
          syncDir: true,
          afterCreate: async (t) => {
            temp = t;
            fs.unlinkSync(t);
          },
        }),
      );
      expect(temp).not.toBe('');
      expectFsError(err, { code: 'ENOENT', errno: 2, syscall: 'chmod', path: temp });
      expect(fs.readFileSync(target, 'utf8')).toBe('old content');
      expect(fs.readdirSync(root).filter((n) => n.startsWith('.replace-target'))).toEqual([]);
    });
  });
}
