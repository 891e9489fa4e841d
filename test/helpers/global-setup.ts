/**
 * vitest globalSetup: makes the scratch filesystems the test files share, once per run, and
 * provides their paths under the key 'scratch' (read them with scratchEnv() from ./scratch).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProvidedContext } from 'vitest';
import {
  makeScratchFs,
  registerCleanupOnExit,
  removeScratchFs,
  scratchAvailable,
  isPrivateOwnedDir,
  sweepStaleScratch,
  type ScratchFs,
  type ScratchOptions,
} from '../../lib/scratch/scratchfs';
// Type-only: brings in the ProvidedContext augmentation that types project.provide('scratch', …).
import type {} from './scratch';

export interface ScratchEnv {
  available: boolean;
  reason?: string;
  /** Mountpoint of a 512 MiB ext4. */
  ext4?: string;
  /** Mountpoint of a 512 MiB XFS with reflink (software RWF_ATOMIC fallback). */
  xfs?: string;
  /** Mountpoint of a 128 MiB ext4 mounted data=journal (no direct I/O there: dio alignment 0). */
  ext4Journal?: string;
  /** Mountpoint of a 16 MiB ext4, for ENOSPC tests. */
  tiny?: string;
  /** A 64 MiB raw loop device (/dev/loopN). */
  rawDevice?: string;
  /** A fresh directory on tmpfs (/dev/shm); always present. */
  tmpfs: string;
}

/**
 * The part of vitest's TestProject we use. Spelled out because 'vitest/node' ships ESM-only
 * types, which a CommonJS-mode TypeScript project cannot import without resolution-mode tricks.
 */
interface SetupProject {
  provide<K extends keyof ProvidedContext>(key: K, value: ProvidedContext[K]): void;
}

const TMPFS_ROOT = '/dev/shm';
const TMPFS_PREFIX = 'odirect-tmpfs-';
/** Owner marker in the tmpfs dir, so a later run can sweep it if this one gets killed. */
const TMPFS_MARKER = '.odirect-tmpfs-owner';
const TMPFS_MAGIC = 0x01021994;

const SCRATCH_SET: Array<[Exclude<keyof ScratchEnv, 'available' | 'reason' | 'tmpfs'>, ScratchOptions]> = [
  ['ext4', { kind: 'ext4', sizeMiB: 512, label: 'ext4' }],
  ['xfs', { kind: 'xfs', sizeMiB: 512, label: 'xfs' }],
  ['ext4Journal', { kind: 'ext4', sizeMiB: 128, mountOptions: 'data=journal', label: 'ext4journal' }],
  ['tiny', { kind: 'ext4', sizeMiB: 16, label: 'tiny' }],
  ['rawDevice', { kind: 'raw', sizeMiB: 64, label: 'raw' }],
];

function log(message: string): void {
  process.stderr.write(`[scratch] ${message}\n`);
}

function pidIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes tmpfs dirs of earlier runs whose owner process is gone. */
function sweepStaleTmpfsDirs(): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(TMPFS_ROOT).filter((n) => n.startsWith(TMPFS_PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = path.join(TMPFS_ROOT, name);
    // Only a real dir of our uid that nobody else can write (lstat): as root, never another user's.
    if (!isPrivateOwnedDir(dir)) continue;
    try {
      if (!fs.lstatSync(path.join(dir, TMPFS_MARKER)).isFile()) continue;
      const owner = Number(fs.readFileSync(path.join(dir, TMPFS_MARKER), 'utf8').trim());
      if (!Number.isInteger(owner) || owner <= 0 || pidIsAlive(owner)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(`rm -r ${dir}`);
    } catch {
      // no marker: not ours, leave it
    }
  }
  return removed;
}

function makeTmpfsDir(): string {
  let root = TMPFS_ROOT;
  try {
    if (fs.statfsSync(root).type !== TMPFS_MAGIC) log(`warning: ${root} is not tmpfs; 'tmpfs' tests will run on another filesystem`);
  } catch {
    log(`warning: ${root} missing; using /tmp for 'tmpfs' tests`);
    root = '/tmp';
  }
  const dir = fs.mkdtempSync(path.join(root, TMPFS_PREFIX));
  fs.writeFileSync(path.join(dir, TMPFS_MARKER), `${process.pid}\n`);
  // Not group/other-writable: the sweep of a later run removes only private dirs of its own uid.
  fs.chmodSync(dir, 0o755);
  return dir;
}

async function removeAll(made: ScratchFs[], tmpfs: string | undefined): Promise<void> {
  const errors: unknown[] = [];
  for (const scratch of made.splice(0).reverse()) {
    try {
      await removeScratchFs(scratch);
    } catch (e) {
      errors.push(e);
    }
  }
  if (tmpfs) fs.rmSync(tmpfs, { recursive: true, force: true });
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, 'removing scratch filesystems failed');
}

export default async function setup(project: SetupProject): Promise<() => Promise<void>> {
  const swept = [...sweepStaleScratch(), ...sweepStaleTmpfsDirs()];
  if (swept.length) log(`removed leftovers of earlier runs:\n  ${swept.join('\n  ')}`);
  registerCleanupOnExit();

  const made: ScratchFs[] = [];
  const tmpfs = makeTmpfsDir();
  // Scratch filesystems clean themselves up on exit/signals; the tmpfs dir needs the same.
  // Prepended because vitest's own exit listener calls process.exit(), which skips later ones.
  const removeTmpfsOnExit = (): void => fs.rmSync(tmpfs, { recursive: true, force: true });
  process.prependListener('exit', removeTmpfsOnExit);
  const env: ScratchEnv = { available: false, tmpfs };

  const availability = scratchAvailable();
  if (availability.ok) {
    try {
      for (const [key, opts] of SCRATCH_SET) {
        const scratch = await makeScratchFs(opts);
        made.push(scratch);
        env[key] = scratch.mountpoint ?? scratch.loop;
      }
      env.available = true;
    } catch (error) {
      process.removeListener('exit', removeTmpfsOnExit);
      await removeAll(made, tmpfs).catch((e: unknown) => log(`cleanup after failed setup also failed: ${String(e)}`));
      throw error;
    }
  } else {
    env.reason = availability.reason;
    log(`loop-device filesystems unavailable: ${availability.reason}`);
  }

  project.provide('scratch', env);
  return async () => {
    process.removeListener('exit', removeTmpfsOnExit);
    await removeAll(made, tmpfs);
  };
}
