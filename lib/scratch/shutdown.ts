// The filesystem shutdown ioctl (XFS_IOC_GOINGDOWN = EXT4_IOC_SHUTDOWN), only
// ever aimed at a scratch filesystem this process made (in scratchfs's live
// registry, with a marker naming this process). The directory is
// opened first and the checks are made on that open fd, so the ioctl goes to
// exactly the filesystem that was checked: the fd's device must be our loop
// device (backed by our image, per ownsMount), and not the root filesystem's.
import { C, native } from '../native';
import { OdirectError } from '../errors';
import { assertMadeByThisProcess, ownsMount, type ScratchFs } from './scratchfs';

/** What is flushed before the filesystem stops: DEFAULT syncs first, NOLOGFLUSH nothing (a crash). */
export const SHUTDOWN = { DEFAULT: 0, LOGFLUSH: 1, NOLOGFLUSH: 2 } as const;

export async function shutdownScratchFs(scratch: ScratchFs, flags: number = SHUTDOWN.NOLOGFLUSH): Promise<void> {
  const refuse = (why: string): never => {
    throw new OdirectError('ERR_NOT_OUR_FILESYSTEM', `refusing to shut down ${scratch.mountpoint ?? scratch.loop}: ${why}`);
  };
  if (!scratch.mountpoint) refuse('it is not mounted');
  try {
    assertMadeByThisProcess(scratch);
  } catch (err) {
    refuse((err as Error).message);
  }
  const fd = await native.open(scratch.mountpoint!, C.O_RDONLY | C.O_DIRECTORY, 0);
  try {
    const opened = native.statxSync(fd);
    const loop = native.statxSync(scratch.loop);
    const root = native.statxSync('/');
    if (opened.devMajor !== loop.rdevMajor || opened.devMinor !== loop.rdevMinor) {
      refuse(`the directory opened is not on ${scratch.loop}`);
    }
    if (opened.devMajor === root.devMajor && opened.devMinor === root.devMinor) refuse('it is the root filesystem');
    if (!ownsMount(scratch)) refuse('not a scratch filesystem this process made and mounted');
    await native.fsShutdown(fd, flags);
  } finally {
    await native.close(fd);
  }
}
