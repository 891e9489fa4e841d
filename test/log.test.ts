// Issue 12: the durable log on scratch ext4 and XFS, both engines: group
// commit, exact replay after reopen, retention, torn tails, corruption in the
// middle, backpressure, bad input. Faults (ENOSPC, EIO after shutdown) and
// crash cycles are in log-faults.test.ts and log-crash.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { LogCorruptError, OdirectError, openLog, type LogOptions } from '../lib/index';
import { FRAME_BYTES, KIND_BATCH, KIND_RECORD, crc32c, putFrame, readFrame, sealFrame, checkBatchFrame, frameCrc } from '../lib/log/format';
import { scanChain, walkChain, findAcknowledgedAfter, type SegmentBytes } from '../lib/log/recovery';
import { ENGINES } from './helpers/engines';
import { randomSize, recordBytes, seeded } from './helpers/log-records';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 4096;

function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.odlog') && !n.startsWith('.'))
    .sort();
}

async function replayAll(log: Awaited<ReturnType<typeof openLog>>, from?: number) {
  const out: Array<{ sequence: number; data: Buffer }> = [];
  for await (const r of log.replay(from === undefined ? undefined : { from })) out.push(r);
  return out;
}

/** Patches bytes of a closed log's segment file in place (through the page cache, then synced and dropped by the direct reads that follow). */
function patch(file: string, position: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.byteLength, position);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readAt(file: string, position: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, position);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

