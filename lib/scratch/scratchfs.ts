/**
 * Scratch filesystems on loop devices, for tests, benchmarks and crash tests.
 *
 * Every filesystem lives in a private directory `os.tmpdir()/odirect-scratch-[label-]XXXXXX/`
 * holding a sparse backing image, a marker file (`odirect-scratch.json`) and the mountpoint
 * `mnt/`. The loop device is attached with direct I/O on, so writes reach the backing disk and
 * O_DIRECT on the loop is real.
 *
 * Safety model: mount, umount, `losetup -d` and mkfs are only ever pointed at things this code
 * made, and the live kernel state is re-checked right before each of those commands:
 *  - mkfs / mount / `losetup -d` only on a loop whose backing file (per `losetup -nO BACK-FILE`)
 *    is our image;
 *  - umount only of `<scratch dir>/mnt`, and only if /proc/self/mountinfo shows it mounted from
 *    our loop (by name and by device number) and that loop is backed by our image;
 *  - a scratch directory is only recognised as ours if its name has our prefix, it sits directly
 *    in os.tmpdir(), and it contains a marker naming the same image.
 *
 * Only node built-ins are used, so the compiled file can be required on its own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMounts } from '../probe/mountinfo';
import { checkPrivileges, checkTools } from './availability';
import { TIMEOUT_MKFS_MS, TIMEOUT_MOUNT_MS, TIMEOUT_QUICK_MS, runAsyncOrThrow, runSync, runSyncOrThrow, sleepSync } from './commands';
import { addCleanup, claimOnce, ORDER } from './exit-cleanup';
import { LOOP_DEVICE_RE, listAttachedLoops, loopBackingFile, loopIsBackedBy, mountsOfLoop, topMountAt } from './kernel-state';
import {
  DIR_PREFIX,
  IMAGE_NAME,
  MOUNT_DIR_NAME,
  assertMarkerMatches,
  assertScratchShape,
  hasScratchDirName,
  isPrivateOwnedDir,
  markerOwnerIsDead,
  ownsMount,
  readMarker,
  scratchParentDir,
  writeMarker,
} from './ownership';
import { liveScratch, runningChildren } from './registry';
import type { ScratchFs, ScratchKind, ScratchOptions } from './types';

// The public face of lib/scratch: everything its users (tests, bench, verify-atomic) import.
export type { ScratchFs, ScratchKind, ScratchOptions } from './types';
export { scratchAvailable } from './availability';
export { assertMadeByThisProcess, isPrivateOwnedDir, ownsMount } from './ownership';


const DEFAULT_SIZE_MIB: Record<ScratchKind, number> = { ext4: 512, xfs: 512, raw: 64 };

const MKFS_ALWAYS: Record<'ext4' | 'xfs', string[]> = {
  ext4: ['-q', '-F'],
  xfs: ['-q', '-f'],
};
const MKFS_DEFAULTS: Record<'ext4' | 'xfs', string[]> = {
  // Initialise everything now, so no background ext4lazyinit thread writes during measurements.
  ext4: ['-b', '4096', '-E', 'lazy_itable_init=0,lazy_journal_init=0'],
  // reflink gives XFS its software fallback for RWF_ATOMIC writes.
  xfs: ['-b', 'size=4096', '-m', 'reflink=1'],
};


function sanitizeLabel(label: string | undefined): string {
  const clean = (label ?? '').replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 40);
  return clean ? `${clean}-` : '';
}

function validateOptions(opts: ScratchOptions): number {
  if (opts.kind !== 'ext4' && opts.kind !== 'xfs' && opts.kind !== 'raw') {
    throw new Error(`scratchfs: unknown kind ${JSON.stringify(opts.kind)} (expected ext4, xfs or raw)`);
  }
  const sizeMiB = opts.sizeMiB ?? DEFAULT_SIZE_MIB[opts.kind];
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1) throw new Error(`scratchfs: sizeMiB must be a positive integer, got ${sizeMiB}`);
  if (opts.kind === 'raw' && (opts.mountOptions || opts.mkfsArgs?.length)) {
    throw new Error('scratchfs: mountOptions/mkfsArgs make no sense for kind raw');
  }
  return sizeMiB;
}

function createScratchDir(label: string | undefined): string {
  const dir = fs.mkdtempSync(path.join(scratchParentDir(), DIR_PREFIX + sanitizeLabel(label)));
  // mkdtemp gives 0700; let non-root users reach the mountpoint inside.
  fs.chmodSync(dir, 0o755);
  return dir;
}

function createSparseImage(image: string, sizeMiB: number): void {
  const fd = fs.openSync(image, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDWR, 0o600);
  try {
    fs.ftruncateSync(fd, sizeMiB * 1024 * 1024);
  } finally {
    fs.closeSync(fd);
  }
}

function attachLoop(image: string): string {
  const out = runSyncOrThrow('losetup', ['--direct-io=on', '--find', '--show', image], TIMEOUT_QUICK_MS);
  const loop = out.trim();
  if (!LOOP_DEVICE_RE.test(loop)) throw new Error(`scratchfs: losetup printed ${JSON.stringify(out)}, expected /dev/loopN`);
  return loop;
}

function assertLoopIsOurs(loop: string, image: string, action: string): void {
  const backing = loopBackingFile(loop);
  if (backing !== image) {
    throw new Error(`scratchfs: refusing to ${action} ${loop}: its backing file is ${JSON.stringify(backing)}, not ${image}`);
  }
}

function mkfsArgsFor(kind: 'ext4' | 'xfs', opts: ScratchOptions): string[] {
  return [...MKFS_ALWAYS[kind], ...(opts.mkfsDefaults === false ? [] : MKFS_DEFAULTS[kind]), ...(opts.mkfsArgs ?? [])];
}

async function makeFilesystem(scratch: ScratchFs, kind: 'ext4' | 'xfs', opts: ScratchOptions): Promise<void> {
  assertLoopIsOurs(scratch.loop, scratch.image, 'mkfs');
  if (mountsOfLoop(scratch.loop).length) throw new Error(`scratchfs: refusing to mkfs ${scratch.loop}: it is mounted`);
  const args = [...mkfsArgsFor(kind, opts), scratch.loop];
  try {
    await runAsyncOrThrow(`mkfs.${kind}`, args, TIMEOUT_MKFS_MS);
  } catch (e) {
    const hint = kind === 'xfs' ? ' (mkfs.xfs 6.x needs an image of at least 300 MiB)' : '';
    throw new Error(`${(e as Error).message}${hint}`);
  }
}

function mountLoop(scratch: ScratchFs, mountOptions: string | undefined): void {
  const mountpoint = scratch.mountpoint!;
  assertLoopIsOurs(scratch.loop, scratch.image, 'mount');
  if (topMountAt(mountpoint)) throw new Error(`scratchfs: ${mountpoint} is already a mountpoint`);
  const args = ['-t', scratch.kind, ...(mountOptions ? ['-o', mountOptions] : []), scratch.loop, mountpoint];
  runSyncOrThrow('mount', args, TIMEOUT_MOUNT_MS);
  if (!ownsMount(scratch)) throw new Error(`scratchfs: mount ${scratch.loop} on ${mountpoint} reported success but mountinfo disagrees`);
}


/** umount our mountpoint, retrying briefly because a just-closed file can keep it busy. */
function unmountOwned(scratch: ScratchFs): void {
  const mountpoint = scratch.mountpoint!;
  let lastFailure = '';
  for (let attempt = 0; attempt < 10; attempt++) {
    const top = topMountAt(mountpoint);
    if (!top) return;
    if (!ownsMount(scratch)) {
      throw new Error(
        `scratchfs: refusing to unmount ${mountpoint}: it is mounted from ${top.source} (${top.fsType}), ` +
          `not from ${scratch.loop || '(no loop)'} backed by ${scratch.image}`,
      );
    }
    const r = runSync('umount', [mountpoint], TIMEOUT_MOUNT_MS);
    if (r.ok) continue; // loop again: confirms it is gone (or unmounts a second stacked mount of ours)
    lastFailure = r.failure;
    sleepSync(100 * (attempt + 1));
  }
  if (topMountAt(mountpoint)) throw new Error(`scratchfs: could not unmount ${mountpoint}: ${lastFailure}`);
}

