// Reading the kernel's state: mounts (mountinfo), loop devices and their backing files (sysfs),
// process start times. Read right before every command that changes something.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMounts, type MountEntry } from '../probe/mountinfo';
import { TIMEOUT_QUICK_MS, runSync } from './commands';

export const LOOP_DEVICE_RE = /^\/dev\/loop\d+$/;


/** The mount currently visible at `mountpoint` (the topmost one), if any. */
export function topMountAt(mountpoint: string, mounts = readMounts()): MountEntry | undefined {
  let top: MountEntry | undefined;
  for (const m of mounts) if (m.mountPoint === mountpoint) top = m;
  return top;
}

export function loopName(loop: string): string {
  return path.basename(loop);
}

/** "7:3" for /dev/loop3, from sysfs; null if the device does not exist. */
export function loopMajorMinor(loop: string): string | null {
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
export function loopBackingFile(loop: string): string | null {
  if (!LOOP_DEVICE_RE.test(loop)) return null;
  const r = runSync('losetup', ['-nO', 'BACK-FILE', loop], TIMEOUT_QUICK_MS);
  if (!r.ok) return null;
  const backing = r.stdout.replace(/\n+$/, '');
  return backing === '' ? null : backing;
}

export function loopIsBackedBy(loop: string, image: string): boolean {
  return image !== '' && loopBackingFile(loop) === image;
}

/** All attached loop devices with their backing files, straight from sysfs (cheap, no commands). */
export function listAttachedLoops(): Array<{ loop: string; backingFile: string }> {
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
export function mountsOfLoop(loop: string, mounts = readMounts()): MountEntry[] {
  const majorMinor = loopMajorMinor(loop);
  return mounts.filter((m) => m.source === loop || (majorMinor !== null && m.majorMinor === majorMinor));
}

/** Start time of a process (clock ticks since boot) — with the pid it identifies a process. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return null; // dead, just not reaped yet
    return rest[19] ?? null;
  } catch {
    return null;
  }
}
