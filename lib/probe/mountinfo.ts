// Mounts from /proc/self/mountinfo: which mount a file lives on (statx
// STATX_MNT_ID gives its ID; ext2/3/4 share one statfs magic, mountinfo names
// them), and, for the scratch test bed, what is mounted where from which device.
// Node built-ins only: lib/scratch/scratchfs.ts must load without the addon.
import { readFileSync } from 'node:fs';

export interface MountEntry {
  mountId: number;
  /** "MAJ:MIN" of the mounted device. */
  majorMinor: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-mount options, then the superblock's. */
  options: string;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses mountinfo text; entries in mount order (a later one at a mountpoint covers an earlier one). */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    // Optional fields come before a lone '-' separator: find it by position, not by text.
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    entries.push({
      mountId: Number(f[0]),
      majorMinor: f[2]!,
      mountPoint: unescapeField(f[4]!),
      options: `${f[5] ?? ''},${f[sep + 3] ?? ''}`,
      fsType: f[sep + 1]!,
      source: unescapeField(f[sep + 2]!),
    });
  }
  return entries;
}

export function readMounts(): MountEntry[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

export function mountById(mountId: number): MountEntry | undefined {
  return readMounts().find((m) => m.mountId === mountId);
}
