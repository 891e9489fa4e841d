// odirect verify-atomic PATH: what the kernel says, whether it keeps its own
// atomic-write rules, a torn-write hunt, and (--crash) crash cycles. Prints a
// verdict line; exit statuses in USAGE (EXIT below). Progress goes to stderr.
import { release } from 'node:os';
import { parseArgs } from 'node:util';
import { probe } from '../probe';
import { makeScratchFs, registerCleanupOnExit, removeScratchFs, type ScratchFs } from '../scratch/scratchfs';
import type { Capabilities } from '../types';
import { runCrashCycles, type CrashReport } from './crash';
import { checkAtomicRules, type RulesReport } from './rules';
import { ownedDeviceTarget, scratchTarget } from './target';
import { hasSoftwareAtomicWrites } from '../policies/atomic-overlap';
import { BAD_CLASSES, badReads, huntRegionSize, huntTornWrites, type TornReport } from './torn';

export interface VerifyOptions {
  path?: string;
  /** Seconds of torn-write hunting on each path (raw, then library). */
  seconds: number;
  regions: number;
  writers: number;
  readers: number;
  crash: boolean;
  cycles: number;
  scratchFs: 'xfs' | 'ext4';
  iOwnThisDevice: boolean;
  json: boolean;
  /** Called as the run goes: at each phase's start, and about once a second (hunt) or per cycle (crash). */
  onProgress?: (progress: VerifyProgress) => void;
}

export type VerifyPhase = 'probe' | 'rules' | 'torn hunt, raw path' | 'torn hunt, odirect path' | 'crash cycles' | 'crash cycles, overlapping writers';

export interface VerifyProgress {
  phase: VerifyPhase;
  /** Since verifyAtomic() started. */
  elapsedMs: number;
  /** Counts so far in this phase (writes, reads, bad reads by class, cycles, …). */
  counts?: Record<string, number>;
}

/**
 * PASS: atomic writes are supported and were all or nothing. UNSUPPORTED: this filesystem
 * has no atomic writes (the kernel refused them, as it must); nothing was wrong, but nothing
 * here is atomic either, and a script must not read that as a pass. FAIL: a violation.
 */
export type VerifyOutcome = 'PASS' | 'UNSUPPORTED' | 'FAIL';

/** Exit statuses of `odirect verify-atomic`. */
export const EXIT = { PASS: 0, FAIL: 1, USAGE: 2, UNSUPPORTED: 3 } as const;

export interface VerifyReport {
  path: string;
  kernel: string;
  capabilities: Capabilities;
  rules: RulesReport;
  /** The torn-write hunt on the raw syscall path (the kernel) and through DirectFile.writeAtomic (odirect). */
  hunt?: { raw: TornReport; library: TornReport };
  crash?: CrashReport;
  /** Crash cycles with every writer writing any of a few regions, so atomic writes to one region overlap. */
  crashOverlap?: CrashReport;
  violations: string[];
  outcome: VerifyOutcome;
  verdict: string;
}

const USAGE = `usage: odirect verify-atomic PATH [--seconds N] [--regions N] [--writers N] [--readers N] [--json]
       odirect verify-atomic [--fs xfs|ext4] [--crash] [--cycles N] [--seconds N] [--json]
       odirect verify-atomic PATH --crash --i-own-this-device [--cycles N]

  PATH                 a directory on the filesystem to check (a scratch file is made in it).
                       Without PATH: a scratch filesystem odirect makes on a loop device (root).
  --seconds N          length of the torn-write hunt on each path, raw then library (default 10)
  --regions N          regions the hunt's writers share (default 4: writes to one region overlap)
  --writers N          writers in the hunt (default 4)
  --readers N          readers in the hunt (default 4)
  --crash              crash cycles: shut the filesystem down mid-write (no log flush), remount,
                       check. Without PATH, on a scratch filesystem odirect makes on a loop device.
  --fs xfs|ext4        the scratch filesystem without PATH (default xfs)
  --cycles N           crash cycles (default 20)
  --i-own-this-device  allow --crash on PATH's filesystem: it is shut down and remounted, so it
                       must be a dedicated device; '/', and the filesystems of the working
                       directory and of odirect itself, are always refused
  -h, --help           this text

Progress (phase, elapsed time, counts so far) goes to stderr while it runs; the report and
the verdict line to stdout.

exit status:
  0  PASS         atomic writes are supported, and were all or nothing
  1  FAIL         a violation (a rule not kept, a bad read on odirect's path, a lost write), or an error
  2              usage error
  3  UNSUPPORTED  the filesystem has no atomic writes (the kernel refused them, as it must):
                  nothing to rely on here
`;