/** Detach every loop device backed by our image (normally just one), each verified first. */
function detachLoopsOf(scratch: ScratchFs): void {
  const candidates = new Set<string>();
  if (scratch.loop) candidates.add(scratch.loop);
  for (const { loop, backingFile } of listAttachedLoops()) if (backingFile === scratch.image) candidates.add(loop);
  for (const loop of candidates) detachLoopIfOurs(loop, scratch.image);
}

function detachLoopIfOurs(loop: string, image: string): boolean {
  // A loop we detached earlier may already be reused by someone else: then it is not ours.
  if (!loopIsBackedBy(loop, image)) return false;
  const mountedAt = mountsOfLoop(loop).map((m) => m.mountPoint);
  if (mountedAt.length) throw new Error(`scratchfs: refusing to detach ${loop}: still mounted at ${mountedAt.join(', ')}`);
  let lastFailure = '';
  for (let attempt = 0; attempt < 10; attempt++) {
    if (!loopIsBackedBy(loop, image)) return true;
    const r = runSync('losetup', ['-d', loop], TIMEOUT_QUICK_MS);
    if (r.ok) return true; // a still-open loop is detached lazily by the kernel, on last close
    lastFailure = r.failure;
    sleepSync(100 * (attempt + 1));
  }
  throw new Error(`scratchfs: could not detach ${loop}: ${lastFailure}`);
}

