// The streams' node:fs habits added on top of issue 13: flags 'a'/'a+' for the
// write stream (append after existing, unaligned content), options.fd (an open
// DirectFile) for either stream, autoClose, and the combinations refused
// before any I/O. On scratch ext4 and XFS, both engines; content read back
// with plain node:fs after a page-cache check (mincore on a fresh fd).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { AlignmentError, ArgumentError, OdirectError, createReadStream, createWriteStream, open, type DirectFile } from '../lib/index';
import { ENGINES } from './helpers/engines';
import { C, native } from '../lib/native';
import { collectStream, residentPagesOfFile, writeKnown } from './helpers/files';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const KiB = 1024;
const MiB = 1024 * KiB;

const resident = residentPagesOfFile;
const collect = collectStream;

/** Drops `file`'s clean pages (after a read-back through the page cache): residency after is the next stream's. */
function dropFromCache(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    native.fadviseSync(fd, 0, 0, C.POSIX_FADV_DONTNEED);
  } finally {
    fs.closeSync(fd);
  }
  expect(resident(file)).toBe(0);
}

/** Known content written with plain node:fs (synced), then dropped from the page cache. */
function writeBase(file: string, data: Uint8Array): void {
  writeKnown(file, data);
  dropFromCache(file);
}

/** What fd `n` of this process refers to now, or undefined when it is not open. */
function fdTarget(n: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/self/fd/${n}`);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

function closeEvent(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `stream append and fd on ${fsName}`, (mnt) => {
    const dir = uniqueDir(mnt, 'streams-fd');
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    for (const engine of ENGINES) {
      it(`[${engine}] 'a' appends after unaligned content: inside the tail block, across it, and many blocks on`, async () => {
        const p = path.join(dir, `append-${engine}`);
        let want = randomBytes(10_001); // ends 1809 bytes into its third 4 KiB block
        writeBase(p, want);
        // 3 bytes stay inside the existing tail block; 5000 cross into the next; 2 MiB + 7 run on.
        for (const n of [3, 5000, 2 * MiB + 7]) {
          const more = randomBytes(n);
          const ws = createWriteStream(p, { flags: 'a', engine, highWaterMark: 256 * KiB });
          await pipeline(Readable.from([more]), ws);
          expect(ws.direct).toBe(true);
          expect(ws.bytesWritten).toBe(n);
          want = Buffer.concat([want, more]);
          expect(fs.statSync(p).size, `after ${n}`).toBe(want.length);
          // The tail block was read and rewritten direct: nothing of the file is left in the page cache.
          expect(resident(p), `after ${n}`).toBe(0);
          expect(fs.readFileSync(p).equals(want), `content after appending ${n}`).toBe(true);
          dropFromCache(p);
        }
      });
    }

    it("'a+' creates a missing file and appends to it; 'a' with no bytes leaves the file as it was", async () => {
      const p = path.join(dir, 'append-new');
      const first = randomBytes(4097);
      await pipeline(Readable.from([first]), createWriteStream(p, { flags: 'a+' }));
      const second = randomBytes(4095);
      await pipeline(Readable.from([second]), createWriteStream(p, { flags: 'a+' }));
      expect(fs.readFileSync(p).equals(Buffer.concat([first, second]))).toBe(true);
      await pipeline(Readable.from([]), createWriteStream(p, { flags: 'a' }));
      expect(fs.statSync(p).size).toBe(first.length + second.length);
      expect(fs.readFileSync(p).equals(Buffer.concat([first, second]))).toBe(true);
    });

    it('a write stream on an open DirectFile: autoClose false leaves it open and usable, true closes it', async () => {
      const p = path.join(dir, 'fd-write');
      const base = randomBytes(6000);
      writeBase(p, base);
      const file = await open(p);
      const fd = file.fd;
      expect(fdTarget(fd)).toBe(p);

      const more = randomBytes(70_001);
      const ws = createWriteStream(null, { fd: file, flags: 'a', autoClose: false });
      expect(ws.path).toBe(p);
      await pipeline(Readable.from([more]), ws);
      expect(file.closed).toBe(false);
      expect(fdTarget(fd)).toBe(p); // still this file's fd, in the kernel too
      let want = Buffer.concat([base, more]);
      expect(file.size).toBe(want.length);
      expect(resident(p)).toBe(0);
      expect(fs.readFileSync(p).equals(want)).toBe(true);
      dropFromCache(p);

      // The handle still works, and the default flags with an fd are 'r+': overwrite at start, keep the rest.
      const patch = randomBytes(100);
      await file.write(patch, 7);
      const ws2 = createWriteStream(null, { fd: file, start: 50_000 });
      const mid = randomBytes(1234);
      const closed = closeEvent(ws2);
      await pipeline(Readable.from([mid]), ws2);
      await closed;
      expect(file.closed).toBe(true);
      expect(fdTarget(fd)).not.toBe(p);
      want = Buffer.from(want);
      patch.copy(want, 7);
      mid.copy(want, 50_000);
      expect(fs.statSync(p).size).toBe(want.length);
      expect(resident(p)).toBe(0);
      expect(fs.readFileSync(p).equals(want)).toBe(true);
    });

    it('a read stream on an open DirectFile: reads the range; autoClose false leaves it open for the next stream', async () => {
      const p = path.join(dir, 'fd-read');
      const data = randomBytes(MiB + 4097);
      writeBase(p, data);
      const file = await open(p, { readOnly: true });
      const fd = file.fd;
      const first = createReadStream(null, { fd: file, start: 3, end: 700_000, autoClose: false, highWaterMark: 64 * KiB });
      let opened = false;
      first.on('open', () => (opened = true));
      const closed = closeEvent(first);
      expect((await collect(first)).equals(data.subarray(3, 700_001))).toBe(true);
      await closed;
      expect(opened).toBe(false); // as node:fs: a stream given an fd opens nothing
      expect(file.closed).toBe(false);
      expect(fdTarget(fd)).toBe(p);

      const second = createReadStream(p, { fd: file, start: 700_001 });
      const closed2 = closeEvent(second);
      expect((await collect(second)).equals(data.subarray(700_001))).toBe(true);
      await closed2;
      expect(file.closed).toBe(true);
      expect(fdTarget(fd)).not.toBe(p);
      expect(resident(p)).toBe(0);
    });

    it('destroy() of a stream with autoClose false waits for its writes and leaves the file open', async () => {
      const p = path.join(dir, 'fd-destroy');
      const file = await open(p, { create: true });
      const ws = createWriteStream(null, { fd: file, autoClose: false, highWaterMark: 64 * KiB, writeBehind: 4 });
      for (let i = 0; i < 8; i++) ws.write(randomBytes(64 * KiB));
      const closed = closeEvent(ws);
      ws.destroy();
      await closed;
      expect(ws.stats.inFlight).toBe(0);
      expect(file.closed).toBe(false);
      await file.write(Buffer.from('still open'), 0);
      await file.close();
    });

    it("'a' on a DirectFile opened with alignment 'strict' and an unaligned end: AlignmentError, file unchanged", async () => {
      const p = path.join(dir, 'append-strict');
      const base = randomBytes(5000);
      writeBase(p, base);
      const file = await open(p, { alignment: 'strict' });
      const ws = createWriteStream(null, { fd: file, flags: 'a' });
      await expect(pipeline(Readable.from([randomBytes(10_000)]), ws)).rejects.toBeInstanceOf(AlignmentError);
      expect(file.closed).toBe(true);
      expect(fs.readFileSync(p).equals(base)).toBe(true);
    });

    it('bad combinations are typed errors thrown by the constructor, before any I/O', async () => {
      const p = path.join(dir, 'combos');
      const base = randomBytes(3000);
      writeBase(p, base);
      const missing = path.join(dir, 'never-created');
      const rw = await open(p);
      const ro = await open(p, { readOnly: true });
      const closedFile = await open(p, { readOnly: true });
      await closedFile.close();
      const argument = (fn: () => unknown, code: string, message: RegExp) => {
        let err: unknown;
        try {
          fn();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ArgumentError);
        expect(err).toMatchObject({ code });
        expect((err as Error).message).toMatch(message);
      };
      // A raw fd number: refused, saying why.
      const rawFd = fs.openSync(p, 'r+');
      try {
        argument(() => createWriteStream(null, { fd: rawFd as unknown as DirectFile }), 'ERR_INVALID_ARG_TYPE', /DirectFile.*raw fd/);
        argument(() => createReadStream(null, { fd: rawFd as unknown as DirectFile }), 'ERR_INVALID_ARG_TYPE', /DirectFile.*raw fd/);
      } finally {
        fs.closeSync(rawFd);
      }
      argument(() => createReadStream(null, { fd: {} as DirectFile }), 'ERR_INVALID_ARG_TYPE', /DirectFile/);
      argument(() => createWriteStream(null, { fd: rw, flags: 'w' }), 'ERR_INVALID_ARG_VALUE', /'w' creates or truncates/);
      argument(() => createWriteStream(null, { fd: rw, flags: 'wx' }), 'ERR_INVALID_ARG_VALUE', /'wx'/);
      argument(() => createWriteStream(null, { fd: rw, mode: 0o600 }), 'ERR_INVALID_ARG_VALUE', /options\.mode/);
      argument(() => createWriteStream(null, { fd: rw, engine: 'uring' }), 'ERR_INVALID_ARG_VALUE', /options\.engine/);
      argument(() => createReadStream(null, { fd: ro, engine: 'uring' }), 'ERR_INVALID_ARG_VALUE', /options\.engine/);
      argument(() => createWriteStream(missing, { flags: 'a', start: 5 }), 'ERR_INVALID_ARG_VALUE', /start.*'a'/);
      argument(() => createWriteStream(null, { fd: rw, flags: 'a+', start: 0 }), 'ERR_INVALID_ARG_VALUE', /start.*'a\+'/);
      argument(() => createWriteStream(missing, { fd: rw }), 'ERR_INVALID_ARG_VALUE', /different files/);
      argument(() => createWriteStream(null, { autoClose: 1 as unknown as boolean }), 'ERR_INVALID_ARG_TYPE', /autoClose/);
      argument(() => createWriteStream(null), 'ERR_INVALID_ARG_TYPE', /path/); // no path and no fd
      // A handle that cannot do it: EBADF, as its own methods would say, but before any I/O.
      for (const make of [() => createWriteStream(null, { fd: ro }), () => createWriteStream(null, { fd: closedFile }), () => createReadStream(null, { fd: closedFile })]) {
        let err: unknown;
        try {
          make();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(OdirectError);
        expect(err).toMatchObject({ code: 'EBADF', errno: 9, path: p });
      }
      expect(fs.existsSync(missing)).toBe(false);
      expect(fs.readFileSync(p).equals(base)).toBe(true);
      expect(rw.stats.bytesWritten + ro.stats.bytesRead).toBe(0);
      expect(rw.closed || ro.closed).toBe(false);
      await rw.close();
      await ro.close();
    });
  });
}
