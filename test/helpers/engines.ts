// The engines a parametrised test runs on: ODIRECT_TEST_ENGINES (comma list),
// by default both. An unknown name is an error, not silently dropped.
import type { EngineName } from '../../lib/types';

export const ENGINES: readonly EngineName[] = (process.env.ODIRECT_TEST_ENGINES || 'threadpool,uring')
  .split(',')
  .map((e) => e.trim())
  .filter((e): e is EngineName => {
    if (e === 'threadpool' || e === 'uring') return true;
    if (e) throw new Error(`ODIRECT_TEST_ENGINES: unknown engine '${e}'`);
    return false;
  });