/** Guard for rm -r: recursive removal would descend into anything still mounted below dir. */
function assertNothingMountedUnder(dir: string): void {
  const below = readMounts().filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(dir + '/'));
  if (below.length) {
    throw new Error(`scratchfs: refusing to delete ${dir}: still mounted there: ${below.map((m) => `${m.source} on ${m.mountPoint}`).join(', ')}`);
  }
}

function removeScratchSync(scratch: ScratchFs): void {
  assertScratchShape(scratch);
  if (!fs.existsSync(scratch.dir)) {
    liveScratch.delete(scratch.dir); // already removed: idempotent
    return;
  }
  assertMarkerMatches(scratch);
  if (scratch.mountpoint !== undefined) unmountOwned(scratch);
  detachLoopsOf(scratch);
  assertNothingMountedUnder(scratch.dir);
  fs.rmSync(scratch.dir, { recursive: true, force: true });
  liveScratch.delete(scratch.dir);
}

/**
 * Makes a sparse image in a fresh private temp dir, attaches it to a loop device with direct I/O
 * on, and (unless kind is 'raw') makes the filesystem and mounts it at `dir/mnt` (mode 0777).
 * Half-made state is removed again if any step fails.
 */
export async function makeScratchFs(opts: ScratchOptions): Promise<ScratchFs> {
  const sizeMiB = validateOptions(opts);
  for (const check of [checkPrivileges(), checkTools([opts.kind])]) {
    if (!check.ok) throw new Error(`scratchfs: cannot make a ${opts.kind} scratch fs here: ${check.reason}`);
  }

  const dir = createScratchDir(opts.label);
  const scratch: ScratchFs = { kind: opts.kind, dir, image: path.join(dir, IMAGE_NAME), loop: '' };
  // Registered before anything exists, so an interrupt at any later point cleans up.
  liveScratch.set(dir, scratch);
  try {
    writeMarker(scratch);
    createSparseImage(scratch.image, sizeMiB);
    scratch.loop = attachLoop(scratch.image);
    writeMarker(scratch);
    if (opts.kind !== 'raw') {
      await makeFilesystem(scratch, opts.kind, opts);
      scratch.mountpoint = path.join(dir, MOUNT_DIR_NAME);
      if (opts.mountOptions) scratch.mountOptions = opts.mountOptions;
      fs.mkdirSync(scratch.mountpoint, { mode: 0o755 });
      writeMarker(scratch);
      mountLoop(scratch, opts.mountOptions);
      fs.chmodSync(scratch.mountpoint, 0o777);
    }
    return scratch;
  } catch (error) {
    try {
      removeScratchSync(scratch);
    } catch (cleanupError) {
      throw new Error(`${(error as Error).message}\n(and cleaning up ${dir} failed too: ${(cleanupError as Error).message})`, { cause: error });
    }
    throw error;
  }
}

/**
 * Unmounts, detaches and deletes a scratch fs. Idempotent. Verifies ownership before every
 * umount / losetup -d and throws (touching nothing) for an object that is not ours.
 */
export async function removeScratchFs(scratch: ScratchFs): Promise<void> {
  removeScratchSync(scratch);
}

/**
 * Unmounts and mounts again (e.g. after a simulated crash). `mountOptions` undefined keeps the
 * current options; '' mounts with none. Same ownership checks as removal.
 */
