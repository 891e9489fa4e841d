// Whether scratch filesystems can be made here (Linux, root with CAP_SYS_ADMIN, loop devices,
// the tools), and if not, precisely why.
import * as fs from 'node:fs';
import { findTool } from './commands';
import type { ScratchKind } from './types';


export const CAP_SYS_ADMIN = 21;

export function hasCapSysAdmin(): boolean | null {
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

export function checkPrivileges(): { ok: true } | { ok: false; reason: string } {
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

export const TOOLS_FOR_KIND: Record<ScratchKind, Array<[tool: string, pkg: string]>> = {
  raw: [['losetup', 'util-linux / mount']],
  ext4: [['losetup', 'util-linux / mount'], ['mount', 'mount'], ['umount', 'mount'], ['mkfs.ext4', 'e2fsprogs']],
  xfs: [['losetup', 'util-linux / mount'], ['mount', 'mount'], ['umount', 'mount'], ['mkfs.xfs', 'xfsprogs']],
};

export function checkTools(kinds: ScratchKind[]): { ok: true } | { ok: false; reason: string } {
  const tools = new Map(kinds.flatMap((k) => TOOLS_FOR_KIND[k]));
  const missing = [...tools].filter(([tool]) => !findTool(tool));
  if (missing.length) {
    return { ok: false, reason: `missing tools: ${missing.map(([t, pkg]) => `${t} (${pkg})`).join(', ')}; run scripts/install-deps.sh` };
  }
  return { ok: true };
}