export function parseVerifyArgs(argv: string[]): VerifyOptions | string {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        seconds: { type: 'string' },
        cycles: { type: 'string' },
        regions: { type: 'string' },
        writers: { type: 'string' },
        readers: { type: 'string' },
        crash: { type: 'boolean' },
        json: { type: 'boolean' },
        'i-own-this-device': { type: 'boolean' },
        fs: { type: 'string' },
      },
    });
  } catch (err) {
    return (err as Error).message;
  }
  const { values: v, positionals } = parsed;
  if (positionals.length > 1) return `one PATH only (got ${positionals.join(' and ')})`;
  if (v.fs !== undefined && v.fs !== 'xfs' && v.fs !== 'ext4') return `--fs must be xfs or ext4, got ${v.fs}`;
  const number = (value: string | undefined, fallback: number) => (value === undefined ? fallback : Number(value));
  const o: VerifyOptions = {
    seconds: number(v.seconds, 10),
    regions: number(v.regions, 4),
    writers: number(v.writers, 4),
    readers: number(v.readers, 4),
    crash: v.crash ?? false,
    cycles: number(v.cycles, 20),
    scratchFs: (v.fs as 'xfs' | 'ext4' | undefined) ?? 'xfs',
    iOwnThisDevice: v['i-own-this-device'] ?? false,
    json: v.json ?? false,
    ...(positionals[0] !== undefined ? { path: positionals[0] } : {}),
  };
  if (!(o.seconds >= 0 && o.seconds <= 86400)) return '--seconds must be from 0 to 86400';
  if (!(Number.isInteger(o.cycles) && o.cycles >= 1 && o.cycles <= 100000)) return '--cycles must be an integer from 1';
  for (const k of ['regions', 'writers', 'readers'] as const) {
    if (!(Number.isInteger(o[k]) && o[k] >= 1 && o[k] <= 1024)) return `--${k} must be an integer from 1 to 1024`;
  }
  if (o.path && o.crash && !o.iOwnThisDevice) {
    return `--crash on ${o.path} shuts that filesystem down: pass --i-own-this-device if it is a dedicated device, or leave out PATH to use a scratch filesystem`;
  }
  return o;
}

