// Which mount a file lives on, from /proc/self/mountinfo (statx STATX_MNT_ID
// gives the mount ID; ext2/3/4 share one statfs magic, mountinfo names them).
import { readFileSync } from 'node:fs';

export interface MountEntry {
  mountId: number;
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const l = left.split(' ');
    const r = right.split(' ');
    entries.push({
      mountId: Number(l[0]),
      mountPoint: unescapeField(l[4] ?? ''),
      options: `${l[5] ?? ''},${r[2] ?? ''}`,
      fsType: r[0] ?? 'unknown',
      source: unescapeField(r[1] ?? ''),
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
