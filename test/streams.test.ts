// Issue 13: createReadStream / createWriteStream / readFile / writeFile /
// replaceFile on loop-mounted ext4 and XFS, ext4 data=journal (no direct I/O:
// the buffered + dontcache fallback) and tmpfs, both engines where the I/O
// path differs. Content is checked byte for byte (read back with plain
// node:fs after the page-cache check), sizes with stat, page-cache residency
// with mincore on a fresh fd.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ArgumentError,
  OdirectError,
  createReadStream,
  createWriteStream,
  readFile,
  replaceFile,
  writeFile,
  type DirectFile,
} from '../lib/index';
import { collectStream, residentPagesOfFile } from './helpers/files';
import { ENGINES } from './helpers/engines';
import { describeOnFs, uniqueDir, type ScratchFsName } from './helpers/scratch';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Odd sizes: empty, sub-block, one off a block either side, and several MiB plus an odd tail. */
const SIZES = [0, 1, 4095, 4097, 65_537, MiB + 13, 5 * MiB + 4097];

const resident = residentPagesOfFile;
const collect = collectStream;

/** Feeds `data` in pieces of pseudo-random sizes (1 byte to 100 KiB), each a view at an odd address. */
function oddPieces(data: Buffer, seed: number): Readable {
  let at = 0;
  let s = seed;
  return new Readable({
    read() {
      if (at >= data.length) return void this.push(null);
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const n = Math.min(data.length - at, 1 + (s % (100 * KiB)));
      const piece = Buffer.alloc(n + 1).subarray(1); // copied, and misaligned
      data.copy(piece, 0, at, at + n);
      at += n;
      this.push(piece);
    },
  });
}

/** Where the page cache can be bypassed (everything but tmpfs, whose pages are the file). */
const CACHE_FREE: Record<ScratchFsName, boolean> = { ext4: true, xfs: true, ext4Journal: true, tiny: true, rawDevice: false, tmpfs: false };
const HAS_DIRECT: Record<ScratchFsName, boolean> = { ext4: true, xfs: true, ext4Journal: false, tiny: true, rawDevice: false, tmpfs: false };

