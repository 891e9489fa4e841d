/**
 * A buffered write that starts past the end of file (the fallback for an unaligned write past
 * EOF, and the cache modes) also dirties the page holding the old end: the kernel zeroes that
 * page past the old size through the page cache before the write (XFS does; ext4 leaves the
 * page alone). Its range lock covers that page, and so must its write-back-and-drop: after
 * the write no page of the file is left in the page cache ('dontcache', fallback), or every
 * page it dirtied is clean ('writethrough'). ext4 and XFS, both engines; residency with
 * mincore on a fresh fd, content read back direct.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { open } from '../lib/index';
import { C, native } from '../lib/native';
import { ENGINES } from './helpers/engines';
import { prng } from './helpers/random';
import { readBackDirect } from './helpers/read-back';
import { firstDiff, pollUntil, residentPagesOf, unalignedCopy, writeKnown } from './helpers/files';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const PAGE = native.pageSize;
/** The old size ends inside page 2; the writes start in page 7, past it, leaving a hole between. */
const OLD_SIZE = 2 * PAGE + 1809;
const AT = 7 * PAGE + 1337;
const LENGTH = 100;

/** Page indexes of `p` in the page cache now (raw binding, fresh fd). */
function residentIndexes(p: string): number[] {
  const size = fs.statSync(p).size;
  const pages: number[] = [];
  for (let i = 0; i < Math.ceil(size / PAGE); i++) if (residentPagesOf(p, i * PAGE, PAGE)) pages.push(i);
  return pages;
}

function dropClean(p: string): void {
  const fd = native.openSync(p, C.O_RDONLY, 0);
  try {
    native.fadviseSync(fd, 0, 0, C.POSIX_FADV_DONTNEED);
  } finally {
    native.closeSync(fd);
  }
}

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `the old end-of-file page of an extending buffered write on ${fsName}`, (mnt) => {
    const dir = uniqueDir(mnt, 'eof-page');
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    for (const engine of ENGINES) {
      describe(`engine ${engine}`, () => {
        /** A file of OLD_SIZE known bytes, none of it cached; the model of what it should hold after the write. */
        const prepare = (name: string, at = AT, length = LENGTH) => {
          const p = path.join(dir, `${engine}-${name}`);
          const old = prng(OLD_SIZE).bytes(OLD_SIZE);
          writeKnown(p, old);
          dropClean(p);
          expect(residentIndexes(p)).toEqual([]);
          const data = prng(at).bytes(length);
          const model = Buffer.alloc(at + length);
          old.copy(model, 0);
          data.copy(model, at);
          return { p, data, model };
        };
        const expectContent = (p: string, model: Buffer) => {
          const back = readBackDirect(p);
          expect(back.length).toBe(model.length);
          expect(firstDiff(back, model)).toBe(-1);
        };

        it('the fallback (unaligned write past EOF on a direct file) leaves no page cached, the old EOF page included', async () => {
          const { p, data, model } = prepare('fallback.bin');
          const f = await open(p, { engine });
          try {
            expect(f.direct).toBe(true);
            expect(await f.write(unalignedCopy(data, 3), AT)).toEqual({ bytesWritten: LENGTH, path: 'buffered' });
            expect(f.stats.bufferedFallback).toBe(1);
            expect(residentIndexes(p)).toEqual([]);
          } finally {
            await f.close();
          }
          expectContent(p, model);
        });

        // A whole page: ext4 (6.18) keeps a page that a dontcache write filled only in part
        // cached (clean) after writeback, whatever the old size; a whole new page it drops.
        it("cache 'dontcache' of a whole page leaves no page cached once written back, the old EOF page included", async () => {
          const { p, data, model } = prepare('dontcache.bin', 7 * PAGE, PAGE);
          const f = await open(p, { engine });
          try {
            expect(await f.write(data, 7 * PAGE, { cache: 'dontcache' })).toEqual({ bytesWritten: PAGE, path: 'buffered' });
            // RWF_DONTCACHE drops the written page when its (asynchronous) writeback completes: poll up to 1 s.
            const left = await pollUntil(() => residentIndexes(p), (pages) => pages.length === 0, 1000);
            expect(left).toEqual([]);
          } finally {
            await f.close();
          }
          expectContent(p, model);
        });

        it("cache 'writethrough' leaves every page it dirtied clean, the old EOF page included", async () => {
          const { p, data, model } = prepare('writethrough.bin');
          const f = await open(p, { engine });
          try {
            expect(await f.write(data, AT, { cache: 'writethrough' })).toEqual({ bytesWritten: LENGTH, path: 'buffered' });
            expect(residentIndexes(p)).toContain(Math.floor(AT / PAGE));
            // POSIX_FADV_DONTNEED drops clean pages at once and only starts writeback of dirty ones.
            dropClean(p);
            expect(residentIndexes(p), 'pages left after DONTNEED: they were dirty').toEqual([]);
          } finally {
            await f.close();
          }
          expectContent(p, model);
        });
      });
    }
  });
}
