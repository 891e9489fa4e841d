// The torn-write hunt: writers overwrite the same aligned regions with atomic
// writes of self-describing blocks while direct readers read them; every read
// must show one generation across the whole region. Bounded by time.
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { alignedBuffer } from '../aligned';
import { open } from '../file';
import type { Capabilities } from '../types';
import { checkRegion, fillRegion } from './blocks';

export interface TornReport {
  regionSize: number;
  regions: number;
  writes: number;
  reads: number;
  torn: number;
  corrupt: number;
  seconds: number;
  examples: string[];
}

export interface TornOptions {
  seconds: number;
  writers?: number;
  readers?: number;
  regions?: number;
  /** Called about once a second with the counts so far. */
  progress?: (soFar: Readonly<TornReport>) => void;
}

/** Region size: 64 KiB where the filesystem allows, within [unitMin, unitMax]. */
export function huntRegionSize(caps: Capabilities): number {
  return Math.min(Math.max(65536, caps.atomic.unitMin), caps.atomic.unitMax);
}

export async function huntTornWrites(dir: string, caps: Capabilities, options: TornOptions): Promise<TornReport> {
  const regionSize = huntRegionSize(caps);
  const regions = options.regions ?? 16;
  const file = path.join(dir, `.odirect-verify-torn-${randomBytes(4).toString('hex')}`);
  const f = await open(file, { create: true, exclusive: true, alignment: 'strict', fallback: 'error' });
  const report: TornReport = { regionSize, regions, writes: 0, reads: 0, torn: 0, corrupt: 0, seconds: 0, examples: [] };
  const generation = new Uint32Array(regions);
  const started = Date.now();
  const deadline = started + options.seconds * 1000;
  const pick = () => Math.floor(Math.random() * regions);
  const ticker = options.progress ? setInterval(() => options.progress!(report), 1000) : undefined;
  try {
    for (let r = 0; r < regions; r++) {
      const block = alignedBuffer(regionSize);
      fillRegion(block, r, 0);
      await f.writeAtomic(block, r * regionSize);
    }
    const writer = async () => {
      const block = alignedBuffer(regionSize);
      while (Date.now() < deadline) {
        const r = pick();
        fillRegion(block, r, ++generation[r]!);
        await f.writeAtomic(block, r * regionSize);
        report.writes++;
      }
    };
    const reader = async () => {
      const block = alignedBuffer(regionSize);
      while (Date.now() < deadline) {
        const r = pick();
        await f.read(block, r * regionSize);
        report.reads++;
        const state = checkRegion(block, r);
        if (state.kind === 'torn' || state.kind === 'corrupt' || state.kind === 'empty') {
          if (state.kind === 'torn') report.torn++;
          else report.corrupt++;
          if (report.examples.length < 5) report.examples.push(`region ${r}: ${JSON.stringify(state)}`);
        }
      }
    };
    await Promise.all([
      ...Array.from({ length: options.writers ?? 4 }, writer),
      ...Array.from({ length: options.readers ?? 4 }, reader),
    ]);
  } finally {
    clearInterval(ticker);
    report.seconds = (Date.now() - started) / 1000;
    await f.close();
    await unlink(file).catch(() => undefined);
  }
  return report;
}