for (const fsName of ['ext4', 'xfs', 'ext4Journal', 'tmpfs'] as const) {
  describeOnFs(fsName, `streams on ${fsName}`, (mnt) => {
    let dir: string;
    const sources = new Map<number, Buffer>();
    beforeAll(async () => {
      dir = uniqueDir(mnt, 'streams');
      for (const size of SIZES) {
        const data = randomBytes(size);
        sources.set(size, data);
        await writeFile(path.join(dir, `src-${size}`), data);
      }
    });

    for (const engine of ENGINES) {
      it(`[${engine}] pipeline copies are byte-exact at odd sizes, exact size, nothing left in the page cache`, async () => {
        for (const size of SIZES) {
          const src = path.join(dir, `src-${size}`);
          const dst = path.join(dir, `dst-${engine}-${size}`);
          const rs = createReadStream(src, { highWaterMark: 64 * KiB + 512, readAhead: 3, engine });
          const ws = createWriteStream(dst, { highWaterMark: 128 * KiB, engine });
          const fallbacks: string[] = [];
          rs.on('fallback', (f: { reason: string }) => fallbacks.push(f.reason));
          ws.on('fallback', (f: { reason: string }) => fallbacks.push(f.reason));
          await pipeline(rs, ws);
          expect(rs.direct, `${size}`).toBe(HAS_DIRECT[fsName]);
          expect(ws.direct, `${size}`).toBe(HAS_DIRECT[fsName]);
          expect(fallbacks.length, fallbacks.join('; ')).toBe(HAS_DIRECT[fsName] ? 0 : 2);
          expect(rs.bytesRead).toBe(size);
          expect(ws.bytesWritten).toBe(size);
          expect(fs.statSync(dst).size, `${size}`).toBe(size);
          if (CACHE_FREE[fsName]) {
            expect(resident(src), `src ${size}`).toBe(0);
            expect(resident(dst), `dst ${size}`).toBe(0);
          }
          expect(fs.readFileSync(dst).equals(sources.get(size)!), `content of ${size}`).toBe(true);
          fs.rmSync(dst);
        }
      });
    }

    it('a write stream takes chunks of any size at odd addresses; readFile reads it back exactly', async () => {
      const data = randomBytes(3 * MiB + 777);
      const dst = path.join(dir, 'odd-pieces');
      const ws = createWriteStream(dst, { highWaterMark: 256 * KiB, writeBehind: 4 });
      await pipeline(oddPieces(data, 7), ws);
      expect(ws.stats.writesIssued).toBe(Math.ceil(data.length / (256 * KiB)));
      expect(fs.statSync(dst).size).toBe(data.length);
      const back = await readFile(dst);
      expect(back.length).toBe(data.length);
      expect(back.equals(data)).toBe(true);
      if (CACHE_FREE[fsName]) expect(resident(dst)).toBe(0);
    });

    it('unaligned start/end ranges give exactly those bytes (end inclusive, as node:fs)', async () => {
      const size = 5 * MiB + 4097;
      const src = path.join(dir, `src-${size}`);
      const data = sources.get(size)!;
      const ranges: Array<[number, number | undefined]> = [
        [0, undefined],
        [1, 1],
        [4095, 4096],
        [4097, 65_536 * 3 + 17],
        [MiB - 1, 2 * MiB + 1],
        [size - 1, undefined],
        [size - 5000, size + 100_000], // end past EOF
        [size, undefined], // start at EOF
        [size + 10, size + 20], // start past EOF
      ];
      for (const [start, end] of ranges) {
        const got = await collect(createReadStream(src, { start, ...(end === undefined ? {} : { end }), highWaterMark: 64 * KiB }));
        const want = data.subarray(start, end === undefined ? undefined : end + 1);
        expect(got.length, `${start}-${end}`).toBe(want.length);
        expect(got.equals(want), `${start}-${end}`).toBe(true);
      }
      if (CACHE_FREE[fsName]) expect(resident(src)).toBe(0);
    });

    it('readFile and writeFile: exact bytes and sizes, durable flag syncs once', async () => {
      for (const size of SIZES) {
        const p = path.join(dir, `wf-${size}`);
        await writeFile(p, sources.get(size)!, { dsync: true });
        expect(fs.statSync(p).size).toBe(size);
        const back = await readFile(p);
        expect(back.equals(sources.get(size)!), `${size}`).toBe(true);
        if (CACHE_FREE[fsName]) expect(resident(p), `${size}`).toBe(0);
      }
      await writeFile(path.join(dir, 'text'), 'héllo\n');
      expect(fs.readFileSync(path.join(dir, 'text'), 'utf8')).toBe('héllo\n');
      await expect(writeFile(path.join(dir, 'text'), 'x', { flags: 'wx' })).rejects.toMatchObject({ code: 'EEXIST' });
    });

    it("'r+' with an unaligned start rewrites only that range and keeps the size; past the end it grows exactly", async () => {
      const base = randomBytes(100 * KiB + 3);
      const p = path.join(dir, 'rplus');
      await writeFile(p, base);
      const patch = randomBytes(10_001);
      await pipeline(Readable.from([patch]), createWriteStream(p, { flags: 'r+', start: 5000 }));
      const want = Buffer.from(base);
      patch.copy(want, 5000);
      let got = fs.readFileSync(p);
      expect(got.length).toBe(base.length);
      expect(got.equals(want)).toBe(true);
      // From inside the file to past its end.
      const tail = randomBytes(20_000);
      await pipeline(Readable.from([tail]), createWriteStream(p, { flags: 'r+', start: base.length - 1000 }));
      const grown = Buffer.concat([want.subarray(0, base.length - 1000), tail]);
      got = fs.readFileSync(p);
      expect(got.length).toBe(grown.length);
      expect(got.equals(grown)).toBe(true);
    });

    it("flush and dsync sync before 'finish'; plain does not; size preallocates at open", async () => {
      const data = randomBytes(2 * MiB + 5);
      for (const [opts, syncs] of [[{}, 0], [{ flush: true }, 1], [{ dsync: true }, 1]] as const) {
        const p = path.join(dir, `sync-${JSON.stringify(opts)}`);
        const ws = createWriteStream(p, opts);
        let file: DirectFile | undefined;
        ws.on('open', (f: DirectFile) => (file = f));
        await pipeline(Readable.from([data]), ws);
        expect(file!.stats.syncs, JSON.stringify(opts)).toBe(syncs);
        expect(fs.readFileSync(p).equals(data)).toBe(true);
      }
      const p = path.join(dir, 'prealloc');
      const ws = createWriteStream(p, { size: data.length });
      await new Promise((resolve) => ws.once('ready', resolve));
      // The whole final size is allocated before the first byte is written.
      expect(fs.statSync(p).size).toBeGreaterThanOrEqual(data.length);
      if (fsName !== 'tmpfs') expect(fs.statSync(p).blocks * 512).toBeGreaterThanOrEqual(data.length);
      await pipeline(Readable.from([data]), ws);
      expect(fs.statSync(p).size).toBe(data.length);
      expect(fs.readFileSync(p).equals(data)).toBe(true);
    });

    it('a slow consumer keeps read-ahead bounded; a fast one reads everything', async () => {
      const size = 5 * MiB + 4097;
      const src = path.join(dir, `src-${size}`);
      const chunk = 64 * KiB;
      const total = Math.ceil(size / chunk);
      const readAhead = 4;
      const slow = createReadStream(src, { highWaterMark: chunk, readAhead });
      let consumed = 0;
      let worst = 0;
      for await (const data of slow) {
        consumed += (data as Buffer).length;
        await sleep(15);
        // Read but not yet consumed: at most the reads in flight and the one chunk the stream buffers
        // (its highWaterMark); the iterator takes all that is buffered at once, so it counts in bytes.
        worst = Math.max(worst, slow.readsIssued * chunk - consumed);
        if (consumed >= 16 * chunk) break;
      }
      expect(worst).toBeGreaterThan(chunk); // it did read ahead
      expect(worst).toBeLessThanOrEqual((readAhead + 1) * chunk);
      expect(slow.readsIssued).toBeLessThan(total / 2);
      const fast = createReadStream(src, { highWaterMark: chunk, readAhead });
      expect((await collect(fast)).length).toBe(size);
      expect(fast.readsIssued).toBe(total);
    });

    /** Makes the n-th call of `target[method]` settle n × `ms` late (a slow device), counting those not yet settled. */
    const slowDown = (target: object, method: string, ms: number) => {
      const counter = { pending: 0, calls: 0 };
      const t = target as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const original = t[method]!.bind(target);
      t[method] = (...args: unknown[]) => {
        counter.pending++;
        const delay = ms * ++counter.calls;
        return original(...args)
          .finally(() => sleep(delay))
          .finally(() => counter.pending--);
      };
      return counter;
    };

    it('destroy() mid-stream waits for the reads and writes in flight, then closes', async () => {
      const size = 5 * MiB + 4097;
      const src = path.join(dir, `src-${size}`);
      const rs = createReadStream(src, { highWaterMark: 128 * KiB, readAhead: 8 });
      let file: DirectFile | undefined;
      rs.on('open', (f: DirectFile) => (file = f));
      // Each read of the stream (direct, or the uncached buffered fallback) goes through readChunk.
      const reads = slowDown(rs, 'readChunk', 20);
      let pendingAtDestroy = -1;
      let pendingAtClose = -1;
      const closed = new Promise<void>((resolve) => rs.once('close', () => ((pendingAtClose = reads.pending), resolve())));
      rs.once('data', () => {
        pendingAtDestroy = reads.pending;
        rs.destroy();
      });
      await closed;
      expect(pendingAtDestroy).toBeGreaterThan(0);
      expect(pendingAtClose).toBe(0);
      expect(rs.inFlightCount).toBe(0);
      expect(file!.closed).toBe(true);
      expect(rs.readsIssued).toBeLessThan(Math.ceil(size / (128 * KiB)));

      const ws = createWriteStream(path.join(dir, 'destroyed'), { highWaterMark: 64 * KiB, writeBehind: 8 });
      let wfile: DirectFile | undefined;
      let writes = { pending: 0, calls: 0 };
      ws.on('open', (f: DirectFile) => ((wfile = f), (writes = slowDown(f, 'write', 20))));
      await new Promise((resolve) => ws.once('ready', resolve));
      for (let i = 0; i < 8; i++) ws.write(randomBytes(64 * KiB));
      for (let i = 0; i < 100 && ws.stats.writesIssued < 4; i++) await sleep(5);
      const writesAtDestroy = writes.pending;
      let writesAtClose = -1;
      const wclosed = new Promise<void>((resolve) => ws.once('close', () => ((writesAtClose = writes.pending), resolve())));
      ws.destroy();
      await wclosed;
      expect(writesAtDestroy).toBeGreaterThan(0);
      expect(writesAtClose).toBe(0);
      expect(ws.stats.inFlight).toBe(0);
      expect(wfile!.closed).toBe(true);
    });

    it('an aborted signal destroys either stream with an AbortError once its I/O has settled', async () => {
      const src = path.join(dir, `src-${5 * MiB + 4097}`);
      const ac = new AbortController();
      const rs = createReadStream(src, { highWaterMark: 64 * KiB, readAhead: 8, signal: ac.signal });
      rs.once('data', () => ac.abort());
      await expect(collect(rs)).rejects.toMatchObject({ name: 'AbortError' });
      // 'error' is emitted only after _destroy finished, so nothing is in flight by then.
      expect(rs.inFlightCount).toBe(0);
      expect(rs.readsIssued).toBeLessThan(Math.ceil((5 * MiB) / (64 * KiB)));

      const wc = new AbortController();
      const ws = createWriteStream(path.join(dir, 'aborted'), { highWaterMark: 64 * KiB, signal: wc.signal });
      // A paced producer (1000 pieces, 1 ms apart) is still writing when the signal fires.
      const piece = randomBytes(10_007);
      const paced = Readable.from(
        (async function* () {
          for (let i = 0; i < 1000; i++) {
            yield piece;
            await sleep(1);
          }
        })(),
      );
      const writing = pipeline(paced, ws);
      setTimeout(() => wc.abort(), 30);
      await expect(writing).rejects.toMatchObject({ name: 'AbortError' });
      expect(ws.stats.inFlight).toBe(0);
    });

    it('replaceFile: whole new content, target mode kept, no temp file left, page cache untouched', async () => {
      const p = path.join(dir, 'config.json');
      await replaceFile(p, 'first');
      expect(fs.readFileSync(p, 'utf8')).toBe('first');
      expect(fs.statSync(p).mode & 0o777).toBe(0o666 & ~process.umask());
      fs.chmodSync(p, 0o640);
      const next = randomBytes(MiB + 13);
      await replaceFile(p, next);
      if (CACHE_FREE[fsName]) expect(resident(p)).toBe(0);
      expect(fs.statSync(p).mode & 0o777).toBe(0o640);
      expect(fs.readFileSync(p).equals(next)).toBe(true);
      await replaceFile(p, Buffer.alloc(0));
      expect(fs.statSync(p).size).toBe(0);
      await replaceFile(p, 'x', { mode: 0o600 });
      expect(fs.statSync(p).mode & 0o777).toBe(0o600);
      expect(fs.readdirSync(dir).filter((n) => n.includes('.odirect-'))).toEqual([]);
    });

    it('concurrent replaceFile calls on one path end with one whole version, the last call’s', async () => {
      const p = path.join(dir, 'contended');
      const versions = Array.from({ length: 24 }, (_, i) => randomBytes(1 + ((i * 7919) % (200 * KiB))));
      await Promise.all(versions.map((v) => replaceFile(p, v)));
      expect(fs.readFileSync(p).equals(versions.at(-1)!)).toBe(true);
      // Through a symlinked directory the path differs, so the calls are not queued one after
      // another: the renames race, as between processes. Each one still installs a whole file.
      const link = `${dir}-link`;
      fs.symlinkSync(dir, link);
      try {
        const a = Array.from({ length: 8 }, (_, i) => randomBytes(300 * KiB + i));
        const b = Array.from({ length: 8 }, (_, i) => randomBytes(17 + i));
        await Promise.all([...a.map((v) => replaceFile(p, v)), ...b.map((v) => replaceFile(path.join(link, 'contended'), v))]);
        const got = fs.readFileSync(p);
        expect(got.equals(a.at(-1)!) || got.equals(b.at(-1)!)).toBe(true);
      } finally {
        fs.unlinkSync(link);
      }
      expect(fs.readdirSync(dir).filter((n) => n.includes('.odirect-'))).toEqual([]);
    });
  });
}

