// The filesystem shutdown ioctl lives in its own small addon (target odirect_shutdown in
// binding.gyp, native/shutdown.cc), so the addon every user of odirect loads does not carry
// it. Only verify-atomic's crash cycles and the tests load this, on first use.
import * as path from 'node:path';
import { UnsupportedError } from '../errors';

interface ShutdownBinding {
  /** ioctl(fd, XFS_IOC_GOINGDOWN = EXT4_IOC_SHUTDOWN, flags) on the thread pool. */
  fsShutdown(fd: number, flags: number): Promise<number>;
  fsShutdownSync(fd: number, flags: number): number;
}

/**
 * Where node-gyp puts it. A shared library rather than a .node file (binding.gyp says why), so
 * it is loaded with process.dlopen, as require() loads a .node file.
 */
const ADDON = path.join(__dirname, '..', '..', 'build', 'Release', 'odirect_shutdown.so');

let binding: ShutdownBinding | undefined;

export function shutdownAddon(): ShutdownBinding {
  if (binding) return binding;
  try {
    const module = { exports: {} };
    process.dlopen(module, ADDON);
    binding = module.exports as ShutdownBinding;
  } catch (err) {
    throw new UnsupportedError('ERR_SHUTDOWN_ADDON', `the filesystem shutdown addon is not built (${ADDON}): run npm run build:native`, {
      cause: err,
    });
  }
  return binding;
}
