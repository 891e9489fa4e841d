// The torn-write hunt: writers overwrite a few aligned regions with atomic
// writes of self-describing blocks while direct readers read them; every read
// must show the one whole generation a read at that moment may see. Bounded by
// time. It runs on one of two paths:
// - raw: pwritev2(RWF_ATOMIC) on a plain O_DIRECT fd, through the same engine
//   odirect uses but none of its policies: writes to one region may overlap,
//   so this is the kernel as it is;
// - library: DirectFile.writeAtomic, with odirect's policies (on XFS with
//   software atomic writes, overlapping ones are ordered: policies/atomic-overlap.ts).
// Each bad read is classified (blocks.ts): torn, zero, stale or corrupt.
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { alignedBuffer } from '../aligned';
import { selectEngine } from '../engines/select';
import { open } from '../file';
import { C, native } from '../native';
import type { Capabilities } from '../types';
import { classifyRead, fillRegion } from './blocks';

export type HuntPath = 'raw' | 'library';

export interface HuntCounts {
  reads: number;
  writes: number;
  torn: number;
  zero: number;
  stale: number;
  corrupt: number;
}

export interface TornReport extends HuntCounts {
  path: HuntPath;
  regionSize: number;
  regions: number;
  writers: number;
  readers: number;
  seconds: number;
  examples: string[];
}

export interface TornOptions {
  seconds: number;
  /** Default 'library'. */
  path?: HuntPath;
  writers?: number;
  readers?: number;
  /** Few regions make writes to one region overlap often. Default 4. */
  regions?: number;
  /** Called about once a second with the counts so far. */
  progress?: (soFar: Readonly<TornReport>) => void;
}

export const BAD_CLASSES = ['torn', 'zero', 'stale', 'corrupt'] as const;

/** Region size: 64 KiB where the filesystem allows, within [unitMin, unitMax]. */
export function huntRegionSize(caps: Capabilities): number {
  return Math.min(Math.max(65536, caps.atomic.unitMin), caps.atomic.unitMax);
}

/**
 * The write history of one region, to tell a stale read from a legitimate one
 * when writes overlap: a read may show any generation whose write had not been
 * overwritten before the read began, where overwritten means some write issued
 * after it completed had itself completed. Events are numbered in one sequence;
 * the numbers are taken before issue and after completion, so every error leans
 * towards calling a read legitimate.
 */
class RegionLog {
  lastGen = 0;
  /** The highest issue number among completed writes. */
  completedIssue = -1;
  private readonly completedAt = new Map<number, number>();

  constructor(private readonly clock: { seq: number }) {
    this.completedAt.set(0, this.clock.seq++);
  }

  issue(): { gen: number; issued: number } {
    return { gen: ++this.lastGen, issued: this.clock.seq++ };
  }

  complete(gen: number, issued: number): void {
    this.completedAt.set(gen, this.clock.seq++);
    if (issued > this.completedIssue) this.completedIssue = issued;
  }

  /** A whole generation `gen`, read by a read that began when completedIssue was `floor`. */
  judge(gen: number, floor: number): string | undefined {
    if (gen > this.lastGen) return `generation ${gen} was never written (last ${this.lastGen})`;
    const done = this.completedAt.get(gen);
    if (done !== undefined && done < floor) return `generation ${gen}, overwritten before the read began`;
    return undefined;
  }
}

interface HuntIo {
  write(block: Buffer, position: number): Promise<void>;
  read(block: Buffer, position: number): Promise<void>;
  close(): Promise<void>;
}

async function rawIo(file: string, regionSize: number): Promise<HuntIo> {
  const engine = selectEngine('auto');
  const fd = await native.open(file, C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_DIRECT, 0o600);
  return {
    async write(block, position) {
      const n = await engine.writev(fd, [block], position, C.RWF_ATOMIC);
      if (n !== regionSize) throw new Error(`raw atomic write at ${position} wrote ${n} of ${regionSize} bytes`);
    },
    async read(block, position) {
      const n = await engine.readv(fd, [block], position, 0);
      if (n !== regionSize) throw new Error(`raw read at ${position} read ${n} of ${regionSize} bytes`);
    },
    close: async () => void (await native.close(fd)),
  };
}