describeOnFs('tiny', 'streams on a full filesystem (16 MiB ext4)', (mnt) => {
  let dir: string;
  beforeAll(() => {
    dir = uniqueDir(mnt, 'streams-enospc');
  });

  it('ENOSPC surfaces as a stream error (no finish), at open when size is given, and from writeFile', async () => {
    const big = randomBytes(32 * MiB);
    const p = path.join(dir, 'too-big');
    const ws = createWriteStream(p);
    let finished = false;
    ws.on('finish', () => (finished = true));
    await expect(pipeline(Readable.from([big.subarray(0, 8 * MiB), big.subarray(8 * MiB)]), ws)).rejects.toMatchObject({
      code: 'ENOSPC',
    });
    expect(finished).toBe(false);
    fs.rmSync(p);

    const sized = createWriteStream(p, { size: big.length });
    const errored = new Promise<unknown>((resolve) => sized.once('error', resolve));
    expect(await errored).toMatchObject({ code: 'ENOSPC', syscall: 'fallocate' });
    fs.rmSync(p, { force: true });

    await expect(writeFile(p, big)).rejects.toBeInstanceOf(OdirectError);
    await expect(writeFile(p, big)).rejects.toMatchObject({ code: 'ENOSPC' });
    fs.rmSync(p, { force: true });
  });

  it('replaceFile that runs out of space leaves the old content and no temp file', async () => {
    const p = path.join(dir, 'kept');
    await replaceFile(p, 'old version');
    await expect(replaceFile(p, randomBytes(32 * MiB))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(fs.readFileSync(p, 'utf8')).toBe('old version');
    expect(fs.readdirSync(dir).filter((n) => n.includes('.odirect-'))).toEqual([]);
  });
});

describe('streams: bad input is refused before any I/O', () => {
  it('typed errors for bad options, synchronously for the streams', () => {
    expect(() => createReadStream('/nonexistent', { start: -1 })).toThrow(ArgumentError);
    expect(() => createReadStream('/nonexistent', { start: 10, end: 5 })).toThrow(ArgumentError);
    expect(() => createReadStream('/nonexistent', { readAhead: 0 })).toThrow(ArgumentError);
    expect(() => createReadStream('/nonexistent', { flags: 'w' as 'r' })).toThrow(ArgumentError);
    expect(() => createReadStream('')).toThrow(ArgumentError);
    // 'a' is a write stream flag since the append work (test/streams-fd-append.test.ts); others still are not.
    expect(() => createWriteStream('/nonexistent', { flags: 'ax' as 'w' })).toThrow(ArgumentError);
    expect(() => createWriteStream('/nonexistent', { flags: 'r' as 'w' })).toThrow(ArgumentError);
    expect(() => createWriteStream('/nonexistent', { highWaterMark: 0 })).toThrow(ArgumentError);
    expect(() => createWriteStream('/nonexistent', { mode: 0o10000 })).toThrow(ArgumentError);
    expect(() => createWriteStream('/nonexistent', { dsync: 'yes' as unknown as boolean })).toThrow(ArgumentError);
  });

  it('the whole-file helpers reject with typed errors and create nothing', async () => {
    await expect(writeFile('/nonexistent-dir/x', 42 as unknown as string)).rejects.toBeInstanceOf(ArgumentError);
    await expect(replaceFile('/nonexistent-dir/x', {} as unknown as string)).rejects.toBeInstanceOf(ArgumentError);
    await expect(readFile('/nonexistent-dir/x', { readAhead: 100 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(readFile('/nonexistent-dir/x')).rejects.toMatchObject({ code: 'ENOENT' });
    const ac = new AbortController();
    ac.abort();
    await expect(writeFile('/nonexistent-dir/x', 'a', { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('a read stream of a missing file errors with ENOENT', async () => {
    await expect(collect(createReadStream('/nonexistent-dir/x'))).rejects.toMatchObject({ code: 'ENOENT' });
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    await expect(pipeline(createReadStream('/nonexistent-dir/x'), sink)).rejects.toBeInstanceOf(OdirectError);
  });
});