export async function remountScratchFs(scratch: ScratchFs, mountOptions?: string): Promise<void> {
  assertScratchShape(scratch);
  if (scratch.kind === 'raw' || scratch.mountpoint === undefined) throw new Error('scratchfs: cannot remount a raw scratch device');
  assertMarkerMatches(scratch);
  if (!ownsMount(scratch)) throw new Error(`scratchfs: refusing to remount ${scratch.mountpoint}: not mounted from our loop ${scratch.loop}`);
  unmountOwned(scratch);
  const options = mountOptions === undefined ? scratch.mountOptions : mountOptions || undefined;
  mountLoop(scratch, options);
  if (options) scratch.mountOptions = options;
  else delete scratch.mountOptions;
  writeMarker(scratch);
}

/**
 * Removes leftovers of earlier runs that were killed: scratch dirs (our prefix, in tmpdir, with
 * our marker) whose creating process is dead, their loops and mounts at `<dir>/mnt`. Loops or
 * mounts elsewhere are reported on stderr and left alone. Returns what it removed.
 */
export function sweepStaleScratch(): string[] {
  const removed: string[] = [];
  for (const dir of findStaleScratchDirs()) {
    try {
      sweepOneStaleDir(dir, removed);
    } catch (e) {
      process.stderr.write(`scratchfs: could not sweep stale ${dir}: ${(e as Error).message}\n`);
    }
  }
  return removed;
}

function findStaleScratchDirs(): string[] {
  const parent = scratchParentDir();
  const dirs = new Set<string>();
  for (const { backingFile } of listAttachedLoops()) {
    const dir = path.dirname(backingFile);
    if (hasScratchDirName(dir)) dirs.add(dir);
  }
  try {
    for (const name of fs.readdirSync(parent)) if (name.startsWith(DIR_PREFIX)) dirs.add(path.join(parent, name));
  } catch {
    // unreadable tmpdir: nothing to sweep
  }
  return [...dirs].filter((dir) => {
    if (liveScratch.has(dir)) return false;
    // readMarker checks the dir is ours: real dir, our uid, not group/other-writable.
    const marker = readMarker(dir);
    return marker !== null && marker.image === path.join(dir, IMAGE_NAME) && markerOwnerIsDead(marker);
  });
}

function sweepOneStaleDir(dir: string, removed: string[]): void {
  const image = path.join(dir, IMAGE_NAME);
  const mountpoint = path.join(dir, MOUNT_DIR_NAME);
  for (const { loop, backingFile } of listAttachedLoops()) {
    if (backingFile !== image) continue;
    const mounts = mountsOfLoop(loop);
    for (const m of mounts) {
      if (m.mountPoint !== mountpoint) throw new Error(`stale loop ${loop} is mounted at ${m.mountPoint}, which we did not create; leaving it`);
    }
    // Only dir/image/loop/mountpoint matter for unmounting; kind is a placeholder.
    const stale: ScratchFs = { kind: 'ext4', dir, image, loop, mountpoint };
    if (mounts.length) {
      unmountOwned(stale);
      removed.push(`umount ${mountpoint} (${loop})`);
    }
    if (detachLoopIfOurs(loop, image)) removed.push(`losetup -d ${loop} (${image})`);
  }
  assertNothingMountedUnder(dir);
  // Checked again right before removing (lstat: a dir swapped for a symlink is left alone).
  if (!isPrivateOwnedDir(dir)) throw new Error(`${dir} is no longer a private directory of ours; leaving it`);
  fs.rmSync(dir, { recursive: true, force: true });
  removed.push(`rm -r ${dir}`);
}

/** Sync cleanup of everything this process made, for exit/signal paths. Never throws. */
function removeAllLiveSync(): void {
  for (const child of runningChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const scratch of [...liveScratch.values()].reverse()) {
    try {
      removeScratchSync(scratch);
    } catch (e) {
      process.stderr.write(`scratchfs: cleanup of ${scratch.dir} failed: ${(e as Error).message}\n`);
    }
  }
}

/**
 * Once per process: on exit, SIGINT/SIGTERM/SIGHUP and fatal uncaught exceptions, remove every
 * scratch fs this process made (./exit-cleanup.ts: after the bench's own cleanup, and with the
 * signal re-raised afterwards if nobody else listens for it). If someone else listens (e.g.
 * vitest), they decide how to exit — and since the filesystems are gone by then, a listener
 * that keeps the process alive after SIGINT/SIGTERM/SIGHUP must not expect them.
 */
export function registerCleanupOnExit(): void {
  if (!claimOnce('scratchfs.cleanup')) return;
  addCleanup(ORDER.scratch, removeAllLiveSync);
}
