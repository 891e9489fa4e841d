// Issue 6: reliability when the filesystem says no.
// - ENOSPC on small scratch filesystems this file makes itself (ext4 16 MiB; XFS 300 MiB,
//   filled with one big allocate()): writes fail with OdirectError ENOSPC, a failed extending
//   write (or allocate) leaves the size where it was, no atomic write is partial (every 64 KiB
//   region is entirely old or entirely new), and the file stays readable.
// - EIO after a filesystem shutdown (XFS_IOC_GOINGDOWN with NOLOGFLUSH) while writes are in
//   flight on both engines: every call settles within a bounded time, in-flight and new I/O fail
//   with EIO, close() succeeds, the process stays healthy, and the filesystem unmounts.
// Each scratch filesystem is removed in afterAll, also when a test failed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { AtomicWriteError, OdirectError, alignedBuffer, open, type DirectFile } from '../lib/index';
import { C, native } from '../lib/native';
import { makeScratchFs, ownsMount, removeScratchFs, type ScratchFs } from '../lib/scratch/scratchfs';
import { SHUTDOWN, shutdownScratchFs } from '../lib/scratch/shutdown';
import { ENGINES } from './helpers/engines';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const KiB = 1024;
const MiB = 1024 * KiB;
/** How long any single call may take to settle once the filesystem is shut down. */
const SETTLE_MS = 5_000;

// ---- helpers -----------------------------------------------------------------------------

/** Byte at file offset `pos` for writer generation `gen`: every offset and generation differ. */
function patternByte(pos: number, gen: number): number {
  return (Math.imul(pos >>> 2, 2654435761) >>> 24) ^ (pos & 3) ^ (gen * 29);
}

function patterned(pos: number, length: number, gen: number, misalign = 0): Buffer {
  const b = alignedBuffer(length + misalign).subarray(misalign, misalign + length);
  for (let i = 0; i < length; i++) b[i] = patternByte(pos + i, gen);
  return b;
}

/** [position, position+length) as stored: O_DIRECT on a fresh fd, no cache involved. */
function readDirect(file: string, position: number, length: number): Buffer {
  const fd = native.openSync(file, C.O_RDONLY | C.O_DIRECT, 0);
  try {
    const into = alignedBuffer(Math.max(4096, Math.ceil(length / 4096) * 4096));
    let done = 0;
    for (let i = 0; i < 64 && done < length; i++) {
      const n = native.preadv2Sync(fd, [into.subarray(done)], position + done, 0);
      if (n === 0) break;
      done += n;
    }
    return into.subarray(0, Math.min(done, length));
  } finally {
    native.closeSync(fd);
  }
}

function freeBytes(dir: string): number {
  const st = native.statfsSync(dir);
  return st.bfree * st.bsize; // root may use the reserved blocks too
}

function sizeOf(file: string): number {
  return fs.statSync(file).size;
}

/** Settles `call` within `ms`: its value, its error, or a timeout (never waits longer). */
async function settleWithin<T>(call: () => Promise<T>, ms: number): Promise<{ status: 'ok'; value: T; ms: number } | { status: 'error'; error: unknown; ms: number } | { status: 'timeout'; ms: number }> {
  const start = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    const outcome = await Promise.race([
      call().then(
        (value) => ({ status: 'ok' as const, value }),
        (error: unknown) => ({ status: 'error' as const, error }),
      ),
      timeout,
    ]);
    if (outcome === 'timeout') return { status: 'timeout', ms: Date.now() - start };
    return { ...outcome, ms: Date.now() - start };
  } finally {
    clearTimeout(timer);
  }
}

function codeOf(err: unknown): string {
  return err instanceof Error ? `${err.constructor.name} ${String((err as { code?: unknown }).code)}: ${err.message}` : String(err);
}

