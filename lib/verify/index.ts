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
import { huntRegionSize, huntTornWrites, type TornReport } from './torn';

export interface VerifyOptions {
  path?: string;
  seconds: number;
  crash: boolean;
  cycles: number;
  scratchFs: 'xfs' | 'ext4';
  iOwnThisDevice: boolean;
  json: boolean;
  /** Called as the run goes: at each phase's start, and about once a second in the long ones. */
  onProgress?: (progress: VerifyProgress) => void;
}

export type VerifyPhase = 'probe' | 'rules' | 'torn hunt' | 'crash cycles';

export interface VerifyProgress {
  phase: VerifyPhase;
  /** Since verifyAtomic() started. */
  elapsedMs: number;
  /** Counts so far in this phase (writes, reads, torn, corrupt, cycles, …). */
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
  torn?: TornReport;
  crash?: CrashReport;
  violations: string[];
  outcome: VerifyOutcome;
  verdict: string;
}

const USAGE = `usage: odirect verify-atomic PATH [--seconds N] [--json]
       odirect verify-atomic --crash [--fs xfs|ext4] [--cycles N] [--seconds N] [--json]
       odirect verify-atomic PATH --crash --i-own-this-device [--cycles N]

  PATH                 a directory on the filesystem to check (a scratch file is made in it)
  --seconds N          length of the torn-write hunt (default 10)
  --crash              crash cycles: shut the filesystem down mid-write (no log flush), remount,
                       check. Without PATH, on a scratch filesystem odirect makes on a loop device.
  --fs xfs|ext4        the scratch filesystem for --crash without PATH (default xfs)
  --cycles N           crash cycles (default 20)
  --i-own-this-device  allow --crash on PATH's filesystem: it is shut down and remounted, so it
                       must be a dedicated device; '/', and the filesystems of the working
                       directory and of odirect itself, are always refused
  -h, --help           this text

Progress (phase, elapsed time, counts so far) goes to stderr while it runs; the report and
the verdict line to stdout.

exit status:
  0  PASS         atomic writes are supported, and were all or nothing
  1  FAIL         a violation (a rule not kept, a torn or corrupt read, a lost write), or an error
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
  const o: VerifyOptions = {
    seconds: v.seconds === undefined ? 10 : Number(v.seconds),
    crash: v.crash ?? false,
    cycles: v.cycles === undefined ? 20 : Number(v.cycles),
    scratchFs: (v.fs as 'xfs' | 'ext4' | undefined) ?? 'xfs',
    iOwnThisDevice: v['i-own-this-device'] ?? false,
    json: v.json ?? false,
    ...(positionals[0] !== undefined ? { path: positionals[0] } : {}),
  };
  if (!(o.seconds >= 0 && o.seconds <= 86400)) return '--seconds must be from 0 to 86400';
  if (!(Number.isInteger(o.cycles) && o.cycles >= 1 && o.cycles <= 100000)) return '--cycles must be an integer from 1';
  if (!o.path && !o.crash) return 'PATH is needed (or --crash, to test on a scratch filesystem)';
  if (o.path && o.crash && !o.iOwnThisDevice) {
    return `--crash on ${o.path} shuts that filesystem down: pass --i-own-this-device if it is a dedicated device, or leave out PATH to use a scratch filesystem`;
  }
  return o;
}

export async function verifyAtomic(o: VerifyOptions, scratch?: ScratchFs): Promise<VerifyReport> {
  const started = Date.now();
  const progress = (phase: VerifyPhase, counts?: Record<string, number>) =>
    o.onProgress?.({ phase, elapsedMs: Date.now() - started, ...(counts ? { counts } : {}) });
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
  let torn: TornReport | undefined;
  if (caps.atomic.supported && o.seconds > 0) {
    progress('torn hunt');
    torn = await huntTornWrites(dir, caps, {
      seconds: o.seconds,
      progress: (t) => progress('torn hunt', { writes: t.writes, reads: t.reads, torn: t.torn, corrupt: t.corrupt }),
    });
    if (torn.torn > 0) violations.push(`${torn.torn} torn reads in the hunt`);
    if (torn.corrupt > 0) violations.push(`${torn.corrupt} corrupt reads in the hunt`);
  }
  let crash: CrashReport | undefined;
  if (target) {
    progress('crash cycles');
    crash = await runCrashCycles(target, {
      progress: (k) => progress('crash cycles', { cycles: k.cycles, of: o.cycles, acknowledged: k.acknowledged, lost: k.lost, torn: k.torn }),
      cycles: o.cycles,
      atomic: caps.atomic.supported,
      regionSize: caps.atomic.supported ? huntRegionSize(caps) : Math.max(4096, caps.direct.offsetAlign),
    });
    if (crash.lost > 0) violations.push(`${crash.lost} acknowledged writes lost after a crash`);
    if (crash.torn > 0) violations.push(`${crash.torn} torn regions after a crash`);
    if (crash.corrupt > 0) violations.push(`${crash.corrupt} corrupt regions after a crash`);
  }
  const outcome: VerifyOutcome = violations.length > 0 ? 'FAIL' : caps.atomic.supported ? 'PASS' : 'UNSUPPORTED';
  const crashed = crash ? `; ${crash.cycles} crash cycles lost no acknowledged write` : '';
  const verdict =
    outcome === 'FAIL'
      ? `verdict: FAIL: ${violations.join('; ')}`
      : outcome === 'PASS'
        ? `verdict: PASS: atomic writes on ${dir} (${caps.fsType}) were all or nothing${crashed}`
        : `verdict: UNSUPPORTED: ${caps.fsType} at ${dir} has no atomic writes (the kernel refused them with EOPNOTSUPP, as it must)${crashed}`;
  return { path: dir, kernel: release(), capabilities: caps, rules, ...(torn ? { torn } : {}), ...(crash ? { crash } : {}), violations, outcome, verdict };
}

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
  if (r.torn) {
    const t = r.torn;
    lines.push(`torn hunt  ${t.seconds.toFixed(1)} s, ${t.regions} regions of ${kib(t.regionSize)}: ${t.writes} atomic writes, ${t.reads} direct reads, ${t.torn} torn, ${t.corrupt} corrupt`);
  }
  if (r.crash) {
    const k = r.crash;
    lines.push(`crash      ${k.cycles} cycles: ${k.acknowledged} writes acknowledged, ${k.failedAfterShutdown} failed at shutdown (EIO), ${k.lost} lost, ${k.torn} torn, ${k.corrupt} corrupt`);
    for (const e of k.examples) lines.push(`           ${e}`);
  }
  lines.push(r.verdict);
  return lines.join('\n');
}

/** One stderr line per progress report: `verify-atomic: 12.3 s  torn hunt  writes 4000 reads 6000 …`. */
function writeProgress(p: VerifyProgress): void {
  const counts = p.counts ? `  ${Object.entries(p.counts).map(([k, n]) => `${k} ${n}`).join(' ')}` : '';
  process.stderr.write(`verify-atomic: ${(p.elapsedMs / 1000).toFixed(1)} s  ${p.phase}${counts}\n`);
}

export async function runVerifyAtomic(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) { // before parsing: help wins over other mistakes
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
    if (parsed.crash && !parsed.path) {
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
