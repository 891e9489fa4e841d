// Issue 6: verify-atomic's checks and the crash cycles, on real loop-mounted
// XFS (atomic) and ext4 (plain dsync writes). Each crash run makes its own
// scratch filesystem: the shutdown ioctl takes a filesystem down for good.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probe } from '../lib/probe';
import { makeScratchFs, removeScratchFs, scratchAvailable, type ScratchFs } from '../lib/scratch/scratchfs';
import { shutdownScratchFs } from '../lib/scratch/shutdown';
import { buildAtomicOverlap } from '../bench/src/contenders/cref';
import { hasSoftwareAtomicWrites } from '../lib/policies/atomic-overlap';
import { checkRegion, classifyRead, fillRegion } from '../lib/verify/blocks';
import { runCrashCycles } from '../lib/verify/crash';
import { parseVerifyArgs } from '../lib/verify';
import { checkAtomicRules } from '../lib/verify/rules';
import { scratchTarget } from '../lib/verify/target';
import { huntRegionSize, huntTornWrites } from '../lib/verify/torn';
import { describeOnFs, requireLoop } from './helpers/scratch';

const CYCLES = Number(process.env.ODIRECT_CRASH_CYCLES ?? 20);

describe('self-describing regions', () => {
  it('a region is whole, torn or corrupt, and the checker tells which', () => {
    const a = Buffer.alloc(8192);
    fillRegion(a, 3, 7);
    expect(checkRegion(a, 3)).toEqual({ kind: 'whole', gen: 7 });
    const b = Buffer.alloc(8192);
    fillRegion(b, 3, 8);
    const torn = Buffer.concat([a.subarray(0, 4096), b.subarray(4096)]);
    expect(checkRegion(torn, 3)).toEqual({ kind: 'torn', gens: [7, 8] });
    const flipped = Buffer.from(a);
    flipped[1000] ^= 1;
    expect(checkRegion(flipped, 3)).toMatchObject({ kind: 'corrupt', sector: 1, why: 'checksum mismatch' });
    expect(checkRegion(a, 4)).toMatchObject({ kind: 'corrupt', why: 'belongs to another region' });
    expect(checkRegion(Buffer.alloc(8192), 3)).toEqual({ kind: 'empty' });
  });

  it('a bad read is classified torn, zero, stale or corrupt', () => {
    const a = Buffer.alloc(8192);
    fillRegion(a, 3, 7);
    expect(classifyRead(a, 3)).toEqual({ kind: 'whole', gen: 7 });
    const b = Buffer.alloc(8192);
    fillRegion(b, 3, 8);
    expect(classifyRead(Buffer.concat([a.subarray(0, 4096), b.subarray(4096)]), 3)).toEqual({ kind: 'torn', gens: [7, 8] });
    expect(classifyRead(Buffer.alloc(8192), 3)).toEqual({ kind: 'zero', sectors: 16 });
    expect(classifyRead(Buffer.concat([a.subarray(0, 4096), Buffer.alloc(4096)]), 3)).toEqual({ kind: 'zero', sectors: 8 });
    // Valid sectors of another region: stale blocks, not a bad checksum.
    expect(classifyRead(a, 4)).toMatchObject({ kind: 'stale', why: 'sector 0 holds sector 0 of region 3, generation 7' });
    // Data that is not the hunt's at all: the old contents of blocks freed and reused.
    const foreign = Buffer.from(a);
    foreign.fill(0x5a, 4096, 4608);
    expect(classifyRead(foreign, 3)).toMatchObject({ kind: 'stale', why: "sector 8 holds data that is not the hunt's (no magic)" });
    // The hunt's own sector with a bad checksum: corrupt, whatever else the read holds.
    const flipped = Buffer.from(a);
    flipped[1000] ^= 1;
    expect(classifyRead(flipped, 3)).toMatchObject({ kind: 'corrupt', sector: 1, why: 'checksum mismatch' });
    flipped.fill(0, 4096);
    expect(classifyRead(flipped, 3)).toMatchObject({ kind: 'corrupt', sector: 1 });
  });
});

