// Crash consistency: write self-describing regions with dsync (atomic where the
// filesystem has it), record every acknowledged write, shut the filesystem
// down mid-stream without a log flush, remount, and check that every region
// holds one whole generation and that no acknowledged write was lost.
import { alignedBuffer } from '../aligned';
import { open } from '../file';
import type { DirectFile } from '../file';
import { checkRegion, fillRegion } from './blocks';

/** A filesystem the crash test may shut down and remount: ours, or one the user gave us. */
export interface CrashTarget {
  readonly mountpoint: string;
  /** The shutdown ioctl, NOLOGFLUSH: like losing power as far as the filesystem knows. */
  shutdown(): Promise<void>;
  remount(): Promise<void>;
}

export interface CrashOptions {
  cycles: number;
  atomic: boolean;
  /** Bytes per region: an atomic unit, or one block for plain writes. */
  regionSize: number;
  regions?: number;
  writers?: number;
  /** How long writes run before the shutdown, ms (randomised up to twice this). */
  runMs?: number;
  /** Writes are acknowledged only once durable (RWF_DSYNC). Default true; false shows what is lost without it. */
  dsync?: boolean;
  /**
   * Every writer writes any region, picked at random, so writes to one region
   * overlap (with few regions, often). Default false: each writer owns its regions.
   * Through odirect, overlapping writes to one region complete in issue order
   * (policies/atomic-overlap.ts, range-lock.ts), so the last acknowledged
   * generation is still the one a region must hold at least.
   */
  overlap?: boolean;
  /** Called after each cycle with the counts so far. */
  progress?: (soFar: Readonly<CrashReport>) => void;
}

export interface CrashReport {
  cycles: number;
  acknowledged: number;
  failedAfterShutdown: number;
  lost: number;
  torn: number;
  corrupt: number;
  examples: string[];
}

const FILE = 'odirect-crash.dat';

/** The promise, or a rejection once `ms` have passed: a crash cycle never waits forever on an op the shutdown stranded. */
export async function settleWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function runCrashCycles(target: CrashTarget, options: CrashOptions): Promise<CrashReport> {
  const regions = options.regions ?? 32;
  const overlap = options.overlap ?? false;
  const writers = overlap ? (options.writers ?? 8) : Math.min(options.writers ?? 8, regions);
  const size = options.regionSize;
  const path = `${target.mountpoint}/${FILE}`;
  const report: CrashReport = { cycles: 0, acknowledged: 0, failedAfterShutdown: 0, lost: 0, torn: 0, corrupt: 0, examples: [] };
  const note = (s: string) => {
    if (report.examples.length < 10) report.examples.push(s);
  };
  const dsync = options.dsync ?? true;
  const write = (f: DirectFile, block: Buffer, r: number) =>
    options.atomic ? f.writeAtomic(block, r * size, { dsync }) : f.write(block, r * size, { dsync });

  // Generation 0 of every region, durable before the first cycle.
  const durable = new Uint32Array(regions);
  {
    const f = await open(path, { create: true, truncate: true, alignment: 'strict', fallback: 'error' });
    const block = alignedBuffer(size);
    for (let r = 0; r < regions; r++) {
      fillRegion(block, r, 0);
      await write(f, block, r);
    }
    await f.sync();
    await f.close();
  }

  for (let cycle = 0; cycle < options.cycles; cycle++) {
    const acked = Uint32Array.from(durable);
    const issued = Uint32Array.from(durable);
    // The order of acknowledgements, to tell a lost write just before the crash from one long before it.
    const ackOrder = new Float64Array(regions);
    let acks = 0;
    const f = await open(path, { alignment: 'strict', fallback: 'error' });
    let stopped = false;
    const writer = async (w: number) => {
      const block = alignedBuffer(size);
      let k = 0;
      while (!stopped) {
        const r = overlap ? Math.floor(Math.random() * regions) : w + writers * (k++ % Math.ceil((regions - w) / writers));
        const gen = issued[r]! + 1;
        issued[r] = gen;
        fillRegion(block, r, gen);
        try {
          await write(f, block, r);
        } catch {
          report.failedAfterShutdown++;
          return; // EIO once the filesystem is down
        }
        if (gen > acked[r]!) acked[r] = gen;
        ackOrder[r] = ++acks;
        report.acknowledged++;
      }
    };
    const running = Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
    const runMs = options.runMs ?? 150;
    await new Promise((resolve) => setTimeout(resolve, runMs + Math.floor(Math.random() * runMs)));
    await target.shutdown();
    stopped = true;
    await settleWithin(running, 10_000, 'writes in flight at shutdown');
    await settleWithin(f.close(), 10_000, 'close after shutdown').catch(() => undefined);
    await target.remount();

    const g = await open(path, { readOnly: true, alignment: 'strict' });
    const block = alignedBuffer(size);
    const broken: number[] = [];
    for (let r = 0; r < regions; r++) {
      await g.read(block, r * size);
      const state = checkRegion(block, r);
      if (state.kind !== 'whole') {
        if (state.kind === 'torn') report.torn++;
        else report.corrupt++;
        note(`cycle ${cycle} region ${r}: ${JSON.stringify(state)}`);
        broken.push(r);
      } else if (state.gen < acked[r]!) {
        report.lost++;
        note(
          `cycle ${cycle} region ${r}: generation ${state.gen} on disk, ${acked[r]} was acknowledged ` +
            `(acknowledgement ${ackOrder[r]} of ${acks} before the shutdown)`,
        );
        durable[r] = state.gen;
      } else if (state.gen > issued[r]!) {
        report.corrupt++;
        note(`cycle ${cycle} region ${r}: generation ${state.gen} was never written`);
        broken.push(r);
      } else {
        durable[r] = state.gen;
      }
    }
    await g.close();
    if (broken.length > 0) {
      // Rewrite what was found broken, so later cycles are judged on their own.
      const h = await open(path, { alignment: 'strict' });
      for (const r of broken) {
        durable[r] = issued[r]! + 1;
        fillRegion(block, r, durable[r]!);
        await write(h, block, r);
      }
      await h.close();
    }
    report.cycles++;
    options.progress?.(report);
  }
  return report;
}
