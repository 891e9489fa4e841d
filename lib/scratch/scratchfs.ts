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
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readMounts, type MountEntry } from '../probe/mountinfo';

export type ScratchKind = 'ext4' | 'xfs' | 'raw';

export interface ScratchOptions {
  kind: ScratchKind;
  /** Image size. Default 512 for ext4/xfs, 64 for raw. mkfs.xfs 6.x refuses anything below 300 MiB. */
  sizeMiB?: number;
  /** Extra mkfs arguments, appended after the defaults (e.g. ['-O', '^has_journal']). */
  mkfsArgs?: string[];
  /**
   * Set to false to drop the default mkfs tuning arguments (ext4: `-b 4096 -E lazy_itable_init=0,
   * lazy_journal_init=0`; xfs: `-b size=4096 -m reflink=1`) so mkfsArgs can choose differently
   * (mkfs.xfs rejects an option given twice). `-q` and the force flag are always passed.
   */
  mkfsDefaults?: boolean;
  /** `mount -o` options, e.g. 'data=journal' (ext4) or 'max_atomic_write=1m' (xfs). */
  mountOptions?: string;
  /** Goes into the directory name, to tell scratch filesystems apart when debugging. */
  label?: string;
}

export interface ScratchFs {
  kind: ScratchKind;
  /** The private temp dir we created (holds image + marker + mountpoint). */
  dir: string;
  /** The backing file. */
  image: string;
  /** /dev/loopN */
  loop: string;
  /** Absent for 'raw'. */
  mountpoint?: string;
  mountOptions?: string;
}

const DIR_PREFIX = 'odirect-scratch-';
const MARKER_NAME = 'odirect-scratch.json';
const IMAGE_NAME = 'image.img';
const MOUNT_DIR_NAME = 'mnt';
const LOOP_DEVICE_RE = /^\/dev\/loop\d+$/;

const TIMEOUT_QUICK_MS = 15_000; // losetup
const TIMEOUT_MOUNT_MS = 60_000; // mount/umount (umount may have to write back dirty data)
const TIMEOUT_MKFS_MS = 180_000;

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

/* ------------------------------------------------------------------------------------------ */
/* Process-wide registry                                                                       */
/* ------------------------------------------------------------------------------------------ */

interface ProcessState {
  /** Scratch filesystems this process made and has not removed yet (including half-made ones). */
  liveScratch: Map<string, ScratchFs>;
  /** Slow commands (mkfs) still running, so an interrupt can kill them before cleaning up. */
  runningChildren: Set<ChildProcess>;
  cleanupRegistered: boolean;
}

/**
 * Kept on the process object, not in module scope: test runners may load this module more than
 * once per process (or load both lib/ and dist/ copies), and the registry and the exit/signal
 * handlers must still exist exactly once.
 */
const STATE_KEY = Symbol.for('odirect.scratchfs.processState');
const processState: ProcessState = ((process as unknown as Record<symbol, ProcessState | undefined>)[STATE_KEY] ??= {
  liveScratch: new Map(),
  runningChildren: new Set(),
  cleanupRegistered: false,
});
const liveScratch = processState.liveScratch;
const runningChildren = processState.runningChildren;

/* ------------------------------------------------------------------------------------------ */
/* Running commands                                                                            */
/* ------------------------------------------------------------------------------------------ */

const SYSTEM_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const toolPathCache = new Map<string, string | null>();

/** Finds a tool in PATH or the usual sbin dirs (non-login shells often lack /usr/sbin in PATH). */
function findTool(name: string): string | null {
  const cached = toolPathCache.get(name);
  if (cached !== undefined) return cached;
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter(Boolean), ...SYSTEM_BIN_DIRS];
  let found: string | null = null;
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) {
        found = candidate;
        break;
      }
    } catch {
      // not here
    }
  }
  toolPathCache.set(name, found);
  return found;
}

function requireTool(name: string): string {
  const found = findTool(name);
  if (!found) throw new Error(`scratchfs: required tool '${name}' not found in PATH or ${SYSTEM_BIN_DIRS.join(':')}`);
  return found;
}

function commandLine(tool: string, args: string[]): string {
  return [tool, ...args].join(' ');
}

/** C locale keeps tool messages stable and English for error reports. */
const COMMAND_ENV = { ...process.env, LC_ALL: 'C' };

interface CommandResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** Human-readable failure description including stderr; '' when ok. */
  failure: string;
}

