// Opening with O_DIRECT: a filesystem without direct I/O refuses O_DIRECT at open with EINVAL
// (tmpfs); then the file opens without it when fallback allows, and writes take the
// 'fallback' route (route.ts). Any other error, or fallback 'error', is the caller's.
import type { FallbackMode } from '../types';

const EINVAL = 22;

/** Whether a failed O_DIRECT open is retried without O_DIRECT. */
export function reopenWithoutDirect(errno: number | undefined, fallback: FallbackMode): boolean {
  return errno === EINVAL && fallback !== 'error';
}