async function libraryIo(file: string, regionSize: number): Promise<HuntIo> {
  const f = await open(file, { create: true, exclusive: true, alignment: 'strict', fallback: 'error' });
  return {
    async write(block, position) {
      await f.writeAtomic(block, position);
    },
    async read(block, position) {
      const n = await f.read(block, position);
      if (n !== regionSize) throw new Error(`read at ${position} read ${n} of ${regionSize} bytes`);
    },
    close: () => f.close(),
  };
}

export async function huntTornWrites(dir: string, caps: Capabilities, options: TornOptions): Promise<TornReport> {
  const regionSize = huntRegionSize(caps);
  const regions = options.regions ?? 4;
  const writers = options.writers ?? 4;
  const readers = options.readers ?? 4;
  const which = options.path ?? 'library';
  const file = path.join(dir, `.odirect-verify-torn-${which}-${randomBytes(4).toString('hex')}`);
  const io = which === 'raw' ? await rawIo(file, regionSize) : await libraryIo(file, regionSize);
  const report: TornReport = {
    path: which,
    regionSize,
    regions,
    writers,
    readers,
    seconds: 0,
    reads: 0,
    writes: 0,
    torn: 0,
    zero: 0,
    stale: 0,
    corrupt: 0,
    examples: [],
  };
  const clock = { seq: 0 };
  const logs = Array.from({ length: regions }, () => new RegionLog(clock));
  const started = Date.now();
  const deadline = started + options.seconds * 1000;
  const pick = () => Math.floor(Math.random() * regions);
  const ticker = options.progress ? setInterval(() => options.progress!(report), 1000) : undefined;
  const check = (block: Buffer, r: number, floor: number, inFlight: number) => {
    report.reads++;
    let state = classifyRead(block, r);
    if (state.kind === 'whole') {
      const why = logs[r]!.judge(state.gen, floor);
      if (why === undefined) return;
      state = why.includes('never') ? { kind: 'corrupt', sector: -1, why } : { kind: 'stale', why };
    }
    // A few examples of each class.
    if (report[state.kind]++ < 3) {
      report.examples.push(`region ${r}: ${JSON.stringify(state)} (${inFlight} write${inFlight === 1 ? '' : 's'} to it in flight when the read began)`);
    }
  };
  const inFlight = new Uint32Array(regions);
  try {
    for (let r = 0; r < regions; r++) {
      const block = alignedBuffer(regionSize);
      fillRegion(block, r, 0);
      await io.write(block, r * regionSize);
    }
    const writer = async () => {
      const block = alignedBuffer(regionSize);
      while (Date.now() < deadline) {
        const r = pick();
        const log = logs[r]!;
        const { gen, issued } = log.issue();
        fillRegion(block, r, gen);
        inFlight[r]!++;
        try {
          await io.write(block, r * regionSize);
        } finally {
          inFlight[r]!--;
        }
        log.complete(gen, issued);
        report.writes++;
      }
    };
    const reader = async () => {
      const block = alignedBuffer(regionSize);
      while (Date.now() < deadline) {
        const r = pick();
        const floor = logs[r]!.completedIssue;
        const writing = inFlight[r]!;
        await io.read(block, r * regionSize);
        check(block, r, floor, writing);
      }
    };
    await Promise.all([...Array.from({ length: writers }, writer), ...Array.from({ length: readers }, reader)]);
    // Once every write has completed, each region must hold a generation nothing overwrote.
    const block = alignedBuffer(regionSize);
    for (let r = 0; r < regions; r++) {
      const floor = logs[r]!.completedIssue;
      await io.read(block, r * regionSize);
      check(block, r, floor, 0);
    }
  } finally {
    clearInterval(ticker);
    report.seconds = (Date.now() - started) / 1000;
    await io.close();
    await unlink(file).catch(() => undefined);
  }
  return report;
}

export function badReads(c: HuntCounts): number {
  return c.torn + c.zero + c.stale + c.corrupt;
}
