// Issue 6: fuzz the public API with random (seeded, bounded) sequences of valid and
// invalid calls against an in-memory model of the file (a Buffer and a size).
// - every valid call's result and bytes match the model;
// - every invalid call rejects (never throws synchronously) with a typed error and the
//   expected code, and changes nothing;
// - up to 16 calls with disjoint byte ranges run at once; truncate runs alone;
// - after batches now and then, and always at the end, the whole file (read back with
//   O_DIRECT on a fresh fd) and fs.statSync(file).size equal the model.
// Runs on XFS and ext4 with every engine of ODIRECT_TEST_ENGINES. At the end, deterministic
// versions of what the fuzzer found ("pinned").
// Pinned findings: test/fuzz-pinned.test.ts. The model: test/fuzz/model.ts; the calls:
// test/fuzz/generators.ts; the knobs below: test/fuzz/config.ts.
//
// Environment:
//   ODIRECT_FUZZ_OPS=20000         calls per run, split between the filesystem/engine pairs
//   ODIRECT_FUZZ_SEED=0x…          replay a run (the seed is in the test name); the calls are
//                                  fixed by the seed, only the kernel's completion order varies
// For bisecting a failure:
//   ODIRECT_FUZZ_SERIAL=1          the same calls one at a time (is it a concurrency bug?)
//   ODIRECT_FUZZ_VERIFY_EVERY=N    compare the whole file every N batches (default 25); 1 with
//                                  SERIAL compares after every call and names the one that broke it
//   ODIRECT_FUZZ_TRACE=1           print every call to stderr before it is made
//   ODIRECT_FUZZ_PAGE_DISJOINT=1   calls in one batch use disjoint 4 KiB pages, not just bytes
//   ODIRECT_FUZZ_READ_PAST_EOF=0   reads stay inside the block that holds EOF (see genRead)
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OdirectError, alignedBuffer, open, type DirectFile } from '../lib/index';
import { native } from '../lib/native';
import { ENGINES } from './helpers/engines';
import { Rng } from './helpers/random';
import { describeOnFs, uniqueDir } from './helpers/scratch';
import { BASE_SEED, FILESYSTEMS, MAX_IN_FLIGHT, MiB, OPS_PER_COMBO, PAGE, SECTOR, SERIAL, TRACE, VERIFY_EVERY, comboSeed, hex } from './fuzz/config';
import { expectRejection, genBatch, type FuzzContext } from './fuzz/generators';
import { Model, verifyFile } from './fuzz/model';

interface RunSummary {
  ops: number;
  valid: number;
  invalid: number;
  batches: number;
  verifications: number;
  maxInFlight: number;
  byKind: Record<string, number>;
}

