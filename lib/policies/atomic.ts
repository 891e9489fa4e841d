// Atomic writes are all or nothing (docs/kernel-facts.md §2, §8): every rule the kernel
// applies (generic_atomic_write_valid) is checked here first, with its own
// code and the numbers; a short result is an error, never a success.
import { AtomicWriteError } from '../errors';
import type { Capabilities } from '../types';

export interface AtomicRequest {
  path: string;
  position: number;
  length: number;
  segments: number;
  /** The fd the write would go through is O_DIRECT (the kernel has no buffered atomics). */
  direct: boolean;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0 && Number.isSafeInteger(n);
}

export function checkAtomicWrite(caps: Capabilities, req: AtomicRequest): void {
  const { path, position, length } = req;
  const ctx = { path, position, length };
  const fail = (code: string, message: string, errno?: number): never => {
    throw new AtomicWriteError(code, message, errno === undefined ? ctx : { ...ctx, errno });
  };
  if (!caps.atomic.supported) {
    fail('EOPNOTSUPP', `atomic writes are not supported on ${path} (${caps.fsType}): ${caps.atomic.reason}`, 95);
  }
  if (!req.direct) {
    fail('ERR_ATOMIC_NOT_DIRECT', `atomic writes need direct I/O, but ${path} is open without O_DIRECT`);
  }
  const { unitMin, unitMax } = caps.atomic;
  if (!isPowerOfTwo(length)) fail('ERR_ATOMIC_NOT_POWER_OF_TWO', `${length}-byte atomic write: length is not a power of two`);
  if (length < unitMin) fail('ERR_ATOMIC_TOO_SMALL', `${length}-byte atomic write is below the minimum unit of ${unitMin} bytes`);
  if (length > unitMax) fail('ERR_ATOMIC_TOO_LARGE', `${length}-byte atomic write is above the maximum unit of ${unitMax} bytes`);
  if (position % length !== 0) {
    fail('ERR_ATOMIC_UNALIGNED', `${length}-byte atomic write at offset ${position} is not naturally aligned`);
  }
  const segmentsMax = Math.max(1, caps.atomic.segmentsMax);
  if (req.segments > segmentsMax) {
    fail('ERR_ATOMIC_SEGMENTS', `atomic write of ${req.segments} buffers: at most ${segmentsMax} allowed`);
  }
}

/** The kernel can return less than asked even for RWF_ATOMIC (RLIMIT_FSIZE): that is a failure. */
export function checkAtomicResult(written: number, req: AtomicRequest): void {
  if (written !== req.length) {
    throw new AtomicWriteError(
      'ERR_ATOMIC_SHORT',
      `atomic write of ${req.length} bytes at offset ${req.position} wrote ${written}: not all or nothing`,
      { path: req.path, position: req.position, length: req.length },
    );
  }
}