describeOnFs('xfs', 'verify-atomic checks on XFS', (mnt) => {
  it('the kernel keeps every atomic-write rule and every valid size reads back', async () => {
    const report = await checkAtomicRules(mnt, await probe(mnt));
    expect(report.rules.map((r) => [r.rule, r.got, r.unchanged])).toEqual([
      ['length not a power of two', 'EINVAL', true],
      ['offset not naturally aligned', 'EINVAL', true],
      ['length above unitMax', 'EINVAL', true],
      ['length below unitMin', 'EINVAL', true],
      ['two segments', 'EINVAL', true],
      ['buffered (not O_DIRECT) fd', 'EOPNOTSUPP', true],
    ]);
    expect(report.sizes.map((s) => s.size)).toEqual([4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576]);
    expect(report.sizes.every((s) => s.ok)).toBe(true);
  });

  it('this XFS writes atomically in software (CoW), so overlapping atomic writes are ordered', async () => {
    const caps = await probe(mnt);
    expect(caps.device?.atomicWriteUnitMax).toBe(0); // a loop device has no hardware atomic unit
    expect(hasSoftwareAtomicWrites(caps)).toBe(true);
  });

  // Few regions and more writers than regions: atomic writes to one region overlap all the time.
  // Without the ordering of overlapping software atomic writes (docs/xfs-atomic-overlap.md; the
  // policy mutated away) this hunt read 21 zero regions in 4,817 reads through odirect in 8 s,
  // and 19 zero and 17 stale in 6,202 reads in 10 s.
  const HUNT = { seconds: 10, regions: 2, writers: 6, readers: 4 };

  it(`an ${HUNT.seconds}-second torn-write hunt through odirect, ${HUNT.writers} writers on ${HUNT.regions} regions: not one bad read`, async () => {
    const caps = await probe(mnt);
    const report = await huntTornWrites(mnt, caps, { ...HUNT, path: 'library' });
    console.log(`torn hunt (library): ${JSON.stringify(report)}`);
    expect(report.regionSize).toBe(65536);
    expect(report.writes).toBeGreaterThan(200); // ordered writes to 2 regions: about 1,000 under the full suite's load
    expect(report.reads).toBeGreaterThan(500);
    // Atomicity: no read shows two generations, zeros, stale blocks or a bad sector.
    expect({ torn: report.torn, zero: report.zero, stale: report.stale, corrupt: report.corrupt }, report.examples.join('; ')).toEqual({
      torn: 0,
      zero: 0,
      stale: 0,
      corrupt: 0,
    });
  });

  it('verify-atomic --json: one object with the verdict and both hunts, each with every class counted', () => {
    const cli = path.join(__dirname, '..', 'dist', 'cli.js');
    if (!fs.existsSync(cli)) throw new Error('dist/ is missing: npm test builds it first');
    const r = spawnSync(process.execPath, [cli, 'verify-atomic', mnt, '--seconds', '1', '--regions', '2', '--writers', '3', '--json'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const report = JSON.parse(r.stdout) as {
      verdict: string;
      hunt: Record<'raw' | 'library', Record<'reads' | 'writes' | 'torn' | 'zero' | 'stale' | 'corrupt' | 'regions' | 'writers', number>>;
    };
    for (const p of ['raw', 'library'] as const) {
      expect(Object.keys(report.hunt[p])).toEqual(expect.arrayContaining(['reads', 'writes', 'torn', 'zero', 'stale', 'corrupt']));
      expect(report.hunt[p]).toMatchObject({ regions: 2, writers: 3 });
      expect(report.hunt[p].reads).toBeGreaterThan(0);
    }
    expect(report.hunt.library).toMatchObject({ torn: 0, zero: 0, stale: 0, corrupt: 0 });
    expect(report.verdict).toMatch(/^verdict: PASS: atomic writes through odirect .* were all or nothing/);
    expect(report.verdict).toMatch(/kernel: the raw path with overlapping writers (was clean|read \d+)/);
    expect(r.status, r.stderr).toBe(0);
  });

  it('the C reproducer builds, runs, and with writes to one region serialised reads nothing bad', async () => {
    const binary = await buildAtomicOverlap('cc');
    const run = (extra: string[]) => {
      const file = path.join(mnt, `overlap-${process.pid}-${extra.length}`);
      try {
        const r = spawnSync(binary, ['--file', file, '--seconds', '2', '--regions', '2', '--writers', '6', ...extra], {
          encoding: 'utf8',
          timeout: 30_000,
        });
        expect(r.status, r.stderr + r.stdout).toBe(0);
        return JSON.parse(r.stdout) as Record<string, number>;
      } finally {
        fs.rmSync(file, { force: true });
      }
    };
    const raw = run([]);
    console.log(`atomic_overlap raw: ${JSON.stringify(raw)}`);
    // Under the load of the whole suite a 2 s run made about 1,000 reads: the bar says it ran, not how fast.
    expect(raw.reads).toBeGreaterThan(100);
    const serialised = run(['--serialize']);
    expect(serialised.reads).toBeGreaterThan(100);
    expect(serialised).toMatchObject({ torn: 0, zero: 0, stale: 0, corrupt: 0, badAtEnd: 0 });
  });
});

describe('verify-atomic arguments', () => {
  it('hunt parameters are options; bad ones are refused', () => {
    expect(parseVerifyArgs(['/mnt', '--regions', '4', '--writers', '4', '--readers', '4'])).toMatchObject({
      path: '/mnt',
      regions: 4,
      writers: 4,
      readers: 4,
    });
    // No PATH: a scratch filesystem, as for --crash.
    const defaults = parseVerifyArgs([]);
    expect(defaults).toMatchObject({ regions: 4, writers: 4, readers: 4, scratchFs: 'xfs' });
    expect((defaults as { path?: string }).path).toBeUndefined();
    expect(parseVerifyArgs(['/mnt', '--regions', '0'])).toBe('--regions must be an integer from 1 to 1024');
    expect(parseVerifyArgs(['/mnt', '--writers', '2.5'])).toBe('--writers must be an integer from 1 to 1024');
  });
});

describeOnFs('ext4', 'verify-atomic rules check cleans up', (mnt) => {
  // The O_DIRECT open succeeds and the second (buffered) open fails with EMFILE under a
  // lowered RLIMIT_NOFILE: the first fd and the test file must still go.
  it('leaks neither the first fd nor its file when the second open fails', () => {
    const dir = fs.mkdtempSync(path.join(mnt, 'rules-open-'));
    const child = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'rules-second-open-child.cjs'), dir], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const out = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}');
    expect(out).toEqual({ code: 'EMFILE', leaked: [], left: [] });
    expect(fs.readdirSync(dir)).toEqual([]);
    fs.rmSync(dir, { recursive: true });
  });
});

