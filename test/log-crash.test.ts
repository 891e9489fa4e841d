// Issue 12: the log when the filesystem fails under it, on scratch ext4 and
// XFS this file makes (the shutdown ioctl takes a filesystem down until it
// is remounted, so these do not share the global ones):
//  - ENOSPC: the appends of the failed batch and every later one reject,
//    everything acknowledged replays after reopen, close() works;
//  - EIO after a shutdown, both engines: the same;
//  - crash cycles: appenders running, shutdown without log flush, remount,
//    replay: every acknowledged record there with its bytes, none that was
//    not written; and the mutation that must make them fail.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { open, openLog, OdirectError, type DurableLog } from '../lib/index';
import { native } from '../lib/native';
import { makeScratchFs, remountScratchFs, removeScratchFs, scratchAvailable, type ScratchFs } from '../lib/scratch/scratchfs';
import { SHUTDOWN, shutdownScratchFs } from '../lib/scratch/shutdown';
import { scratchTarget } from '../lib/verify/target';
import { ENGINES } from './helpers/engines';
import { runLogCrashCycles } from './helpers/log-crash';
import { recordBytes } from './helpers/log-records';
import { requireLoop } from './helpers/scratch';

const MiB = 1 << 20;
const CYCLES = Number(process.env.ODIRECT_LOG_CRASH_CYCLES ?? process.env.ODIRECT_CRASH_CYCLES ?? 20);

const canScratch = scratchAvailable();
const scratchDescribe = canScratch.ok || requireLoop() ? describe : describe.skip;

async function replayAll(log: DurableLog): Promise<Map<number, Buffer>> {
  const out = new Map<number, Buffer>();
  for await (const r of log.replay()) out.set(r.sequence, r.data);
  return out;
}

/** Appenders until the log stops; returns what was acknowledged and how the rest failed. */
async function appendUntilFailure(log: DurableLog, appenders: number, size: number, limit: number) {
  const acked = new Map<number, number>();
  const errors: unknown[] = [];
  let key = 0;
  await Promise.all(
    Array.from({ length: appenders }, async () => {
      while (key < limit) {
        const k = key++;
        try {
          const { sequence } = await log.append(recordBytes(k, size));
          acked.set(sequence, k);
        } catch (err) {
          errors.push(err);
          return;
        }
      }
    }),
  );
  return { acked, errors };
}