function runSync(tool: string, args: string[], timeoutMs: number): CommandResult {
  const r = spawnSync(requireTool(tool), args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: COMMAND_ENV,
  });
  const stdout = r.stdout ?? '';
  const stderr = conciseOutput(r.stderr ?? '');
  let failure = '';
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    failure =
      code === 'ETIMEDOUT'
        ? `\`${commandLine(tool, args)}\` timed out after ${timeoutMs / 1000}s`
        : `\`${commandLine(tool, args)}\` could not run: ${r.error.message}`;
  } else if (r.status !== 0) {
    failure = `\`${commandLine(tool, args)}\` failed (${r.status === null ? `signal ${r.signal}` : `exit ${r.status}`})`;
  }
  if (failure && stderr) failure += `: ${stderr}`;
  return { ok: failure === '', stdout, stderr, failure };
}

function runSyncOrThrow(tool: string, args: string[], timeoutMs: number): string {
  const r = runSync(tool, args, timeoutMs);
  if (!r.ok) throw new Error(`scratchfs: ${r.failure}`);
  return r.stdout;
}

/** Async variant for slow commands (mkfs), tracked so an interrupt handler can kill it. */
function runAsyncOrThrow(tool: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      requireTool(tool),
      args,
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', env: COMMAND_ENV, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        runningChildren.delete(child);
        if (!error) return resolve(stdout);
        const timedOut = (error as { killed?: boolean }).killed === true;
        const what = timedOut ? `timed out after ${timeoutMs / 1000}s` : `failed (${describeExecError(error)})`;
        const details = conciseOutput(String(stderr ?? '')) || conciseOutput(String(stdout ?? ''));
        reject(new Error(`scratchfs: \`${commandLine(tool, args)}\` ${what}${details ? `: ${details}` : ''}`));
      },
    );
    runningChildren.add(child);
  });
}

/** Tool stderr for error messages, without the usage screen some tools print after the real error. */
function conciseOutput(text: string): string {
  const trimmed = text.split(/^Usage:/m)[0]!.trim();
  return trimmed.length > 2000 ? trimmed.slice(0, 2000) + ' …' : trimmed;
}