/** Expects `call` to reject with an OdirectError of `code`, and the file size not to change. */
async function expectFailsKeepingSize(what: string, file: string, f: DirectFile, call: () => Promise<unknown>, code: string) {
  const before = sizeOf(file);
  const knownBefore = f.size;
  const outcome = await settleWithin(call, 30_000);
  expect(outcome.status, `${what}: ${outcome.status === 'ok' ? JSON.stringify(outcome.value) : ''}`).toBe('error');
  const error = (outcome as { error: unknown }).error;
  expect(error, `${what}: ${codeOf(error)}`).toBeInstanceOf(OdirectError);
  expect((error as OdirectError).code, `${what}: ${codeOf(error)}`).toBe(code);
  // Soft: a size left wrong is reported, and the rest of the test still runs.
  expect.soft(sizeOf(file), `${what}: fs.statSync size after the failed call`).toBe(before);
  expect.soft(f.size, `${what}: DirectFile.size after the failed call`).toBe(knownBefore);
  return error as OdirectError;
}

/**
 * One scratch filesystem per describe block, removed in afterAll even when tests failed.
 * track(handle, path) closes the handle and deletes the file after each test, pass or fail,
 * so a failed test does not leave the next one a full filesystem.
 */
function ownScratch(kind: 'ext4' | 'xfs', sizeMiB: number, label: string) {
  const state: { scratch?: ScratchFs; track: (f: DirectFile, file: string) => DirectFile } = {
    track: (f, file) => {
      tracked.push([f, file]);
      return f;
    },
  };
  const tracked: Array<[DirectFile, string]> = [];
  beforeAll(async () => {
    state.scratch = await makeScratchFs({ kind, sizeMiB, label });
  });
  afterEach(async () => {
    for (const [f, file] of tracked.splice(0)) {
      await f.close().catch(() => undefined);
      fs.rmSync(file, { force: true });
    }
  });
  afterAll(async () => {
    if (state.scratch) await removeScratchFs(state.scratch);
  });
  return state;
}

// ---- ENOSPC ------------------------------------------------------------------------------