for (const kind of ['ext4', 'xfs'] as const) {
  scratchDescribe(`log faults on ${kind}${canScratch.ok ? '' : ` [skipped: ${canScratch.reason}]`}`, () => {
    let scratch: ScratchFs | undefined;
    const fsReady = (async () => {
      if (!canScratch.ok) return undefined;
      scratch = await makeScratchFs({ kind, sizeMiB: kind === 'xfs' ? 320 : 64, label: `log-${kind}` });
      return scratch;
    })();
    afterAll(async () => {
      if (scratch) await removeScratchFs(scratch);
    });

    for (const engine of ENGINES) {
      it(`${engine}: ENOSPC rejects the failed batch's appends and all later ones; what was acknowledged replays; close() works`, async () => {
        const s = (await fsReady)!;
        const mnt = s.mountpoint!;
        const dir = path.join(mnt, `enospc-${engine}`);
        // Leave about 6 MiB: the log fills it with 1 MiB segments, then cannot prepare the next.
        const filler = await open(path.join(mnt, 'filler'), { create: true });
        const st = native.statfsSync(mnt);
        await filler.allocate(0, Math.max(MiB, st.bavail * st.bsize - 6 * MiB));
        await filler.close();
        try {
          const log = await openLog(dir, { create: true, engine, segmentSize: MiB, maxBatchBytes: 64 * 1024, maxRecordSize: 16 * 1024 });
          const { acked, errors } = await appendUntilFailure(log, 8, 3000, 20_000);
          expect(errors.length).toBe(8); // every appender saw its append fail
          for (const e of errors) expect(e).toMatchObject({ code: 'ENOSPC' });
          expect(acked.size).toBeGreaterThan(500);
          await expect(log.append(Buffer.from('after'))).rejects.toMatchObject({ code: 'ENOSPC' });
          // Acknowledgements are in order: the acknowledged sequences are 1..n with no hole.
          const lastAcked = Math.max(...acked.keys());
          expect(acked.size).toBe(lastAcked);
          await log.close();
          const again = await openLog(dir, { engine });
          const records = await replayAll(again);
          expect(records.size).toBeGreaterThanOrEqual(lastAcked);
          for (const [seq, k] of acked) expect(records.get(seq)?.equals(recordBytes(k, 3000)), `sequence ${seq}`).toBe(true);
          await again.close();
        } finally {
          fs.rmSync(path.join(mnt, 'filler'), { force: true });
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });

      it(`${engine}: EIO after a shutdown rejects what was in flight and everything after; acknowledged records survive the remount`, async () => {
        const s = (await fsReady)!;
        const dir = path.join(s.mountpoint!, `eio-${engine}`);
        const log = await openLog(dir, { create: true, engine, segmentSize: 4 * MiB, maxBatchBytes: 64 * 1024, maxRecordSize: 16 * 1024 });
        const run = appendUntilFailure(log, 16, 2000, 1e9);
        await new Promise((r) => setTimeout(r, 300));
        await shutdownScratchFs(s, SHUTDOWN.NOLOGFLUSH);
        const { acked, errors } = await run;
        expect(errors.length).toBe(16);
        for (const e of errors) expect(e).toMatchObject({ code: 'EIO' });
        expect(acked.size).toBeGreaterThan(100);
        await expect(log.append(Buffer.from('after'))).rejects.toBeInstanceOf(OdirectError);
        await log.close(); // works on a dead filesystem
        await remountScratchFs(s);
        const again = await openLog(dir, { engine });
        expect(again.stats.openedClean).toBe(false);
        const records = await replayAll(again);
        for (const [seq, k] of acked) expect(records.get(seq)?.equals(recordBytes(k, 2000)), `sequence ${seq}`).toBe(true);
        // The log goes on after recovery, from the recovered end.
        const next = again.stats.lastSequence + 1;
        expect(await again.append(Buffer.from('next'))).toEqual({ sequence: next });
        await again.close();
        fs.rmSync(dir, { recursive: true, force: true });
      });
    }

    it(`crash cycles: ${CYCLES} shutdowns without log flush, engines alternating: 0 lost, 0 unwritten`, async () => {
      const s = (await fsReady)!;
      const report = await runLogCrashCycles(scratchTarget(s), {
        cycles: CYCLES,
        engineFor: (c) => ENGINES[c % ENGINES.length]!,
      });
      console.log(`${kind} log crash: ${JSON.stringify(report)}`);
      expect(report.cycles).toBe(CYCLES);
      expect(report.acknowledged).toBeGreaterThan(CYCLES * 50);
      expect(report.failedAfterShutdown).toBeGreaterThan(0); // appends really were in flight at each shutdown
      expect(report.segmentsRecycled).toBeGreaterThan(0); // retired segments, old batches in them, were reused
      expect(report).toMatchObject({ lost: 0, unwritten: 0 });
      fs.rmSync(path.join(s.mountpoint!, 'log'), { recursive: true, force: true });
    }, 300_000);

    it('the check can fail: acknowledging a batch before its write completes loses acknowledged records', async () => {
      const s = (await fsReady)!;
      const report = await runLogCrashCycles(scratchTarget(s), {
        cycles: 3,
        engineFor: (c) => ENGINES[c % ENGINES.length]!,
        hooks: { acknowledgeBeforeWrite: true },
      });
      console.log(`${kind} log crash, acknowledged before the write: ${JSON.stringify({ ...report, examples: report.examples.slice(0, 3) })}`);
      expect(report.lost).toBeGreaterThan(0);
      fs.rmSync(path.join(s.mountpoint!, 'log'), { recursive: true, force: true });
    }, 120_000);
  });
}
