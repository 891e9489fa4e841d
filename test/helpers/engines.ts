// The engines a parametrised test runs on: ODIRECT_TEST_ENGINES (comma list),
// by default both.
import type { EngineName } from '../../lib/types';

export const ENGINES: readonly EngineName[] = (process.env.ODIRECT_TEST_ENGINES ?? 'threadpool,uring')
  .split(',')
  .map((e) => e.trim())
  .filter((e): e is EngineName => e === 'threadpool' || e === 'uring');