function describeExecError(error: Error & { code?: unknown; signal?: unknown }): string {
  if (typeof error.code === 'number') return `exit ${error.code}`;
  if (error.signal) return `signal ${String(error.signal)}`;
  return error.message;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading kernel state                                                                        */
/* ------------------------------------------------------------------------------------------ */

/** The mount currently visible at `mountpoint` (the topmost one), if any. */
function topMountAt(mountpoint: string, mounts = readMounts()): MountEntry | undefined {
  let top: MountEntry | undefined;
  for (const m of mounts) if (m.mountPoint === mountpoint) top = m;
  return top;
}

function loopName(loop: string): string {
  return path.basename(loop);
}

/** "7:3" for /dev/loop3, from sysfs; null if the device does not exist. */
function loopMajorMinor(loop: string): string | null {
  try {
    return fs.readFileSync(`/sys/block/${loopName(loop)}/dev`, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * The backing file of a loop device as `losetup -nO BACK-FILE` reports it, or null if the loop
 * is not attached. A deleted backing file shows as "<path> (deleted)" and so never equals ours.
 */
function loopBackingFile(loop: string): string | null {
  if (!LOOP_DEVICE_RE.test(loop)) return null;
  const r = runSync('losetup', ['-nO', 'BACK-FILE', loop], TIMEOUT_QUICK_MS);
  if (!r.ok) return null;
  const backing = r.stdout.replace(/\n+$/, '');
  return backing === '' ? null : backing;
}

function loopIsBackedBy(loop: string, image: string): boolean {
  return image !== '' && loopBackingFile(loop) === image;
}

/** All attached loop devices with their backing files, straight from sysfs (cheap, no commands). */
function listAttachedLoops(): Array<{ loop: string; backingFile: string }> {
  let names: string[];
  try {
    names = fs.readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n));
  } catch {
    return [];
  }
  const loops: Array<{ loop: string; backingFile: string }> = [];
  for (const name of names) {
    try {
      const backingFile = fs.readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').replace(/\n$/, '');
      loops.push({ loop: `/dev/${name}`, backingFile });
    } catch {
      // not attached
    }
  }
  return loops;
}

/** Mounts whose source is this loop device (by name or by device number). */
function mountsOfLoop(loop: string, mounts = readMounts()): MountEntry[] {
  const majorMinor = loopMajorMinor(loop);
  return mounts.filter((m) => m.source === loop || (majorMinor !== null && m.majorMinor === majorMinor));
}

/** Start time of a process (clock ticks since boot) — with the pid it identifies a process. */
function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return null; // dead, just not reaped yet
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Recognising our own scratch directories                                                     */
/* ------------------------------------------------------------------------------------------ */

interface Marker {
  tool: 'odirect-scratch';
  pid: number;
  startTime: string | null;
  kind: ScratchKind;
  image: string;
  loop: string;
  mountpoint?: string | undefined;
  mountOptions?: string | undefined;
  created: string;
}

/** Real path of the temp dir, because losetup reports canonical backing-file paths. */
function scratchParentDir(): string {
  return fs.realpathSync(os.tmpdir());
}

function hasScratchDirName(dir: string): boolean {
  return path.basename(dir).startsWith(DIR_PREFIX) && path.dirname(dir) === scratchParentDir();
}

/**
 * True when `dir` is a real directory (not a symlink, per lstat) owned by this
 * process's uid and not writable by group or others: only then can nobody else
 * have put or swapped anything in it, so a sweep may remove it. As root, the
 * stale-dir sweep would otherwise delete whatever another user placed under
 * our prefix, marker and all.
 */
export function isPrivateOwnedDir(dir: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    return false;
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  return st.isDirectory() && !st.isSymbolicLink() && st.uid === uid && (st.mode & 0o022) === 0;
}

/** The marker, read only as a regular file (not a symlink) owned by us, in a private dir of ours. */
function readMarker(dir: string): Marker | null {
  if (!isPrivateOwnedDir(dir)) return null;
  try {
    const st = fs.lstatSync(path.join(dir, MARKER_NAME));
    if (!st.isFile() || st.uid !== (typeof process.getuid === 'function' ? process.getuid() : -1)) return null;
  } catch {
    return null;
  }
  try {
    const marker = JSON.parse(fs.readFileSync(path.join(dir, MARKER_NAME), 'utf8')) as Marker;
    return marker && marker.tool === 'odirect-scratch' && typeof marker.image === 'string' ? marker : null;
  } catch {
    return null;
  }
}

function writeMarker(scratch: ScratchFs): void {
  const marker: Marker = {
    tool: 'odirect-scratch',
    pid: process.pid,
    startTime: processStartTime(process.pid),
    kind: scratch.kind,
    image: scratch.image,
    loop: scratch.loop,
    mountpoint: scratch.mountpoint,
    mountOptions: scratch.mountOptions,
    created: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(scratch.dir, MARKER_NAME), JSON.stringify(marker, null, 2) + '\n', { mode: 0o644 });
}

/** True if the process that wrote the marker is gone (pid dead, or pid reused by another process). */
function markerOwnerIsDead(marker: Marker): boolean {
  if (typeof marker.pid !== 'number') return false;
  const startTime = processStartTime(marker.pid);
  if (startTime === null) return true;
  return marker.startTime !== null && marker.startTime !== startTime;
}

/**
 * Throws unless `scratch` has exactly the shape makeScratchFs produces: dir named by us directly
 * in tmpdir, image and mountpoint inside it, loop a /dev/loopN (or '' if never attached).
 * This is what stops a forged object (mountpoint '/', image elsewhere, ...) from going further.
 */
function assertScratchShape(scratch: ScratchFs): void {
  const problems: string[] = [];
  if (typeof scratch.dir !== 'string' || !path.isAbsolute(scratch.dir) || !hasScratchDirName(scratch.dir)) {
    problems.push(`dir ${JSON.stringify(scratch.dir)} is not a ${DIR_PREFIX}* directory in ${scratchParentDir()}`);
  } else {
    if (scratch.image !== path.join(scratch.dir, IMAGE_NAME)) {
      problems.push(`image ${JSON.stringify(scratch.image)} is not ${path.join(scratch.dir, IMAGE_NAME)}`);
    }
    const expectedMountpoint = scratch.kind === 'raw' ? undefined : path.join(scratch.dir, MOUNT_DIR_NAME);
    if (scratch.mountpoint !== undefined && scratch.mountpoint !== expectedMountpoint) {
      problems.push(`mountpoint ${JSON.stringify(scratch.mountpoint)} is not ${expectedMountpoint ?? '(none, raw)'}`);
    }
  }
  if (scratch.loop !== '' && !LOOP_DEVICE_RE.test(scratch.loop)) {
    problems.push(`loop ${JSON.stringify(scratch.loop)} is not a /dev/loopN device`);
  }
  if (problems.length) throw new Error(`scratchfs: refusing to touch a scratch fs that is not ours: ${problems.join('; ')}`);
}

/**
 * Throws unless `scratch` is a filesystem this process made and still holds
 * (the live registry: same dir, image, loop and mountpoint) and its marker, in
 * our own private dir, names this process and the same image and loop. A
 * description forged or handed over from another process never passes.
 */
export function assertMadeByThisProcess(scratch: ScratchFs): void {
  assertScratchShape(scratch);
  const live = liveScratch.get(scratch.dir);
  if (!live || live.image !== scratch.image || live.loop !== scratch.loop || live.mountpoint !== scratch.mountpoint) {
    throw new Error(`scratchfs: refusing to touch ${scratch.dir}: not a scratch filesystem this process made`);
  }
  const marker = readMarker(scratch.dir);
  if (!marker || marker.pid !== process.pid || marker.image !== scratch.image || marker.loop !== scratch.loop) {
    throw new Error(`scratchfs: refusing to touch ${scratch.dir}: its marker does not name this process and image`);
  }
}

function assertMarkerMatches(scratch: ScratchFs): void {
  const marker = readMarker(scratch.dir);
  if (!marker || marker.image !== scratch.image) {
    throw new Error(`scratchfs: refusing to touch ${scratch.dir}: marker ${MARKER_NAME} missing or names another image`);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Public: availability                                                                        */
/* ------------------------------------------------------------------------------------------ */

const CAP_SYS_ADMIN = 21;

function hasCapSysAdmin(): boolean | null {
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    if (!m) return null;
    return ((BigInt('0x' + m[1]) >> BigInt(CAP_SYS_ADMIN)) & 1n) === 1n;
  } catch {
    return null;
  }
}

/** Whether loop-backed scratch filesystems (all kinds) can be made here; if not, precisely why. */
export function scratchAvailable(): { ok: true } | { ok: false; reason: string } {
  const privileges = checkPrivileges();
  if (!privileges.ok) return privileges;
  return checkTools(['ext4', 'xfs', 'raw']);
}

function checkPrivileges(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `not Linux (platform ${process.platform})` };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { ok: false, reason: `not root (uid ${process.getuid()}); loop devices and mount need root` };
  }
  if (hasCapSysAdmin() === false) return { ok: false, reason: 'running as root but without CAP_SYS_ADMIN (unprivileged container?)' };
  try {
    fs.accessSync('/dev/loop-control', fs.constants.R_OK | fs.constants.W_OK);
  } catch (e) {
    return { ok: false, reason: `/dev/loop-control not usable (${(e as NodeJS.ErrnoException).code ?? String(e)}); loop module missing or device not exposed` };
  }
  return { ok: true };
}

const TOOLS_FOR_KIND: Record<ScratchKind, Array<[tool: string, pkg: string]>> = {
  raw: [['losetup', 'util-linux / mount']],
  ext4: [['losetup', 'util-linux / mount'], ['mount', 'mount'], ['umount', 'mount'], ['mkfs.ext4', 'e2fsprogs']],
  xfs: [['losetup', 'util-linux / mount'], ['mount', 'mount'], ['umount', 'mount'], ['mkfs.xfs', 'xfsprogs']],
};

function checkTools(kinds: ScratchKind[]): { ok: true } | { ok: false; reason: string } {
  const tools = new Map(kinds.flatMap((k) => TOOLS_FOR_KIND[k]));
  const missing = [...tools].filter(([tool]) => !findTool(tool));
  if (missing.length) {
    return { ok: false, reason: `missing tools: ${missing.map(([t, pkg]) => `${t} (${pkg})`).join(', ')}; run scripts/install-deps.sh` };
  }
  return { ok: true };
}

/* ------------------------------------------------------------------------------------------ */
/* Steps of making a scratch fs                                                                */
/* ------------------------------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------------------------------ */
/* Steps of removing a scratch fs                                                              */
/* ------------------------------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------------------------------ */
/* Public API                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/**
 * True iff /proc/self/mountinfo shows fs.mountpoint mounted (topmost) with source fs.loop — by
 * name and device number — and that loop's backing file is fs.image.
 */
export function ownsMount(scratch: ScratchFs): boolean {
  if (!scratch.mountpoint || !LOOP_DEVICE_RE.test(scratch.loop ?? '') || !scratch.image) return false;
  const top = topMountAt(scratch.mountpoint);
  if (!top || top.source !== scratch.loop) return false;
  const majorMinor = loopMajorMinor(scratch.loop);
  if (majorMinor === null || top.majorMinor !== majorMinor) return false;
  return loopIsBackedBy(scratch.loop, scratch.image);
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
 * scratch fs this process made. For a signal, if nobody else listens for it, the signal is
 * re-raised afterwards so the process dies with the usual status; if someone else listens
 * (e.g. vitest), they decide how to exit — and since the filesystems are gone by then, a
 * listener that keeps the process alive after SIGINT/SIGTERM/SIGHUP must not expect them.
 */
export function registerCleanupOnExit(): void {
  if (processState.cleanupRegistered) return;
  processState.cleanupRegistered = true;
  // Prepended: a listener that calls process.exit() (vitest's does, on exit and on signals) ends
  // the process on the spot, so listeners registered after it would never run.
  process.prependListener('exit', removeAllLiveSync);
  process.prependListener('uncaughtExceptionMonitor', () => {
    // With an 'uncaughtException' listener the process survives, and so must its filesystems.
    if (process.listenerCount('uncaughtException') === 0) removeAllLiveSync();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      removeAllLiveSync();
      if (process.listenerCount(signal) > 1) return;
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.prependListener(signal, onSignal);
  }
}
