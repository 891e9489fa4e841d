// What the crash test may shut down: a scratch filesystem odirect made on a
// loop device (checked again right before each step), or, only with
// --i-own-this-device, a mountpoint the user names, never '/' nor the
// filesystem holding the working directory or this package.
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import * as path from 'node:path';
import { OdirectError } from '../errors';
import { C, native } from '../native';
import { readMounts } from '../probe/mountinfo';
import { remountScratchFs, type ScratchFs } from '../scratch/scratchfs';
import { SHUTDOWN, shutdownScratchFs } from '../scratch/shutdown';
import { shutdownAddon } from '../scratch/shutdown-addon';
import type { CrashTarget } from './crash';

export function scratchTarget(scratch: ScratchFs): CrashTarget {
  if (!scratch.mountpoint) throw new OdirectError('ERR_NOT_MOUNTED', 'scratch filesystem is not mounted');
  return {
    mountpoint: scratch.mountpoint,
    shutdown: () => shutdownScratchFs(scratch, SHUTDOWN.NOLOGFLUSH),
    remount: () => remountScratchFs(scratch),
  };
}

function sameFilesystem(a: string, b: string): boolean {
  const x = native.statxSync(a);
  const y = native.statxSync(b);
  return x.devMajor === y.devMajor && x.devMinor === y.devMinor;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new OdirectError('ERR_COMMAND_FAILED', `${cmd} ${args.join(' ')} failed: ${r.stderr || r.error}`);
}

/** A mountpoint on a dedicated device the user says is theirs to crash. Refuses anything shared. */
export function ownedDeviceTarget(mountpoint: string): CrashTarget {
  const mnt = realpathSync(mountpoint);
  const refuse = (why: string): never => {
    throw new OdirectError('ERR_REFUSED', `refusing to shut down ${mnt}: ${why}`);
  };
  if (mnt === '/') refuse('it is the root filesystem');
  const mount = topMount(mnt);
  if (!mount) return refuse('it is not a mountpoint');
  if (!mount.source.startsWith('/dev/')) refuse(`its source ${mount.source} is not a block device`);
  if (sameFilesystem(mnt, '/')) refuse('it is on the same filesystem as /');
  if (sameFilesystem(mnt, process.cwd())) refuse('the working directory is on it');
  if (sameFilesystem(mnt, path.join(__dirname, '..'))) refuse('odirect itself is installed on it');
  const { source, fsType, majorMinor } = mount;
  const options = spawnSync('findmnt', ['-no', 'OPTIONS', mnt], { encoding: 'utf8' }).stdout.trim();
  // Before each step: the mount at mnt must still be the one checked above
  // (not unmounted, overmounted or replaced since).
  const stillOurs = (): void => {
    const now = topMount(mnt);
    if (!now || now.source !== source || now.majorMinor !== majorMinor) {
      refuse(`what is mounted there changed since it was checked (${now ? `${now.source}, ${now.majorMinor}` : 'nothing'})`);
    }
  };
  return {
    mountpoint: mnt,
    async shutdown() {
      const fd = await native.open(mnt, C.O_RDONLY | C.O_DIRECTORY, 0);
      try {
        // Checked on the open fd, so the ioctl goes to the filesystem that was checked.
        const st = native.statxSync(fd);
        const root = native.statxSync('/');
        if (`${st.devMajor}:${st.devMinor}` !== majorMinor) refuse(`the directory opened is not on ${source}`);
        if (st.devMajor === root.devMajor && st.devMinor === root.devMinor) refuse('it is the root filesystem');
        stillOurs();
        await shutdownAddon().fsShutdown(fd, SHUTDOWN.NOLOGFLUSH);
      } finally {
        await native.close(fd);
      }
    },
    async remount() {
      stillOurs();
      run('umount', [mnt]);
      run('mount', ['-t', fsType, ...(options ? ['-o', options] : []), source, mnt]);
    },
  };
}

/** The mount visible at `mnt` (the topmost one there). */
function topMount(mnt: string) {
  return readMounts()
    .filter((m) => m.mountPoint === mnt)
    .pop();
}
