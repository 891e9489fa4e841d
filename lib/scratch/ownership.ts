// Recognising what is ours: scratch directories (name, place, marker naming our image and the
// process that made it) and mounts (ownsMount). Nothing is unmounted, detached or removed
// unless these checks pass on the live state.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LOOP_DEVICE_RE, loopIsBackedBy, loopMajorMinor, processStartTime, topMountAt } from './kernel-state';
import { liveScratch } from './registry';
import type { ScratchFs, ScratchKind } from './types';

export const DIR_PREFIX = 'odirect-scratch-';
export const MARKER_NAME = 'odirect-scratch.json';
export const IMAGE_NAME = 'image.img';
export const MOUNT_DIR_NAME = 'mnt';


export interface Marker {
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
export function scratchParentDir(): string {
  return fs.realpathSync(os.tmpdir());
}

export function hasScratchDirName(dir: string): boolean {
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
export function readMarker(dir: string): Marker | null {
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

export function writeMarker(scratch: ScratchFs): void {
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
export function markerOwnerIsDead(marker: Marker): boolean {
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
export function assertScratchShape(scratch: ScratchFs): void {
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

export function assertMarkerMatches(scratch: ScratchFs): void {
  const marker = readMarker(scratch.dir);
  if (!marker || marker.image !== scratch.image) {
    throw new Error(`scratchfs: refusing to touch ${scratch.dir}: marker ${MARKER_NAME} missing or names another image`);
  }
}

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
