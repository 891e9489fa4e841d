// The filesystem shutdown ioctl (XFS_IOC_GOINGDOWN = EXT4_IOC_SHUTDOWN), only
// ever aimed at a scratch filesystem this process made: the mount's source
// must be our loop device, backed by our image, checked right before the call.
import { C, native } from '../native';
import { OdirectError } from '../errors';
import { ownsMount, type ScratchFs } from './scratchfs';

/** What is flushed before the filesystem stops: DEFAULT syncs first, NOLOGFLUSH nothing (a crash). */
export const SHUTDOWN = { DEFAULT: 0, LOGFLUSH: 1, NOLOGFLUSH: 2 } as const;

export async function shutdownScratchFs(scratch: ScratchFs, flags: number = SHUTDOWN.NOLOGFLUSH): Promise<void> {
  if (!scratch.mountpoint || !ownsMount(scratch)) {
    throw new OdirectError(
      'ERR_NOT_OUR_FILESYSTEM',
      `refusing to shut down ${scratch.mountpoint ?? scratch.loop}: not a scratch filesystem this process made and mounted`,
    );
  }
  const fd = await native.open(scratch.mountpoint, C.O_RDONLY | C.O_DIRECTORY, 0);
  try {
    await native.fsShutdown(fd, flags);
  } finally {
    await native.close(fd);
  }
}