// Gated on the shared scratch set: that says loop devices, mkfs and mount work here.
describeOnFs('ext4', 'ENOSPC on a 16 MiB ext4 of our own', () => {
  const state = ownScratch('ext4', 16, 'rel-enospc-ext4');

  for (const engine of ENGINES) {
    it(`${engine}: writes fail with ENOSPC, failed extending calls leave the size, the file stays readable`, async () => {
      const mnt = state.scratch!.mountpoint!;
      const file = path.join(mnt, `fill-${engine}.bin`);
      const f = state.track(await open(file, { create: true, truncate: true, engine }), file);
      expect(f.engine).toBe(engine);
      const model = Buffer.alloc(32 * MiB);
      let size = 0;
      let enospc = 0;

      // Fill with ever smaller aligned appends: 1 MiB, 64 KiB, 4 KiB, each until ENOSPC.
      for (const chunk of [MiB, 64 * KiB, 4 * KiB]) {
        let failed = false;
        for (let i = 0; i < 1024 && !failed; i++) {
          const data = patterned(size, chunk, 1);
          const outcome = await settleWithin(() => f.write(data, size), 30_000);
          if (outcome.status === 'ok') {
            expect(outcome.value).toEqual({ bytesWritten: chunk, path: 'direct' });
            data.copy(model, size);
            size += chunk;
            continue;
          }
          expect(outcome.status).toBe('error');
          const error = (outcome as { error: unknown }).error;
          expect(error, codeOf(error)).toBeInstanceOf(OdirectError);
          expect((error as OdirectError).code, codeOf(error)).toBe('ENOSPC');
          expect((error as OdirectError).errno).toBe(28);
          expect(sizeOf(file), `size after a failed ${chunk}-byte append`).toBe(size);
          expect(f.size).toBe(size);
          enospc++;
          failed = true;
        }
        expect(failed, `${chunk}-byte appends never hit ENOSPC on a 16 MiB filesystem`).toBe(true);
      }
      expect(enospc).toBe(3);
      expect(size).toBeGreaterThan(8 * MiB);

      // Full: every kind of extending call fails with ENOSPC and leaves the size.
      await expectFailsKeepingSize('aligned append', file, f, () => f.write(patterned(size, 4096, 2), size), 'ENOSPC');
      await expectFailsKeepingSize('unaligned append (read-modify-write)', file, f, () => f.write(patterned(size + 3, 100, 2, 1), size + 3), 'ENOSPC');
      await expectFailsKeepingSize('writev append', file, f, () => f.writev([patterned(size, 4096, 2), patterned(size + 4096, 8192, 2)], size), 'ENOSPC');
      await expectFailsKeepingSize('dsync append', file, f, () => f.write(patterned(size, 65536, 2), size, { dsync: true }), 'ENOSPC');
      await expectFailsKeepingSize("cache: 'dontcache' append", file, f, () => f.write(patterned(size, 65536, 2), size, { cache: 'dontcache' }), 'ENOSPC');
      await expectFailsKeepingSize("cache: 'writethrough' append", file, f, () => f.write(patterned(size, 65536, 2), size, { cache: 'writethrough' }), 'ENOSPC');
      await expectFailsKeepingSize('append far past the end', file, f, () => f.write(patterned(size + 8 * MiB, 4096, 2), size + 8 * MiB), 'ENOSPC');
      await expectFailsKeepingSize('allocate(EOF, 64 KiB)', file, f, () => f.allocate(size, 64 * KiB), 'ENOSPC');
      // ext4 has no atomic writes at all: that answer comes first.
      const atomic = await settleWithin(() => f.writeAtomic(alignedBuffer(4096), size), 5_000);
      expect(atomic.status).toBe('error');
      expect((atomic as { error: unknown }).error).toBeInstanceOf(AtomicWriteError);
      expect(((atomic as { error: unknown }).error as OdirectError).code).toBe('EOPNOTSUPP');

      // Overwrites of allocated blocks still work on a full filesystem (aligned and not).
      const over = patterned(12 * 4096, 8192, 3);
      expect(await f.write(over, 12 * 4096)).toEqual({ bytesWritten: 8192, path: 'direct' });
      over.copy(model, 12 * 4096);
      const odd = patterned(777_777, 1000, 4, 3);
      expect(await f.write(odd, 777_777)).toEqual({ bytesWritten: 1000, path: 'direct' });
      odd.copy(model, 777_777);
      expect(sizeOf(file)).toBe(size);

      // The file stays readable, through the handle and from a fresh O_DIRECT fd.
      const back = alignedBuffer(size + 4096);
      expect(await f.read(back, 0)).toBe(size);
      expect(back.subarray(0, size).equals(model.subarray(0, size))).toBe(true);
      expect(readDirect(file, 0, size).equals(model.subarray(0, size))).toBe(true);
    });

    it(`${engine}: an allocate() that does not fit fails with ENOSPC and leaves the size`, async () => {
      const mnt = state.scratch!.mountpoint!;
      const file = path.join(mnt, `allocate-${engine}.bin`);
      const f = state.track(await open(file, { create: true, truncate: true, engine }), file);
      let size = 0;
      for (let i = 0; i < 64; i++) {
        const outcome = await settleWithin(() => f.write(alignedBuffer(MiB).fill(i), size), 30_000);
        if (outcome.status !== 'ok') break;
        size += MiB;
      }
      expect(sizeOf(file)).toBe(size);
      expect(freeBytes(mnt)).toBeLessThan(MiB);
      // Less than 1 MiB is left. ext4 allocates what it can before it says ENOSPC (and grows
      // i_size with it); like a failed extending write, the failed call must leave the size.
      await expectFailsKeepingSize('allocate(EOF, 1 MiB) with less than 1 MiB free', file, f, () => f.allocate(size, MiB), 'ENOSPC');
      await expectFailsKeepingSize('allocate(EOF + 1 MiB, 1 MiB)', file, f, () => f.allocate(size + MiB, MiB), 'ENOSPC');
    });
  }
});