export async function verifyAtomic(o: VerifyOptions, scratch?: ScratchFs): Promise<VerifyReport> {
  const started = Date.now();
  const progress = (phase: VerifyPhase, counts?: Record<string, number>) =>
    o.onProgress?.({ phase, elapsedMs: Date.now() - started, ...(counts ? { counts } : {}) });
  const huntCounts = (t: Readonly<TornReport>) => ({ writes: t.writes, reads: t.reads, ...Object.fromEntries(BAD_CLASSES.map((k) => [k, t[k]])) });
  const crashCounts = (k: Readonly<CrashReport>) => ({ cycles: k.cycles, of: o.cycles, acknowledged: k.acknowledged, lost: k.lost, torn: k.torn, corrupt: k.corrupt });
  const dir = scratch?.mountpoint ?? o.path!;
  // Refusals first: nothing is written anywhere we may not crash.
  const target = o.crash ? (scratch ? scratchTarget(scratch) : ownedDeviceTarget(dir)) : undefined;
  progress('probe');
  const caps = await probe(dir);
  progress('rules');
  const rules = await checkAtomicRules(dir, caps);
  const violations: string[] = [];
  for (const r of rules.rules) if (!r.ok) violations.push(`rule '${r.rule}': expected ${r.expected}, got ${r.got}${r.unchanged ? '' : ', and the file changed'}`);
  for (const s of rules.sizes) if (!s.ok) violations.push(`valid ${s.size}-byte atomic write: ${s.got}`);
  let hunt: VerifyReport['hunt'];
  const notes: string[] = [];
  if (caps.atomic.supported && o.seconds > 0) {
    const params = { seconds: o.seconds, regions: o.regions, writers: o.writers, readers: o.readers };
    progress('torn hunt, raw path');
    const raw = await huntTornWrites(dir, caps, { ...params, path: 'raw', progress: (t) => progress('torn hunt, raw path', huntCounts(t)) });
    progress('torn hunt, odirect path');
    const library = await huntTornWrites(dir, caps, { ...params, path: 'library', progress: (t) => progress('torn hunt, odirect path', huntCounts(t)) });
    hunt = { raw, library };
    // odirect's path must be clean.
    if (badReads(library) > 0) violations.push(`odirect's path: ${describeBad(library)} in ${library.reads} reads`);
    // The kernel's path: zero and stale reads with overlapping writes are the known XFS software-atomic
    // anomaly (docs/xfs-atomic-overlap.md) that odirect orders away; anything else is a violation.
    const known = hasSoftwareAtomicWrites(caps) && raw.torn === 0 && raw.corrupt === 0;
    if (badReads(raw) === 0) notes.push(`kernel: the raw path with overlapping writers was clean in ${raw.reads} reads`);
    else if (known) {
      notes.push(
        `kernel: the raw path with overlapping writers read ${describeBad(raw)} in ${raw.reads} reads: overlapping software (CoW) ` +
          `atomic writes are not atomic against each other on this kernel (docs/xfs-atomic-overlap.md); odirect orders them`,
      );
    } else violations.push(`the kernel's raw path: ${describeBad(raw)} in ${raw.reads} reads`);
  }
  let crash: CrashReport | undefined;
  let crashOverlap: CrashReport | undefined;
  if (target) {
    const regionSize = caps.atomic.supported ? huntRegionSize(caps) : Math.max(4096, caps.direct.offsetAlign);
    progress('crash cycles');
    crash = await runCrashCycles(target, {
      cycles: o.cycles,
      atomic: caps.atomic.supported,
      regionSize,
      progress: (k) => progress('crash cycles', crashCounts(k)),
    });
    if (caps.atomic.supported) {
      progress('crash cycles, overlapping writers');
      crashOverlap = await runCrashCycles(target, {
        cycles: o.cycles,
        atomic: true,
        regionSize,
        regions: 4,
        writers: 8,
        overlap: true,
        progress: (k) => progress('crash cycles, overlapping writers', crashCounts(k)),
      });
    }
    for (const [k, what] of [
      [crash, ''],
      [crashOverlap, ' (overlapping writers)'],
    ] as const) {
      if (!k) continue;
      if (k.lost > 0) violations.push(`${k.lost} acknowledged writes lost after a crash${what}`);
      if (k.torn > 0) violations.push(`${k.torn} torn regions after a crash${what}`);
      if (k.corrupt > 0) violations.push(`${k.corrupt} corrupt regions after a crash${what}`);
    }
  }
  const outcome: VerifyOutcome = violations.length > 0 ? 'FAIL' : caps.atomic.supported ? 'PASS' : 'UNSUPPORTED';
  const crashed = crash ? `; ${crash.cycles + (crashOverlap?.cycles ?? 0)} crash cycles lost no acknowledged write` : '';
  const verdict =
    (outcome === 'FAIL'
      ? `verdict: FAIL: ${violations.join('; ')}`
      : outcome === 'PASS'
        ? `verdict: PASS: atomic writes through odirect on ${dir} (${caps.fsType}) were all or nothing${hunt ? ` (${hunt.library.reads} reads, 0 bad)` : ''}${crashed}`
        : `verdict: UNSUPPORTED: ${caps.fsType} at ${dir} has no atomic writes (the kernel refused them with EOPNOTSUPP, as it must)${crashed}`) +
    notes.map((n) => `; ${n}`).join('');
  return { path: dir, kernel: release(), capabilities: caps, rules, ...(hunt ? { hunt } : {}), ...(crash ? { crash } : {}), ...(crashOverlap ? { crashOverlap } : {}), violations, outcome, verdict };
}

function describeBad(t: TornReport): string {
  return BAD_CLASSES.filter((k) => t[k] > 0)
    .map((k) => `${t[k]} ${k}`)
    .join(', ');
}

/** One line per class of bad read, for the text output. */
const CLASS_MEANING: Record<(typeof BAD_CLASSES)[number], string> = {
  torn: 'two generations of one region in one read: a write was not atomic',
  zero: 'zeros where a whole generation had been written (blocks mapped before their data was there)',
  stale: "another region's sectors, data that is not the hunt's, or a generation already overwritten before the read began (freed or reused blocks)",
  corrupt: "a sector of the hunt's with a bad checksum, or a generation never written",
};

function kib(n: number): string {
  return n >= 1 << 20 ? `${n / (1 << 20)} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`;
}