describe('log format (pure)', () => {
  it('CRC32C is the Castagnoli polynomial (check value of "123456789")', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  // A segment in memory: header block, then batches written by hand.
  function memorySegment(size: number): SegmentBytes & { buf: Buffer } {
    const buf = Buffer.alloc(size);
    return { buf, size, bytes: async (offset, length) => buf.subarray(offset, offset + length) };
  }
  function putBatch(seg: Buffer, salt: number, at: number, run: number, first: number, records: Buffer[], durableThrough: number, flags = 0) {
    let q = at + FRAME_BYTES;
    records.forEach((data, i) => {
      putFrame(seg, q, { length: data.byteLength, sequence: first + i, durableThrough: 0, run, kind: KIND_RECORD, flags: 0 });
      data.copy(seg, q + FRAME_BYTES);
      sealFrame(run, seg, q, data);
      q += FRAME_BYTES + ((data.byteLength + 7) & ~7);
    });
    putFrame(seg, at, { length: q - at - FRAME_BYTES, sequence: first, durableThrough, run, kind: KIND_BATCH, flags });
    sealFrame(salt, seg, at);
    return Math.ceil(q / BLOCK) * BLOCK;
  }

  it('a chain of batches reads back; a torn batch ends it at its start; later proof tells damage from a torn tail', async () => {
    const seg = memorySegment(16 * BLOCK);
    const salt = 0x1234567;
    let p = BLOCK;
    p = putBatch(seg.buf, salt, p, 7, 1, [recordBytes(1, 10), recordBytes(2, 5000)], 0);
    const second = p;
    p = putBatch(seg.buf, salt, p, 7, 3, [recordBytes(3, 100)], 0);
    const third = p;
    p = putBatch(seg.buf, salt, p, 7, 4, [recordBytes(4, 100)], 2);
    const seen: number[] = [];
    const it = scanChain(seg, { salt, blockSize: BLOCK, expect: 1 });
    for (let s = await it.next(); !s.done; s = await it.next()) {
      expect(Buffer.compare(s.value.data, recordBytes(s.value.sequence, s.value.data.byteLength))).toBe(0);
      seen.push(s.value.sequence);
    }
    expect(seen).toEqual([1, 2, 3, 4]);
    // Tear the second batch (its record's data): the chain ends at the batch's start, 3 comes next.
    seg.buf[second + FRAME_BYTES + FRAME_BYTES + 7]! ^= 0xff;
    const { end } = await walkChain(seg, { salt, blockSize: BLOCK, expect: 1 });
    expect(end).toMatchObject({ end: second, next: 3, invalid: { offset: second + FRAME_BYTES, reason: 'record 3: checksum mismatch' } });
    // The third batch says 2 was acknowledged when it was made: not proof that 3 was.
    expect(await findAcknowledgedAfter(seg, salt, BLOCK, end.end, 3)).toBeUndefined();
    // A batch made after 3 was acknowledged is.
    putBatch(seg.buf, salt, third, 7, 4, [recordBytes(4, 100)], 3);
    expect(await findAcknowledgedAfter(seg, salt, BLOCK, end.end, 3)).toMatchObject({ offset: third });
    // Under another salt (a recycled segment) nothing checks out.
    expect(checkBatchFrame(salt + 1, seg.buf, BLOCK, BLOCK, seg.size).invalid).toBe('batch checksum mismatch');
    expect(await findAcknowledgedAfter(seg, salt + 1, BLOCK, BLOCK, 1)).toBeUndefined();
  });

  it('a record left by another run never passes inside this run’s batch', async () => {
    const seg = memorySegment(8 * BLOCK);
    const salt = 99;
    putBatch(seg.buf, salt, BLOCK, 5, 1, [recordBytes(1, 50)], 0);
    // Same place, same sequence, but written by run 6: the batch frame of run 5 does not take it.
    putFrame(seg.buf, BLOCK + FRAME_BYTES, { length: 50, sequence: 1, durableThrough: 0, run: 6, kind: KIND_RECORD, flags: 0 });
    sealFrame(6, seg.buf, BLOCK + FRAME_BYTES, recordBytes(1, 50));
    const { end } = await walkChain(seg, { salt, blockSize: BLOCK, expect: 1 });
    expect(end.invalid?.reason).toBe('record of run 6 in a batch of run 5');
    expect(readFrame(seg.buf, BLOCK + FRAME_BYTES).crc).toBe(frameCrc(6, seg.buf, BLOCK + FRAME_BYTES, recordBytes(1, 50)));
  });
});

for (const fsName of ['ext4', 'xfs'] as const) {
  describeOnFs(fsName, `durable log on ${fsName}`, (mnt) => {
    const made: string[] = [];
    const dirFor = (tag: string) => {
      const d = uniqueDir(mnt, `log-${tag}`);
      made.push(d);
      // The scratch filesystems are shared: give the space back as soon as the test ends.
      onTestFinished(() => {
        const st = fs.statfsSync(mnt);
        console.log(`${tag}: ${((st.blocks - st.bfree) * st.bsize) / MiB} MiB used on ${fsName}`);
        fs.rmSync(d, { recursive: true, force: true });
      });
      return d;
    };
    afterAll(() => {
      for (const d of made) fs.rmSync(d, { recursive: true, force: true });
    });

    for (const engine of ENGINES) {
      const opts = (o: LogOptions = {}): LogOptions => ({ engine, ...o });

      it(`${engine}: 64 appenders × 200 random-size records replay exactly after close and reopen; batches group them`, async () => {
        const dir = dirFor(`many-${engine}`);
        const log = await openLog(dir, opts({ create: true, segmentSize: 4 * MiB, maxRecordSize: 64 * KiB }));
        const sizeOf = new Map<number, { key: number; size: number }>();
        const rand = seeded(12);
        const APPENDERS = 64;
        const EACH = 200;
        await Promise.all(
          Array.from({ length: APPENDERS }, async (_, w) => {
            for (let i = 0; i < EACH; i++) {
              const key = w * EACH + i;
              const size = rand() < 0.02 ? Math.floor(rand() * 64 * KiB) : randomSize(8 * KiB, rand);
              const { sequence } = await log.append(recordBytes(key, size));
              expect(sizeOf.has(sequence)).toBe(false);
              sizeOf.set(sequence, { key, size });
            }
          }),
        );
        const stats = log.stats;
        expect(stats.appends).toBe(APPENDERS * EACH);
        expect(stats.lastSequence).toBe(APPENDERS * EACH);
        // Group commit: far fewer durable writes than appends, and big batches.
        expect(stats.batches).toBeLessThan(stats.appends / 8);
        expect(stats.largestBatch).toBeGreaterThanOrEqual(16);
        expect(stats.paddingBytes).toBeLessThan(stats.batches * BLOCK);
        console.log(`${fsName}/${engine}: ${JSON.stringify(stats)}`);
        await log.close();

        for (let pass = 0; pass < 2; pass++) {
          const again = await openLog(dir, opts());
          expect(again.stats).toMatchObject({ lastSequence: APPENDERS * EACH, firstSequence: 1, openedClean: true });
          let expected = 1;
          for await (const { sequence, data } of again.replay({ from: 1 })) {
            expect(sequence).toBe(expected++);
            const { key, size } = sizeOf.get(sequence)!;
            expect(data.byteLength).toBe(size);
            if (Buffer.compare(data, recordBytes(key, size)) !== 0) throw new Error(`record ${sequence} differs`);
          }
          expect(expected).toBe(APPENDERS * EACH + 1);
          // Replay from the middle.
          const tail = await replayAll(again, 12000);
          expect(tail.map((r) => r.sequence)).toEqual(Array.from({ length: 801 }, (_, i) => 12000 + i));
          await again.close();
        }
      });

      it(`${engine}: retention drops whole segments; what is kept replays the same after reopen`, async () => {
        const dir = dirFor(`retention-${engine}`);
        const o = opts({ create: true, segmentSize: 256 * KiB, maxBatchBytes: 32 * KiB, maxRecordSize: 16 * KiB });
        const log = await openLog(dir, o);
        for (let i = 1; i <= 2000; i++) {
          const p = log.append(recordBytes(i, 300 + (i % 200)));
          if (i % 16 === 0) await p;
        }
        await log.append(recordBytes(2001, 1));
        // The log prepares the next segment in the background (segmentsAhead, default 1) and renames it
        // into the directory when ready; if that happened between `before` and the check after
        // truncateBefore, the listing would gain a file. Wait (bounded) until it is prepared: then no
        // preparation is in flight, and truncateBefore starts none (the prepared slot is full).
        for (const until = Date.now() + 20_000; log.stats.segmentsPrepared < 1 && Date.now() < until; ) {
          await new Promise((r) => setTimeout(r, 5));
        }
        expect(log.stats.segmentsPrepared).toBe(1);
        const before = segmentFiles(dir);
        expect(before.length).toBeGreaterThan(4);
        const { segmentsRemoved, firstSequence } = await log.truncateBefore(1000);
        expect(segmentsRemoved).toBeGreaterThan(0);
        expect(firstSequence).toBeLessThanOrEqual(1000);
        expect(firstSequence).toBeGreaterThan(1);
        expect(segmentFiles(dir)).toEqual(before.slice(segmentsRemoved));
        await expect(replayAll(log, 1)).rejects.toMatchObject({ code: 'ERR_LOG_TRUNCATED' });
        const kept = await replayAll(log);
        expect(kept[0]!.sequence).toBe(firstSequence);
        expect(kept.length).toBe(2001 - firstSequence + 1);
        for (const r of kept) expect(Buffer.compare(r.data, recordBytes(r.sequence, r.sequence === 2001 ? 1 : 300 + (r.sequence % 200)))).toBe(0);
        await log.close();
        // The same batch and record sizes (the defaults would not fit 256 KiB segments: new segments would be 64 MiB).
        const again = await openLog(dir, { ...o, create: false });
        expect(again.stats).toMatchObject({ firstSequence, lastSequence: 2001 });
        expect((await replayAll(again)).map((r) => r.sequence)).toEqual(kept.map((r) => r.sequence));
        // Retired segments are reused: appending as much again makes no new files for a while.
        for (let i = 2002; i <= 4000; i++) {
          const p = again.append(recordBytes(i, 300 + (i % 200)));
          if (i % 16 === 0 || i === 4000) await p;
        }
        expect(again.stats.segmentsRecycled).toBeGreaterThan(0);
        const all = await replayAll(again);
        expect(all.map((r) => r.sequence)).toEqual(Array.from({ length: 4000 - firstSequence + 1 }, (_, i) => firstSequence + i));
        for (const r of all.slice(-1999)) expect(Buffer.compare(r.data, recordBytes(r.sequence, 300 + (r.sequence % 200)))).toBe(0);
        // Everything but the segment being written can go.
        await again.truncateBefore(1e9);
        expect(segmentFiles(dir).length).toBeLessThanOrEqual(1 + 1); // the tail segment (+ one prepared)
        expect((await replayAll(again)).at(-1)!.sequence).toBe(4000);
        await again.close();
      });

      it(`${engine}: a torn tail is ignored and overwritten; opening twice gives the same records`, async () => {
        const dir = dirFor(`torn-${engine}`);
        const log = await openLog(dir, opts({ create: true, segmentSize: 1 * MiB, maxBatchBytes: 64 * KiB, maxRecordSize: 64 * KiB }));
        // One append at a time: record n is alone in the batch at block n.
        for (let n = 1; n <= 20; n++) await log.append(recordBytes(n, 100));
        // Record 21 spans three blocks (its batch: blocks 21-23), then the closing batch at 24.
        await log.append(recordBytes(21, 10_000));
        await log.close();
        const seg = path.join(dir, segmentFiles(dir)[0]!);
        // A crash mid-way through the last write: its middle block never made it, and no closing batch.
        patch(seg, 22 * BLOCK, Buffer.alloc(BLOCK));
        patch(seg, 24 * BLOCK, Buffer.alloc(BLOCK));
        for (let pass = 0; pass < 2; pass++) {
          const again = await openLog(dir, opts());
          expect(again.stats).toMatchObject({ lastSequence: 20, openedClean: false });
          const records = await replayAll(again);
          expect(records.map((r) => r.sequence)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
          await again.close();
          // The close above wrote its closing batch where the torn one was: put the tear back.
          patch(seg, 21 * BLOCK, readAt(seg, 21 * BLOCK, BLOCK).fill(0, 0, 64));
        }
        // Now append over the torn tail: 21 gets new bytes in the blocks the torn batch used.
        const third = await openLog(dir, opts());
        expect(await third.append(recordBytes(2100, 5000))).toEqual({ sequence: 21 });
        await third.close();
        const fourth = await openLog(dir, opts());
        const records = await replayAll(fourth);
        expect(records.length).toBe(21);
        expect(Buffer.compare(records[20]!.data, recordBytes(2100, 5000))).toBe(0);
        expect(readFrame(readAt(seg, 21 * BLOCK, FRAME_BYTES), 0)).toMatchObject({ kind: KIND_BATCH, sequence: 21 });
        await fourth.close();
      });

      it(`${engine}: a bad checksum in the middle is an error naming segment and offset, never skipped`, async () => {
        const dir = dirFor(`corrupt-${engine}`);
        const o = opts({ create: true, segmentSize: 64 * KiB, maxBatchBytes: 8 * KiB, maxRecordSize: 4 * KiB });
        const log = await openLog(dir, o);
        for (let n = 1; n <= 40; n++) await log.append(recordBytes(n, 100));
        await log.close();
        const files = segmentFiles(dir);
        expect(files.length).toBeGreaterThanOrEqual(3); // 15 one-block batches per 64 KiB segment
        // The tail segment: its first batch starts at 31 (the one after it is only prepared).
        const last = path.join(dir, files.find((f) => readFrame(readAt(path.join(dir, f), BLOCK, FRAME_BYTES), 0).sequence === 31)!);
        const lastFirst = 31;
        // Flip one data byte of the second record in the tail segment: open refuses the log.
        const offset = 2 * BLOCK + FRAME_BYTES; // record frame of the segment's second batch
        patch(last, offset + FRAME_BYTES + 10, Buffer.from([readAt(last, offset + FRAME_BYTES + 10, 1)[0]! ^ 0x40]));
        const err = await openLog(dir, opts()).then(
          async (opened) => {
            await opened.close();
            return 'opened';
          },
          (e: unknown) => e,
        );
        expect(err instanceof LogCorruptError, String(err)).toBe(true);
        expect(err).toMatchObject({ code: 'ERR_LOG_CORRUPT', segment: last, offset });
        expect((err as Error).message).toContain(`record ${lastFirst + 1}: checksum mismatch`);
        // Undo it; damage the first segment instead: open reads only the tail, replay finds it.
        patch(last, offset + FRAME_BYTES + 10, Buffer.from([readAt(last, offset + FRAME_BYTES + 10, 1)[0]! ^ 0x40]));
        const first = path.join(dir, files[0]!);
        patch(first, 5 * BLOCK + FRAME_BYTES + 50, Buffer.from([0xee ^ readAt(first, 5 * BLOCK + FRAME_BYTES + 50, 1)[0]!]));
        const again = await openLog(dir, opts());
        const seen: number[] = [];
        const failure = await (async () => {
          for await (const r of again.replay()) seen.push(r.sequence);
        })().catch((e: unknown) => e);
        expect(failure instanceof LogCorruptError, String(failure)).toBe(true);
        expect(failure).toMatchObject({ segment: first, offset: 5 * BLOCK + FRAME_BYTES });
        expect(seen).toEqual([1, 2, 3, 4]);
        await again.close();
      });

      it(`${engine}: a flood of appends waits for room instead of growing without bound, and keeps its order`, async () => {
        const dir = dirFor(`flood-${engine}`);
        const log = await openLog(dir, opts({ create: true, segmentSize: 1 * MiB, maxBatchBytes: 16 * KiB, maxRecordSize: 4 * KiB, maxBatchesInFlight: 1 }));
        const order: number[] = [];
        const all = Array.from({ length: 3000 }, (_, i) => log.append(recordBytes(i, 1000)).then(({ sequence }) => order.push(sequence)));
        await Promise.all(all);
        expect(order).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
        // Two 16 KiB buffers (one writing, one gathering) for 3 MB of records: most appends waited.
        expect(log.stats.waited).toBeGreaterThan(2000);
        expect(log.stats.batches).toBeGreaterThan(3000 / 16);
        await log.close();
        const records = await (async () => {
          const again = await openLog(dir, opts());
          try {
            return await replayAll(again);
          } finally {
            await again.close();
          }
        })();
        expect(records.length).toBe(3000);
        records.forEach((r, i) => expect(Buffer.compare(r.data, recordBytes(i, 1000))).toBe(0));
      });

      it(`${engine}: records from empty to maxRecordSize; bad input and closed logs are refused before any I/O`, async () => {
        const dir = dirFor(`input-${engine}`);
        const log = await openLog(dir, opts({ create: true, segmentSize: 4 * MiB, maxRecordSize: 1 * MiB }));
        const sizes = [0, 1, 7, 8, 9, BLOCK - 64, BLOCK, 1 * MiB];
        for (const [i, size] of sizes.entries()) expect(await log.append(recordBytes(i, size))).toEqual({ sequence: i + 1 });
        await expect(log.append(Buffer.alloc(MiB + 1))).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
        await expect(log.append('text' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
        expect(log.stats.bytesWritten).toBeGreaterThan(0);
        const written = log.stats.bytesWritten;
        await log.close();
        await expect(log.append(Buffer.from('late'))).rejects.toMatchObject({ code: 'ERR_LOG_CLOSED' });
        expect(log.stats.bytesWritten).toBe(written + BLOCK); // only the closing batch
        const again = await openLog(dir, opts());
        const records = await replayAll(again);
        expect(records.map((r) => r.data.byteLength)).toEqual(sizes);
        records.forEach((r, i) => expect(Buffer.compare(r.data, recordBytes(i, sizes[i]!))).toBe(0));
        await again.close();
        await expect(openLog(path.join(dir, 'missing'), opts())).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(openLog(dir, opts({ segmentSize: 5000 }))).rejects.toBeInstanceOf(OdirectError);
      });
    }
  });
}