describeOnFs('xfs', 'ENOSPC on a 300 MiB XFS of our own, filled with one big allocate()', () => {
  const state = ownScratch('xfs', 300, 'rel-enospc-xfs');
  const REGION = 64 * KiB;
  const REGIONS = 32;

  /** The content of region `r` after a successful write of generation `gen` (0: the pre-fill). */
  function regionData(r: number, gen: number): Buffer {
    const b = alignedBuffer(REGION);
    b.fill((r * 7 + gen * 31 + 1) & 0xff);
    b.writeUInt32LE(r, 0);
    b.writeUInt32LE(gen, 4);
    b.writeUInt32LE(r, REGION - 8);
    b.writeUInt32LE(gen, REGION - 4);
    return b;
  }

  for (const engine of ENGINES) {
    it(`${engine}: 64 KiB atomic writes until ENOSPC are never partial; failed appends leave the size`, async () => {
      const mnt = state.scratch!.mountpoint!;
      const file = path.join(mnt, `atomic-${engine}.bin`);
      const fillerFile = path.join(mnt, `filler-${engine}.bin`);
      const f = state.track(await open(file, { create: true, truncate: true, engine }), file);
      expect(f.capabilities.atomic.supported).toBe(true);
      expect(f.capabilities.atomic.unitMax).toBeGreaterThanOrEqual(REGION);

      // Regions pre-filled with a known pattern (generation 0), made durable.
      for (let r = 0; r < REGIONS; r++) await f.write(regionData(r, 0), r * REGION);
      await f.sync();
      const gen = new Array<number>(REGIONS).fill(0); // last successful generation per region; -1: never written

      // One big allocate() takes all but 4 MiB.
      const filler = state.track(await open(fillerFile, { create: true, truncate: true, engine }), fillerFile);
      const free = freeBytes(mnt);
      expect(free).toBeGreaterThan(200 * MiB);
      await filler.allocate(0, free - 4 * MiB);
      expect(freeBytes(mnt)).toBeLessThan(8 * MiB);

      // Rounds of atomic writes, 16 in flight: every region rewritten, 8 regions appended.
      let appendsFailed = 0;
      let overwritesFailed = 0;
      let succeeded = 0;
      for (let round = 1; round <= 40; round++) {
        const regions = sizeOf(file) / REGION;
        expect(Number.isInteger(regions)).toBe(true);
        const targets: number[] = [];
        for (let r = 0; r < regions + 8; r++) targets.push(r);
        let next = 0;
        const failures: string[] = [];
        const worker = async (): Promise<void> => {
          while (next < targets.length) {
            const r = targets[next++]!;
            const appending = r >= regions;
            const outcome = await settleWithin(() => f.writeAtomic(regionData(r, round), r * REGION), 30_000);
            if (outcome.status === 'ok') {
              if (outcome.value.bytesWritten !== REGION || outcome.value.path !== 'direct') failures.push(`region ${r}: ${JSON.stringify(outcome.value)}`);
              gen[r] = round;
              succeeded++;
            } else if (outcome.status === 'timeout') {
              failures.push(`region ${r}: did not settle in 30 s`);
            } else {
              const e = outcome.error;
              if (!(e instanceof AtomicWriteError) || e.code !== 'ENOSPC') failures.push(`region ${r}: ${codeOf(e)}`);
              if (appending) appendsFailed++;
              else overwritesFailed++;
              gen[r] ??= -1;
            }
          }
        };
        await Promise.all(Array.from({ length: 16 }, worker));
        expect(failures).toEqual([]);
        if (overwritesFailed > 0 && appendsFailed > 0) break;
      }
      expect(appendsFailed, 'no atomic append hit ENOSPC').toBeGreaterThan(0);
      expect(overwritesFailed, 'no atomic overwrite hit ENOSPC (copy-on-write needs room)').toBeGreaterThan(0);
      expect(succeeded).toBeGreaterThan(REGIONS);

      // The size is exactly the end of the last region written: failed appends left nothing behind.
      let lastWritten = -1;
      for (let r = 0; r < gen.length; r++) if ((gen[r] ?? -1) >= 0) lastWritten = r;
      const size = sizeOf(file);
      expect(size).toBe((lastWritten + 1) * REGION);
      expect(f.size).toBe(size);

      // Take what copy-on-write left free (less than one region), then plain extending writes
      // and allocate() fail too and leave the size.
      let fillerSize = filler.size;
      for (const chunk of [MiB, 64 * KiB, 4 * KiB]) {
        for (let i = 0; i < 256; i++) {
          const outcome = await settleWithin(() => filler.allocate(fillerSize, chunk), 30_000);
          if (outcome.status !== 'ok') break;
          fillerSize += chunk;
        }
      }
      await expectFailsKeepingSize('1 MiB append', file, f, () => f.write(alignedBuffer(MiB).fill(9), size), 'ENOSPC');
      // An unaligned append goes through the page cache, and XFS's buffered path first reclaims
      // speculative and copy-on-write reservations (blockgc), so it may find room: then it must
      // land whole; if not, fail with ENOSPC and leave the size.
      const unaligned = await f.write(Buffer.alloc(3000, 9), size + 100).then(
        (r) => r,
        (e: unknown) => e as OdirectError,
      );
      if (unaligned instanceof Error) {
        expect(unaligned.code).toBe('ENOSPC');
        expect(sizeOf(file)).toBe(size);
      } else {
        expect(unaligned).toEqual({ bytesWritten: 3000, path: 'buffered' });
        const tail = readDirect(file, size, 3100);
        expect(tail.subarray(0, 100).every((b) => b === 0) && tail.subarray(100).every((b) => b === 9)).toBe(true);
        await f.truncate(size); // the checks below are about the regions
      }
      await expectFailsKeepingSize('allocate(EOF, 1 MiB)', file, f, () => f.allocate(size, MiB), 'ENOSPC');

      // Every region is entirely old or entirely new: exactly what its last successful write left.
      const back = readDirect(file, 0, size);
      expect(back.byteLength).toBe(size);
      let old = 0;
      let rewritten = 0;
      for (let r = 0; r * REGION < size; r++) {
        const g = gen[r] ?? -1;
        const got = back.subarray(r * REGION, (r + 1) * REGION);
        const want = g >= 0 ? regionData(r, g) : Buffer.alloc(REGION);
        if (!got.equals(want)) {
          throw new Error(`region ${r}: expected generation ${g} throughout, found generation ${got.readUInt32LE(4)} at its start and ${got.readUInt32LE(REGION - 4)} at its end`);
        }
        if (g === 0) old++;
        else rewritten++;
      }
      expect(old + rewritten).toBe(size / REGION);
      // Readable through the handle as well (the same bytes).
      const viaHandle = alignedBuffer(size);
      expect(await f.read(viaHandle, 0)).toBe(size);
      expect(viaHandle.equals(back)).toBe(true);
    });
  }
});

