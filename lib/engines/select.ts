// Which engine a file gets: ODIRECT_ENGINE forces one for the whole process;
// 'auto' takes io_uring where a ring can be set up, the thread pool otherwise.
import { UnsupportedError } from '../errors';
import { uringAvailability } from '../probe/uring';
import type { EngineName } from '../types';
import { checkEnum } from '../validate';
import type { Engine } from './engine';
import { threadPoolEngine } from './threadpool';
import { uringEngine } from './uring';

/** `queueDepth` sizes this thread's ring if this call makes it (the first io_uring open on the thread). */
export function selectEngine(requested: 'auto' | EngineName = 'auto', queueDepth?: number): Engine {
  const forced = checkEnum(process.env.ODIRECT_ENGINE || undefined, 'ODIRECT_ENGINE', ['uring', 'threadpool'] as const);
  const want = forced ?? requested;
  if (want === 'threadpool') return threadPoolEngine;
  const uring = uringAvailability();
  if (uring.available) return uringEngine(queueDepth);
  if (want === 'uring') {
    throw new UnsupportedError('ERR_URING_UNAVAILABLE', `the io_uring engine is unavailable: ${uring.reason}`);
  }
  return threadPoolEngine;
}
