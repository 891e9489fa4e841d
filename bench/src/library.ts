// What the bench uses of odirect: the built library (dist/), loaded exactly as a
// user's program loads it, and the scratch-filesystem harness that ships beside it.
// The bench is not part of the library: `require('odirect')` never loads this folder.
export { alignedBuffer, open, openLog, probe, UnsupportedError, type DirectFile } from '../../dist/index.js';
export { createReadStream, createWriteStream, replaceFile } from '../../dist/index.js';
export type { Capabilities, EngineName, WriteOptions } from '../../dist/index.js';
export {
  makeScratchFs,
  registerCleanupOnExit,
  removeScratchFs,
  scratchAvailable,
  sweepStaleScratch,
  type ScratchFs,
} from '../../dist/scratch/scratchfs.js';
export { addCleanup, onInterrupt, ORDER } from '../../dist/scratch/exit-cleanup.js';
// The addon, for the interrupt path (cleanup.ts points fds at /dev/null rather than closing them).
export { native } from '../../dist/native.js';
// Its fixed-file table holds the files too: emptied on that path, or the unmount finds them busy.
export { existingUringEngine } from '../../dist/engines/uring.js';