// ---- EIO after shutdown --------------------------------------------------------------------

describeOnFs('xfs', 'EIO after a filesystem shutdown with I/O in flight', (healthyMnt) => {
  const scratches = new Map<'xfs' | 'ext4', ScratchFs>();
  const opened: DirectFile[] = [];
  let healthyDir: string;

  beforeAll(async () => {
    healthyDir = uniqueDir(healthyMnt, 'reliability-healthy');
    scratches.set('xfs', await makeScratchFs({ kind: 'xfs', sizeMiB: 300, label: 'rel-shutdown-xfs' }));
    scratches.set('ext4', await makeScratchFs({ kind: 'ext4', sizeMiB: 64, label: 'rel-shutdown-ext4' }));
  });

  afterAll(async () => {
    for (const f of opened.splice(0)) await f.close().catch(() => undefined);
    const errors: unknown[] = [];
    for (const s of scratches.values()) await removeScratchFs(s).catch((e: unknown) => errors.push(e));
    if (errors.length) throw errors[0];
  });

  for (const kind of ['xfs', 'ext4'] as const) {
    it(`${kind}: in-flight and new I/O fail with EIO promptly, close() succeeds, the process stays healthy`, async () => {
      const scratch = scratches.get(kind)!;
      const mnt = scratch.mountpoint!;
      const files = new Map<string, DirectFile>();
      for (const engine of ENGINES) {
        const f = await open(path.join(mnt, `busy-${engine}.bin`), { create: true, engine });
        opened.push(f);
        await f.allocate(0, 8 * MiB); // overwrites inside, appends past it
        files.set(engine, f);
      }

      interface WriteRecord {
        engine: string;
        issuedAfterShutdown: boolean;
        status: 'ok' | 'error' | 'timeout';
        code?: string;
        ms: number;
        settledAfterShutdownMs?: number;
      }
      const records: WriteRecord[] = [];
      let shutdownAt = 0; // 0 until the ioctl returned
      let stop = false;
      let inFlight = 0;
      let completedBefore = 0;

      // 8 writers per engine, each with one write outstanding at all times until it sees an error.
      const writers: Promise<void>[] = [];
      for (const [engine, f] of files) {
        for (let w = 0; w < 8; w++) {
          writers.push(
            (async () => {
              for (let i = 0; i < 20_000 && !stop; i++) {
                const kindOfWrite = (i + w) % 4;
                const position = kindOfWrite === 3 ? 8 * MiB + ((w * 64 + i) % 512) * 64 * KiB : ((w * 997 + i * 13) % 2000) * 4096;
                const data = kindOfWrite === 2 ? Buffer.alloc(1000, w) : alignedBuffer(64 * KiB).fill(w);
                const issuedAfterShutdown = shutdownAt !== 0;
                inFlight++;
                const outcome = await settleWithin(() => f.write(data, position + (kindOfWrite === 2 ? 5 : 0), { dsync: kindOfWrite === 1 }), SETTLE_MS + 5_000);
                inFlight--;
                const record: WriteRecord = { engine, issuedAfterShutdown, status: outcome.status, ms: outcome.ms };
                if (outcome.status === 'error') record.code = String((outcome.error as { code?: unknown }).code ?? codeOf(outcome.error));
                if (shutdownAt) record.settledAfterShutdownMs = Date.now() - shutdownAt;
                else completedBefore++;
                records.push(record);
                if (outcome.status !== 'ok') return;
              }
            })(),
          );
        }
      }

      // Let the writers get going, then shut the filesystem down under them.
      for (let i = 0; i < 200 && completedBefore < 50 * files.size; i++) await new Promise((r) => setTimeout(r, 10));
      expect(completedBefore).toBeGreaterThan(0);
      const inFlightAtShutdown = inFlight;
      await shutdownScratchFs(scratch, SHUTDOWN.NOLOGFLUSH);
      shutdownAt = Date.now();
      expect(inFlightAtShutdown).toBeGreaterThan(0);

      const drained = await settleWithin(() => Promise.all(writers), SETTLE_MS + 10_000);
      stop = true;
      expect(drained.status, 'writers did not all stop after the shutdown').toBe('ok');

      // Nothing hung; whatever failed, failed with EIO; everything issued after the shutdown failed.
      const bad = records.filter((r) => r.status === 'timeout' || (r.status === 'error' && r.code !== 'EIO'));
      expect(bad).toEqual([]);
      const late = records.filter((r) => r.settledAfterShutdownMs !== undefined && r.settledAfterShutdownMs > SETTLE_MS);
      expect(late).toEqual([]);
      const after = records.filter((r) => r.issuedAfterShutdown);
      expect(after.filter((r) => r.status !== 'error')).toEqual([]);
      for (const engine of files.keys()) {
        // Every writer stopped on an EIO.
        expect(records.filter((r) => r.engine === engine && r.code === 'EIO').length, `${engine}: writers that saw EIO`).toBe(8);
      }

      // New calls of every kind fail with EIO (or, for the read-only answer of statx, succeed), promptly.
      for (const [engine, f] of files) {
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['write', () => f.write(alignedBuffer(4096), 0)],
          ['write dsync', () => f.write(alignedBuffer(4096), 4096, { dsync: true })],
          ['writev', () => f.writev([alignedBuffer(4096), alignedBuffer(4096)], 8192)],
          ['unaligned write', () => f.write(Buffer.alloc(100, 1), 12_345)],
          ['append', () => f.write(alignedBuffer(4096), 64 * MiB)],
          ["cache: 'dontcache' write", () => f.write(alignedBuffer(4096), 0, { cache: 'dontcache' })],
          ['read', () => f.read(alignedBuffer(4096), 0)],
          ['unaligned read', () => f.read(Buffer.alloc(100), 3)],
          ['sync', () => f.sync()],
          ['sync dataOnly', () => f.sync({ dataOnly: true })],
          ['truncate', () => f.truncate(4096)],
          ['allocate', () => f.allocate(16 * MiB, 4096)],
        ];
        if (kind === 'xfs') calls.push(['writeAtomic', () => f.writeAtomic(alignedBuffer(4096), 0)]);
        for (const [name, call] of calls) {
          const outcome = await settleWithin(call, SETTLE_MS);
          expect(outcome.status, `${engine} ${name} after shutdown`).toBe('error');
          const error = (outcome as { error: unknown }).error;
          expect(error, `${engine} ${name}: ${codeOf(error)}`).toBeInstanceOf(OdirectError);
          expect((error as OdirectError).code, `${engine} ${name}: ${codeOf(error)}`).toBe('EIO');
        }
      }
      const reopen = await settleWithin(() => open(path.join(mnt, 'new-after-shutdown.bin'), { create: true }), SETTLE_MS);
      expect(reopen.status).toBe('error');
      expect(((reopen as { error: unknown }).error as OdirectError).code).toBe('EIO');

      // close() succeeds (and a second close is a no-op).
      for (const [engine, f] of files) {
        const closed = await settleWithin(() => f.close(), SETTLE_MS);
        // Soft: if close() fails, the health and unmount checks below still run.
        expect.soft(closed.status, `${engine} close() after shutdown: ${closed.status === 'error' ? codeOf(closed.error) : ''}`).toBe('ok');
        expect.soft((await settleWithin(() => f.close(), SETTLE_MS)).status, `${engine} second close()`).toBe('ok');
      }

      // The process is healthy: both engines still write and read on another filesystem.
      for (const engine of ENGINES) {
        const healthy = path.join(healthyDir, `after-${kind}-${engine}.bin`);
        const h = await open(healthy, { create: true, truncate: true, engine });
        const data = patterned(0, 256 * KiB, 5);
        expect(await h.write(data, 0)).toEqual({ bytesWritten: 256 * KiB, path: 'direct' });
        await h.write(patterned(300_001, 999, 6, 1), 300_001);
        await h.sync();
        const back = alignedBuffer(256 * KiB);
        expect(await h.read(back, 0)).toBe(256 * KiB);
        expect(back.equals(data)).toBe(true);
        await h.close();
        expect(sizeOf(healthy)).toBe(300_001 + 999);
      }

      // And the shut-down filesystem unmounts.
      await removeScratchFs(scratch);
      expect(ownsMount(scratch)).toBe(false);
      expect(fs.existsSync(scratch.dir)).toBe(false);
    });
  }
});