export function formatReport(r: VerifyReport): string {
  const c = r.capabilities;
  const d = c.device;
  const hw = d ? (d.atomicWriteUnitMax > 0 ? `${kib(d.atomicWriteUnitMin)}–${kib(d.atomicWriteUnitMax)}` : 'none') : 'n/a';
  const lines = [
    `path       ${r.path}`,
    `kernel     ${r.kernel}   filesystem ${c.fsType}   device ${d ? `${d.name} (write cache: ${d.writeCache}, FUA: ${d.fua ? 'yes' : 'no'}, hardware atomic: ${hw})` : 'none'}`,
    c.atomic.supported
      ? `atomic     unitMin ${kib(c.atomic.unitMin)}   unitMax ${kib(c.atomic.unitMax)}   unitMaxOpt ${c.atomic.unitMaxOpt ? kib(c.atomic.unitMaxOpt) : 'none'}   segments ${c.atomic.segmentsMax}`
      : `atomic     not supported: ${c.atomic.reason}`,
  ];
  r.rules.rules.forEach((x, i) =>
    lines.push(`${i === 0 ? 'rules     ' : '          '} ${x.ok ? 'ok  ' : 'FAIL'} ${x.rule}: ${x.got} (expected ${x.expected})${x.unchanged ? ', nothing written' : ', FILE CHANGED'}`),
  );
  if (r.rules.sizes.length > 0) {
    lines.push(`sizes      ${r.rules.sizes.map((s) => `${s.ok ? '' : '!'}${kib(s.size)}`).join(' ')}: ${r.rules.sizes.every((s) => s.ok) ? 'all written and read back' : 'SOME FAILED'}`);
  }
  if (r.hunt) {
    const { raw, library } = r.hunt;
    lines.push(`torn hunt  ${raw.regions} regions of ${kib(raw.regionSize)}, ${raw.writers} writers, ${raw.readers} readers, on each path:`);
    for (const [t, how] of [
      [raw, 'pwritev2(RWF_ATOMIC) on an O_DIRECT fd, writes to one region may overlap (the kernel)'],
      [library, "DirectFile.writeAtomic (odirect's policies)"],
    ] as const) {
      lines.push(
        `  ${t.path.padEnd(8)} ${t.seconds.toFixed(1)} s: ${t.writes} atomic writes, ${t.reads} reads: ` +
          `${BAD_CLASSES.map((k) => `${t[k]} ${k}`).join(', ')}   ${how}`,
      );
      for (const e of t.examples.slice(0, 3)) lines.push(`           ${e}`);
    }
    for (const k of BAD_CLASSES) lines.push(`  ${k.padEnd(8)} ${CLASS_MEANING[k]}`);
  }
  for (const [k, what] of [
    [r.crash, 'each writer owns its regions'],
    [r.crashOverlap, '8 writers share 4 regions'],
  ] as const) {
    if (!k) continue;
    lines.push(`crash      ${k.cycles} cycles, ${what}: ${k.acknowledged} writes acknowledged, ${k.failedAfterShutdown} failed at shutdown (EIO), ${k.lost} lost, ${k.torn} torn, ${k.corrupt} corrupt`);
    for (const e of k.examples) lines.push(`           ${e}`);
  }
  lines.push(r.verdict);
  return lines.join('\n');
}

/** One stderr line per progress report: `verify-atomic: 12.3 s  torn hunt, raw path  writes 4000 reads 6000 …`. */
function writeProgress(p: VerifyProgress): void {
  const counts = p.counts ? `  ${Object.entries(p.counts).map(([k, n]) => `${k} ${n}`).join(' ')}` : '';
  process.stderr.write(`verify-atomic: ${(p.elapsedMs / 1000).toFixed(1)} s  ${p.phase}${counts}\n`);
}

export async function runVerifyAtomic(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const parsed = parseVerifyArgs(argv);
  if (typeof parsed === 'string') {
    process.stderr.write(`odirect verify-atomic: ${parsed}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  let scratch: ScratchFs | undefined;
  try {
    if (!parsed.path) {
      registerCleanupOnExit();
      scratch = await makeScratchFs({ kind: parsed.scratchFs, sizeMiB: parsed.scratchFs === 'xfs' ? 320 : 128, label: 'verify' });
    }
    const report = await verifyAtomic({ ...parsed, onProgress: writeProgress }, scratch);
    process.stdout.write(parsed.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    return EXIT[report.outcome];
  } finally {
    if (scratch) await removeScratchFs(scratch);
  }
}