async function fuzz(ctx: FuzzContext, totalOps: number): Promise<RunSummary> {
  const summary: RunSummary = { ops: 0, valid: 0, invalid: 0, batches: 0, verifications: 0, maxInFlight: 0, byKind: {} };
  const history: string[] = [];
  // Follows the calls in the order they complete (ctx.model runs ahead: it has the whole batch as
  // soon as it is planned). Equal to ctx.model between batches.
  const shadow = new Model();
  const recent = (): string => `recent batches:\n  ${history.join('\n  ')}`;
  const maxBatches = totalOps * 2; // a bound only: every batch but a rare empty one has an op
  while (summary.ops < totalOps && summary.batches < maxBatches) {
    const batch = genBatch(ctx, totalOps - summary.ops);
    const n = summary.batches++;
    if (batch.length === 0) continue;
    history.push(`batch ${n}: ${batch.map((p) => p.op.desc).join(' | ')}`);
    if (history.length > 8) history.shift();
    summary.maxInFlight = Math.max(summary.maxInFlight, batch.length);
    if (TRACE) process.stderr.write(`[fuzz] batch ${n}:\n${batch.map((p) => `  ${p.op.desc}\n`).join('')}`);
    const results: PromiseSettledResult<void>[] = [];
    if (SERIAL) {
      for (const p of batch) {
        results.push(...(await Promise.allSettled([p.op.run()])));
        for (const e of p.effects) e(shadow);
        // Serial and verifying every batch: verify after every call, to name the one that broke it.
        if (VERIFY_EVERY === 1) await verifyFile(ctx.file, shadow, `after ${p.op.desc} in batch ${n}`);
      }
    } else {
      results.push(...(await Promise.allSettled(batch.map((p) => p.op.run()))));
      for (const p of batch) for (const e of p.effects) e(shadow);
    }
    const failures = results.flatMap((r, i) =>
      r.status === 'rejected'
        ? [`  ${batch[i]!.op.valid ? 'valid' : 'invalid'}: ${batch[i]!.op.desc}: ${String((r.reason as Error)?.message ?? r.reason)}`]
        : [],
    );
    if (failures.length) {
      const st = native.statxSync(ctx.file);
      const now = `statx now: size ${st.size}, dio_mem_align ${st.dioMemAlign}, dio_offset_align ${st.dioOffsetAlign}, dio_read_offset_align ${st.dioReadOffsetAlign}`;
      throw new Error(`batch ${n} (${batch.length} ops${SERIAL ? ', serial' : ' concurrently'}) failed:\n${failures.join('\n')}\n${now}\n${recent()}`);
    }
    for (const { op } of batch) {
      summary.ops++;
      if (op.valid) summary.valid++;
      else summary.invalid++;
      const kind = op.desc.replace(/\(.*$/, '').replace(/ .*$/, '');
      summary.byKind[kind] = (summary.byKind[kind] ?? 0) + 1;
    }
    if (shadow.size !== ctx.model.size) throw new Error(`internal: shadow model size ${shadow.size}, model ${ctx.model.size}`);
    // Only the main handle changes the size: it must know it exactly.
    if (ctx.h.main.size !== ctx.model.size) {
      throw new Error(`after batch ${n}: handle size ${ctx.h.main.size}, model size ${ctx.model.size}\n${recent()}`);
    }
    if (n % VERIFY_EVERY === VERIFY_EVERY - 1) {
      await verifyFile(ctx.file, ctx.model, `after batch ${n}`).catch((err: Error) => {
        throw new Error(`${err.message}\n${recent()}`);
      });
      summary.verifications++;
    }
  }
  await verifyFile(ctx.file, ctx.model, 'at the end');
  summary.verifications++;
  return summary;
}

for (const fsName of FILESYSTEMS) {
  describeOnFs(fsName, `fuzz on ${fsName}`, (mnt) => {
    let dir: string;
    const opened: DirectFile[] = [];

    beforeAll(() => {
      dir = uniqueDir(mnt, 'fuzz');
    });

    afterAll(async () => {
      for (const f of opened) await f.close().catch(() => undefined);
    });

    for (const engine of ENGINES) {
      const seed = comboSeed(BASE_SEED, `${fsName}/${engine}`);
      const title = `${fsName}/${engine}: ${OPS_PER_COMBO} random valid and invalid calls match the model ` +
        `(ODIRECT_FUZZ_SEED=${hex(BASE_SEED)}, stream ${hex(seed)})`;
      it(title, async () => {
        const file = path.join(dir, `fuzz-${engine}.bin`);
        const main = await open(file, { create: true, truncate: true, engine });
        opened.push(main);
        const strict = await open(file, { engine, alignment: 'strict' });
        opened.push(strict);
        const readOnly = await open(file, { engine, readOnly: true });
        opened.push(readOnly);
        for (const f of [main, strict, readOnly]) {
          expect(f.engine).toBe(engine);
          expect(f.direct).toBe(true);
        }
        const caps = main.capabilities;
        // The generator's notion of "aligned" is the file's own rule.
        expect(caps.direct).toMatchObject({ memAlign: SECTOR, offsetAlign: SECTOR, readOffsetAlign: SECTOR });
        expect(caps.atomic.supported).toBe(fsName === 'xfs');
        const rng = new Rng(seed);
        const pool = Buffer.alloc(MiB);
        for (let i = 0; i < pool.byteLength; i += 4) pool.writeUInt32LE(rng.u32(), i);
        const ctx: FuzzContext = { rng, model: new Model(), h: { main, strict, readOnly }, caps, fsName, file, pool, batchStartSize: 0 };

        const summary = await fuzz(ctx, OPS_PER_COMBO);
        expect(summary.ops).toBeGreaterThanOrEqual(OPS_PER_COMBO);
        if (OPS_PER_COMBO >= 1000) {
          // The mix really is a mix, and batches really fill up (small runs may not).
          expect(summary.valid).toBeGreaterThan(OPS_PER_COMBO / 3);
          expect(summary.invalid).toBeGreaterThan(OPS_PER_COMBO / 10);
          expect(summary.maxInFlight).toBe(MAX_IN_FLIGHT);
        }

        // Closed handles: every call is EBADF, a second close is a no-op, nothing changes.
        await readOnly.close();
        await strict.close();
        await main.close();
        await main.close();
        const closedCalls: Array<[string, () => Promise<unknown>]> = [
          ['write', () => main.write(alignedBuffer(PAGE), 0)],
          ['writev', () => main.writev([alignedBuffer(PAGE)], 0)],
          ['writeAtomic', () => main.writeAtomic(alignedBuffer(PAGE), 0)],
          ['read', () => main.read(alignedBuffer(PAGE), 0)],
          ['read (read-only handle)', () => readOnly.read(alignedBuffer(PAGE), 0)],
          ['sync', () => main.sync()],
          ['truncate', () => main.truncate(0)],
          ['allocate', () => main.allocate(0, PAGE)],
          ['write (strict handle)', () => strict.write(alignedBuffer(PAGE), 0)],
        ];
        for (const [name, call] of closedCalls) {
          await expectRejection(`closed ${name}`, call, { cls: OdirectError, code: 'EBADF' });
        }
        await verifyFile(ctx.file, ctx.model, 'after close');
        // Report what ran (vitest prints it with --reporter=verbose; useful when tuning the mix).
        process.stdout.write(`[fuzz ${fsName}/${engine}] seed ${hex(BASE_SEED)}: ${JSON.stringify(summary)}\n`);
      }, 120_000);
    }
  });
}