describeOnFs('ext4', 'verify-atomic checks on ext4', (mnt) => {
  it('refuses atomic writes with EOPNOTSUPP and writes nothing', async () => {
    const report = await checkAtomicRules(mnt, await probe(mnt));
    expect(report.rules).toEqual([
      { rule: 'filesystem without atomic writes', expected: 'EOPNOTSUPP', got: 'EOPNOTSUPP', unchanged: true, ok: true },
    ]);
  });
});

const canScratch = scratchAvailable();
const crashDescribe = canScratch.ok || requireLoop() ? describe : describe.skip;

crashDescribe(`crash cycles${canScratch.ok ? '' : ` [skipped: ${canScratch.reason}]`}`, () => {
  const made: ScratchFs[] = [];
  const scratch = async (kind: 'xfs' | 'ext4') => {
    const s = await makeScratchFs({ kind, sizeMiB: kind === 'xfs' ? 320 : 64, label: `crash-${kind}` });
    made.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of made) await removeScratchFs(s);
  });

  it(`XFS, atomic dsync writes: ${CYCLES} cycles, 0 lost, 0 torn`, async () => {
    const s = await scratch('xfs');
    const caps = await probe(s.mountpoint!);
    const report = await runCrashCycles(scratchTarget(s), { cycles: CYCLES, atomic: true, regionSize: huntRegionSize(caps) });
    console.log(`XFS crash: ${JSON.stringify(report)}`);
    expect(report.cycles).toBe(CYCLES);
    expect(report.acknowledged).toBeGreaterThan(CYCLES * 10);
    expect(report.failedAfterShutdown).toBeGreaterThan(0); // writes really were in flight at each shutdown
    expect(report).toMatchObject({ lost: 0, torn: 0, corrupt: 0 });
  });

  it(`ext4, plain dsync writes: ${CYCLES} cycles, 0 lost, 0 torn`, async () => {
    const s = await scratch('ext4');
    const report = await runCrashCycles(scratchTarget(s), { cycles: CYCLES, atomic: false, regionSize: 4096 });
    console.log(`ext4 crash: ${JSON.stringify(report)}`);
    expect(report.cycles).toBe(CYCLES);
    expect(report.acknowledged).toBeGreaterThan(CYCLES * 10);
    expect(report).toMatchObject({ lost: 0, torn: 0, corrupt: 0 });
  });

  it(`XFS, atomic dsync writes, 8 writers overlapping on 4 regions: ${CYCLES} cycles, 0 lost, 0 torn`, async () => {
    const s = await scratch('xfs');
    const caps = await probe(s.mountpoint!);
    const report = await runCrashCycles(scratchTarget(s), {
      cycles: CYCLES,
      atomic: true,
      regionSize: huntRegionSize(caps),
      regions: 4,
      writers: 8,
      overlap: true,
    });
    console.log(`XFS crash, overlapping writers: ${JSON.stringify(report)}`);
    expect(report.cycles).toBe(CYCLES);
    expect(report.acknowledged).toBeGreaterThan(CYCLES * 10);
    expect(report.failedAfterShutdown).toBeGreaterThan(0);
    expect(report).toMatchObject({ lost: 0, torn: 0, corrupt: 0 });
  });

  it('the check can fail: without dsync, XFS loses acknowledged atomic writes (unlogged CoW remaps)', async () => {
    const s = await scratch('xfs');
    const caps = await probe(s.mountpoint!);
    const report = await runCrashCycles(scratchTarget(s), {
      cycles: 3,
      atomic: true,
      regionSize: huntRegionSize(caps),
      dsync: false,
    });
    console.log(`XFS crash without dsync: ${JSON.stringify({ ...report, examples: report.examples.length })}`);
    expect(report.lost).toBeGreaterThan(0);
    expect(report.torn).toBe(0); // lost, but still never torn
  });

  it('the shutdown ioctl is refused for a mountpoint not on the scratch loop, and nothing is shut down', async () => {
    const s = await scratch('ext4');
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-not-a-mount-'));
    try {
      // The loop and image are ours, the mountpoint is a plain directory on the root filesystem.
      await expect(shutdownScratchFs({ ...s, mountpoint: elsewhere })).rejects.toMatchObject({ code: 'ERR_NOT_OUR_FILESYSTEM' });
    } finally {
      fs.rmSync(elsewhere, { recursive: true });
    }
    // Neither the scratch filesystem nor the root one went down: both still take writes.
    fs.writeFileSync(path.join(s.mountpoint!, 'alive'), 'yes');
    fs.writeFileSync(path.join(os.tmpdir(), `odirect-alive-${process.pid}`), 'yes');
    fs.rmSync(path.join(os.tmpdir(), `odirect-alive-${process.pid}`));
  });

  it('the CLI refuses to crash a filesystem it did not make, before any I/O', () => {
    const cli = path.join(__dirname, '..', 'dist', 'cli.js');
    if (!fs.existsSync(cli)) throw new Error('dist/ is missing: npm test builds it first');
    const noConsent = spawnSync(process.execPath, [cli, 'verify-atomic', '/tmp', '--crash'], { encoding: 'utf8' });
    expect(noConsent.status).toBe(2);
    expect(noConsent.stderr).toMatch(/--i-own-this-device/);
    const root = spawnSync(process.execPath, [cli, 'verify-atomic', '/', '--crash', '--i-own-this-device'], { encoding: 'utf8' });
    expect(root.status).toBe(1);
    expect(root.stderr).toMatch(/refusing to shut down \/: it is the root filesystem/);
    expect(fs.readdirSync('/').some((n) => n.startsWith('.odirect-verify'))).toBe(false);
  });
});
