// Crash cycles for replaceFile: one writer loops replacing one file with
// numbered versions (each self-describing: magic, version, length, checksum,
// odd sizes from under a block to a few hundred KiB), the filesystem is shut
// down mid-loop without a log flush, remounted, and the file must hold one
// whole version, no older than the last one acknowledged and no newer than
// the last one issued.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { replaceFileWith, type ReplaceSteps } from '../replace';
import { settleWithin, type CrashTarget } from './crash';

export interface ReplaceCrashOptions {
  cycles: number;
  /** How long the writer runs before the shutdown, ms (randomised up to twice this). */
  runMs?: number;
  /** Which of replaceFile's sync steps run: all by default; turning one off shows what it is for. */
  steps?: ReplaceSteps;
}

export interface ReplaceCrashReport {
  cycles: number;
  acknowledged: number;
  failedAfterShutdown: number;
  /** The file held a whole version older than the last acknowledged one. */
  lost: number;
  /** The file was missing, empty, cut short, or not one whole version. */
  bad: number;
  /** Temp files a crash left behind (expected: the replace in flight), removed after each cycle. */
  leftoverTemps: number;
  examples: string[];
}

const FILE = 'replaced.dat';
const MAGIC = 'ODRPLACE';
const HEADER = 32;

/** Size of version `v`: odd sizes from 40 bytes to about 300 KiB, a few exact blocks among them. */
export function versionSize(v: number): number {
  const sizes = [40, 4096, 4097, 12_345, 65_536, 100_003, 300_001];
  return sizes[v % sizes.length]!;
}

export function versionContent(v: number): Buffer {
  const size = versionSize(v);
  const b = Buffer.alloc(size);
  let s = (v * 2654435761) >>> 0;
  for (let i = HEADER; i < size; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    b[i] = s >>> 24;
  }
  b.write(MAGIC, 0, 'latin1');
  b.writeUInt32LE(v, 8);
  b.writeUInt32LE(size, 12);
  createHash('sha256').update(b.subarray(HEADER)).digest().copy(b, 16, 0, 16);
  return b;
}

export type VersionCheck = { kind: 'whole'; version: number } | { kind: 'bad'; why: string };

export function checkVersion(b: Buffer): VersionCheck {
  if (b.length === 0) return { kind: 'bad', why: 'empty' };
  if (b.length < HEADER) return { kind: 'bad', why: `${b.length} bytes, shorter than the header` };
  if (b.toString('latin1', 0, 8) !== MAGIC) return { kind: 'bad', why: `no magic (first bytes ${b.subarray(0, 8).toString('hex')})` };
  const version = b.readUInt32LE(8);
  const size = b.readUInt32LE(12);
  if (size !== b.length) return { kind: 'bad', why: `version ${version}: ${b.length} bytes, header says ${size}` };
  const sum = createHash('sha256').update(b.subarray(HEADER)).digest().subarray(0, 16);
  if (!sum.equals(b.subarray(16, 32))) return { kind: 'bad', why: `version ${version}: checksum mismatch` };
  return { kind: 'whole', version };
}

export async function runReplaceCrashCycles(target: CrashTarget, options: ReplaceCrashOptions): Promise<ReplaceCrashReport> {
  const file = path.join(target.mountpoint, FILE);
  const steps = options.steps ?? { syncData: true, syncDir: true };
  const report: ReplaceCrashReport = { cycles: 0, acknowledged: 0, failedAfterShutdown: 0, lost: 0, bad: 0, leftoverTemps: 0, examples: [] };
  const note = (s: string) => {
    if (report.examples.length < 10) report.examples.push(s);
  };
  // Version 0, durable before the first cycle (a full replace, whatever the steps under test).
  await replaceFileWith(file, versionContent(0), undefined, { syncData: true, syncDir: true });
  let durable = 0;
  for (let cycle = 0; cycle < options.cycles; cycle++) {
    let acked = durable;
    let issued = durable;
    let stopped = false;
    // Set while the shutdown ioctl is in flight: a version acknowledged then
    // raced the shutdown (the case docs/replace-durability.md is about).
    let shuttingDown = false;
    let ackedDuringShutdown = -1;
    const writer = async () => {
      while (!stopped) {
        const v = ++issued;
        try {
          await replaceFileWith(file, versionContent(v), undefined, steps);
        } catch {
          report.failedAfterShutdown++;
          return; // EIO once the filesystem is down
        }
        acked = v;
        if (shuttingDown) ackedDuringShutdown = v;
        report.acknowledged++;
      }
    };
    const running = writer();
    const runMs = options.runMs ?? 150;
    await new Promise((resolve) => setTimeout(resolve, runMs + Math.floor(Math.random() * runMs)));
    shuttingDown = true;
    await target.shutdown();
    stopped = true;
    await settleWithin(running, 10_000, 'the replace in flight at shutdown');
    await target.remount();

    let found: VersionCheck;
    try {
      found = checkVersion(fs.readFileSync(file));
    } catch (err) {
      found = { kind: 'bad', why: (err as Error).message };
    }
    if (found.kind === 'bad') {
      report.bad++;
      note(`cycle ${cycle}: ${found.why} (last acknowledged ${acked}, issued ${issued})`);
    } else if (found.version < acked) {
      report.lost++;
      const raced = ackedDuringShutdown === acked ? ', acknowledged while the shutdown was in flight' : '';
      note(`cycle ${cycle}: version ${found.version} on disk, ${acked} was acknowledged (issued ${issued}${raced})`);
    } else if (found.version > issued) {
      report.bad++;
      note(`cycle ${cycle}: version ${found.version} was never written (issued ${issued})`);
    }
    const temps = fs.readdirSync(target.mountpoint).filter((n) => n.startsWith(`.${FILE}.odirect-`));
    report.leftoverTemps += temps.length;
    for (const t of temps) fs.rmSync(path.join(target.mountpoint, t));
    // Start the next cycle from a known durable version.
    durable = issued + 1;
    await replaceFileWith(file, versionContent(durable), undefined, { syncData: true, syncDir: true });
    report.cycles++;
  }
  return report;
}
