// Issue 13: replaceFile's crash cycles on real loop-mounted ext4 and XFS
// (shutdown ioctl without log flush while a writer loops replacing one file
// with numbered versions; after remount the file must be one whole version,
// at least the last acknowledged), the same cycles with a sync step removed
// to show they catch it, and streams meeting EIO when the filesystem goes
// down under them. Each test makes its own scratch filesystem: a shutdown
// takes it down for good until remounted.
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createReadStream, createWriteStream, writeFile } from '../lib/index';
import { makeScratchFs, removeScratchFs, remountScratchFs, scratchAvailable, type ScratchFs } from '../lib/scratch/scratchfs';
import { SHUTDOWN, shutdownScratchFs } from '../lib/scratch/shutdown';
import { checkVersion, runReplaceCrashCycles, versionContent } from '../lib/verify/replace-crash';
import { scratchTarget } from '../lib/verify/target';
import { requireLoop } from './helpers/scratch';

const CYCLES = Number(process.env.ODIRECT_REPLACE_CYCLES ?? 12);
const MiB = 1024 * 1024;

describe('replace-crash versions', () => {
  it('a version is whole or bad, and the checker tells which', () => {
    const v = versionContent(9);
    expect(checkVersion(v)).toEqual({ kind: 'whole', version: 9 });
    expect(checkVersion(v.subarray(0, v.length - 1))).toMatchObject({ kind: 'bad' });
    const flipped = Buffer.from(v);
    flipped[flipped.length - 1]! ^= 1;
    expect(checkVersion(flipped)).toMatchObject({ kind: 'bad', why: expect.stringMatching(/checksum/) });
    expect(checkVersion(Buffer.alloc(0))).toMatchObject({ kind: 'bad', why: 'empty' });
    expect(checkVersion(Buffer.alloc(v.length))).toMatchObject({ kind: 'bad' });
  });
});

const canScratch = scratchAvailable();
const crashDescribe = canScratch.ok || requireLoop() ? describe : describe.skip;

crashDescribe(`replaceFile crash cycles${canScratch.ok ? '' : ` [skipped: ${canScratch.reason}]`}`, () => {
  const made: ScratchFs[] = [];
  const scratch = async (kind: 'xfs' | 'ext4') => {
    const s = await makeScratchFs({ kind, sizeMiB: kind === 'xfs' ? 320 : 64, label: `replace-${kind}` });
    made.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of made) await removeScratchFs(s);
  });

  for (const kind of ['ext4', 'xfs'] as const) {
    it(`${kind}: ${CYCLES} cycles, every file one whole version, none older than acknowledged`, async () => {
      const s = await scratch(kind);
      const report = await runReplaceCrashCycles(scratchTarget(s), { cycles: CYCLES });
      console.log(`${kind} replace crash: ${JSON.stringify(report)}`);
      expect(report.cycles).toBe(CYCLES);
      expect(report.acknowledged).toBeGreaterThan(CYCLES * 5);
      expect(report.failedAfterShutdown).toBeGreaterThan(0); // a replace really was in flight at shutdown
      expect(report, report.examples.join('; ')).toMatchObject({ lost: 0, bad: 0 });
    }, 300_000);

    it(`${kind}: the cycles catch a replace without the directory fsync (acknowledged versions lost)`, async () => {
      const s = await scratch(kind);
      // Only a version acknowledged after the last log force is at risk (the next replace's
      // fdatasync forces the log, rename included): 40-100% of cycles lost one in our runs, so
      // 10 cycles make a run with none very unlikely.
      const report = await runReplaceCrashCycles(scratchTarget(s), { cycles: 10, steps: { syncData: true, syncDir: false } });
      console.log(`${kind} replace crash without the directory fsync: ${JSON.stringify({ ...report, examples: report.examples.slice(0, 3) })}`);
      expect(report.cycles).toBe(10);
      // The rename is not durable when the call resolves: the last acknowledged version is lost.
      expect(report.lost).toBeGreaterThan(0);
      expect(report.bad).toBe(0); // still never a mix: rename is atomic
    }, 300_000);

    it(`${kind}: read and write streams error with EIO when the filesystem goes down under them`, async () => {
      const s = await scratch(kind);
      const src = path.join(s.mountpoint!, 'src');
      await writeFile(src, randomBytes(8 * MiB + 5));
      // A slow consumer keeps the read stream reading (32 chunks, 20 ms each) past the shutdown.
      const rs = createReadStream(src, { highWaterMark: 256 * 1024, readAhead: 2 });
      const slowSink = new Writable({ highWaterMark: 1, write: (_c, _e, cb) => void setTimeout(cb, 20) });
      const reading = pipeline(rs, slowSink).then(() => 'finished', (err: unknown) => err);
      // A paced producer keeps the write stream writing (about 60 MiB over several seconds).
      let n = 0;
      const producer = Readable.from(
        (async function* () {
          while (n++ < 1000) {
            yield randomBytes(64 * 1024);
            await sleep(2);
          }
        })(),
      );
      const ws = createWriteStream(path.join(s.mountpoint!, 'dst'), { highWaterMark: 256 * 1024 });
      let finished = false;
      ws.on('finish', () => (finished = true));
      const writing = pipeline(producer, ws).then(() => 'finished', (err: unknown) => err);
      await sleep(150);
      await shutdownScratchFs(s, SHUTDOWN.NOLOGFLUSH);
      const [readOutcome, writeOutcome] = await Promise.all([reading, writing]);
      expect(writeOutcome).toMatchObject({ code: 'EIO' });
      expect(readOutcome).toMatchObject({ code: 'EIO' });
      expect(finished).toBe(false);
      expect(n).toBeLessThan(1000); // the producer was stopped by the error, not run to its end
      await remountScratchFs(s);
    }, 120_000);
  }
});
