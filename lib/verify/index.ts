// odirect verify-atomic PATH: what the kernel says, whether it keeps its own
// atomic-write rules, a torn-write hunt, and (--crash) crash cycles. Prints a
// verdict line; exits 1 on any violation, 2 on bad usage.
import { release } from 'node:os';
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
}

export interface VerifyReport {
  path: string;
  kernel: string;
  capabilities: Capabilities;
  rules: RulesReport;
  torn?: TornReport;
  crash?: CrashReport;
  violations: string[];
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
`;

export function parseVerifyArgs(argv: string[]): VerifyOptions | string {
  const o: VerifyOptions = { seconds: 10, crash: false, cycles: 20, scratchFs: 'xfs', iOwnThisDevice: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    try {
      if (a === '--seconds') o.seconds = Number(value());
      else if (a === '--cycles') o.cycles = Number(value());
      else if (a === '--crash') o.crash = true;
      else if (a === '--json') o.json = true;
      else if (a === '--i-own-this-device') o.iOwnThisDevice = true;
      else if (a === '--fs') {
        const fs = value();
        if (fs !== 'xfs' && fs !== 'ext4') return `--fs must be xfs or ext4, got ${fs}`;
        o.scratchFs = fs;
      } else if (a.startsWith('--')) return `unknown option ${a}`;
      else if (o.path === undefined) o.path = a;
      else return `one PATH only (got ${o.path} and ${a})`;
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (!(o.seconds >= 0 && o.seconds <= 86400)) return '--seconds must be from 0 to 86400';
  if (!(Number.isInteger(o.cycles) && o.cycles >= 1 && o.cycles <= 100000)) return '--cycles must be an integer from 1';
  if (!o.path && !o.crash) return 'PATH is needed (or --crash, to test on a scratch filesystem)';
  if (o.path && o.crash && !o.iOwnThisDevice) {
    return `--crash on ${o.path} shuts that filesystem down: pass --i-own-this-device if it is a dedicated device, or leave out PATH to use a scratch filesystem`;
  }
  return o;
}

export async function verifyAtomic(o: VerifyOptions, scratch?: ScratchFs): Promise<VerifyReport> {
  const dir = scratch?.mountpoint ?? o.path!;
  // Refusals first: nothing is written anywhere we may not crash.
  const target = o.crash ? (scratch ? scratchTarget(scratch) : ownedDeviceTarget(dir)) : undefined;
  const caps = await probe(dir);
  const rules = await checkAtomicRules(dir, caps);
  const violations: string[] = [];
  for (const r of rules.rules) if (!r.ok) violations.push(`rule '${r.rule}': expected ${r.expected}, got ${r.got}${r.unchanged ? '' : ', and the file changed'}`);
  for (const s of rules.sizes) if (!s.ok) violations.push(`valid ${s.size}-byte atomic write: ${s.got}`);
  let torn: TornReport | undefined;
  if (caps.atomic.supported && o.seconds > 0) {
    torn = await huntTornWrites(dir, caps, { seconds: o.seconds });
    if (torn.torn > 0) violations.push(`${torn.torn} torn reads in the hunt`);
    if (torn.corrupt > 0) violations.push(`${torn.corrupt} corrupt reads in the hunt`);
  }
  let crash: CrashReport | undefined;
  if (target) {
    crash = await runCrashCycles(target, {
      cycles: o.cycles,
      atomic: caps.atomic.supported,
      regionSize: caps.atomic.supported ? huntRegionSize(caps) : Math.max(4096, caps.direct.offsetAlign),
    });
    if (crash.lost > 0) violations.push(`${crash.lost} acknowledged writes lost after a crash`);
    if (crash.torn > 0) violations.push(`${crash.torn} torn regions after a crash`);
    if (crash.corrupt > 0) violations.push(`${crash.corrupt} corrupt regions after a crash`);
  }
  const what = caps.atomic.supported
    ? `atomic writes on ${dir} (${caps.fsType}) were all or nothing`
    : `${caps.fsType} at ${dir} has no atomic writes, and the kernel refused them (EOPNOTSUPP)`;
  const verdict =
    violations.length === 0
      ? `verdict: PASS: ${what}${crash ? `; ${crash.cycles} crash cycles lost no acknowledged write` : ''}`
      : `verdict: FAIL: ${violations.join('; ')}`;
  return { path: dir, kernel: release(), capabilities: caps, rules, ...(torn ? { torn } : {}), ...(crash ? { crash } : {}), violations, verdict };
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

export async function runVerifyAtomic(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const parsed = parseVerifyArgs(argv);
  if (typeof parsed === 'string') {
    process.stderr.write(`odirect verify-atomic: ${parsed}\n\n${USAGE}`);
    return 2;
  }
  let scratch: ScratchFs | undefined;
  try {
    if (parsed.crash && !parsed.path) {
      registerCleanupOnExit();
      scratch = await makeScratchFs({ kind: parsed.scratchFs, sizeMiB: parsed.scratchFs === 'xfs' ? 320 : 128, label: 'verify' });
    }
    const report = await verifyAtomic(parsed, scratch);
    process.stdout.write(parsed.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    return report.violations.length === 0 ? 0 : 1;
  } finally {
    if (scratch) await removeScratchFs(scratch);
  }
}
