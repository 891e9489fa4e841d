// Crash cycles for the log: appenders running, the filesystem shut down
// without a log flush (like losing power, as far as the filesystem knows),
// remount, open (recovery), replay everything and judge it:
//  - lost: a sequence that was acknowledged is missing or holds other bytes;
//  - unwritten: a record that no append() of that run asked for.
// Every record says who appended it (cycle, appender, count) and its bytes
// follow from that, so a record from nowhere cannot pass.
import { DurableLog, type LogOptions, type LogTestHooks } from '../../lib/log/log';
import type { CrashTarget } from '../../lib/verify/crash';
import type { EngineName } from '../../lib/types';
import { randomSize, recordBytes, seeded } from './log-records';
import { settleWithin } from '../../lib/verify/crash';

export interface LogCrashOptions {
  cycles: number;
  appenders?: number;
  /** How long appends run before the shutdown, ms (randomised up to twice this). */
  runMs?: number;
  engineFor: (cycle: number) => EngineName;
  hooks?: LogTestHooks;
  /** Log options over the defaults (1 MiB segments, 64 KiB batches). */
  logOptions?: LogOptions;
}

export interface LogCrashReport {
  cycles: number;
  acknowledged: number;
  /** Appends rejected once the filesystem was down: they were in flight. */
  failedAfterShutdown: number;
  /** Records found that were appended but not yet acknowledged at the crash. */
  recoveredUnacknowledged: number;
  lost: number;
  unwritten: number;
  /** Segments reused after retention (stale batches under an old salt in them). */
  segmentsRecycled: number;
  examples: string[];
}

const ID_BYTES = 12;

function makeRecord(cycle: number, appender: number, count: number, size: number): Buffer {
  const key = cycle * 1_000_003 + appender * 65_537 + count;
  const body = recordBytes(key, size);
  const id = Buffer.alloc(ID_BYTES);
  id.writeUInt32LE(cycle, 0);
  id.writeUInt32LE(appender, 4);
  id.writeUInt32LE(count, 8);
  return Buffer.concat([id, body]);
}

/** Who appended it, if its bytes are exactly what that append wrote. */
function identify(data: Buffer): string | undefined {
  if (data.byteLength < ID_BYTES) return undefined;
  const cycle = data.readUInt32LE(0);
  const appender = data.readUInt32LE(4);
  const count = data.readUInt32LE(8);
  const expected = makeRecord(cycle, appender, count, data.byteLength - ID_BYTES);
  return expected.equals(data) ? `${cycle}/${appender}/${count}` : undefined;
}

export async function runLogCrashCycles(target: CrashTarget, o: LogCrashOptions): Promise<LogCrashReport> {
  const dir = `${target.mountpoint}/log`;
  const appenders = o.appenders ?? 16;
  const runMs = o.runMs ?? 150;
  const options: LogOptions = { segmentSize: 1 << 20, maxBatchBytes: 64 << 10, maxRecordSize: 16 << 10, ...o.logOptions };
  const report: LogCrashReport = { cycles: 0, acknowledged: 0, failedAfterShutdown: 0, recoveredUnacknowledged: 0, lost: 0, unwritten: 0, segmentsRecycled: 0, examples: [] };
  const note = (s: string) => {
    if (report.examples.length < 10) report.examples.push(s);
  };
  /** What each kept sequence must hold: acknowledged, or found durable by a recovery. */
  const kept = new Map<number, string>();
  let keptThrough = 0;

  for (let cycle = 1; cycle <= o.cycles; cycle++) {
    const engine = o.engineFor(cycle);
    const log = await DurableLog.open(dir, { create: true, engine, ...options }, o.hooks ?? {});
    const issued = new Array<number>(appenders).fill(0);
    let stopped = false;
    const rand = seeded(cycle);
    const appender = async (a: number) => {
      while (!stopped) {
        const count = issued[a]!++;
        const record = makeRecord(cycle, a, count, randomSize(4000, rand));
        try {
          const { sequence } = await log.append(record);
          kept.set(sequence, `${cycle}/${a}/${count}`);
          keptThrough = Math.max(keptThrough, sequence);
          report.acknowledged++;
        } catch {
          report.failedAfterShutdown++;
          return; // EIO once the filesystem is down
        }
      }
    };
    const running = Promise.all(Array.from({ length: appenders }, (_, a) => appender(a)));
    await new Promise((resolve) => setTimeout(resolve, runMs + Math.floor(Math.random() * runMs)));
    await target.shutdown();
    stopped = true;
    await settleWithin(running, 10_000, 'appends in flight at shutdown');
    await settleWithin(log.close(), 10_000, 'close after shutdown');
    report.segmentsRecycled += log.stats.segmentsRecycled;
    await target.remount();

    // Recovery, then every record judged.
    const again = await DurableLog.open(dir, { engine, ...options });
    let last = 0;
    const keptIds = new Set(kept.values());
    for await (const { sequence, data } of again.replay()) {
      last = sequence;
      const id = identify(data);
      const want = kept.get(sequence);
      if (want !== undefined) {
        if (id !== want) {
          report.lost++;
          note(`cycle ${cycle}: sequence ${sequence} holds ${id ?? 'unknown bytes'}, ${want} was acknowledged`);
        }
        continue;
      }
      const [c, a, n] = (id ?? '-1/-1/-1').split('/').map(Number) as [number, number, number];
      if (id === undefined || c !== cycle || n >= issued[a]! || keptIds.has(id)) {
        report.unwritten++;
        note(`cycle ${cycle}: sequence ${sequence} holds ${id ?? 'unknown bytes'}, which no append of this run wrote there`);
        continue;
      }
      // Appended, not acknowledged before the crash, but durable: now part of the log.
      report.recoveredUnacknowledged++;
      kept.set(sequence, id);
      keptIds.add(id);
    }
    if (last < keptThrough) {
      report.lost += keptThrough - last;
      note(`cycle ${cycle}: the log ends at ${last}, sequences through ${keptThrough} were acknowledged`);
    }
    // Judge the next cycle on its own: what this recovery kept is what must stay.
    for (const s of [...kept.keys()]) if (s > last) kept.delete(s);
    keptThrough = last;
    // Retention between cycles: retired segments are reused with a fresh salt, so the next
    // cycles run over segments full of old batches that must never be taken for records.
    const { firstSequence } = await again.truncateBefore(Math.max(1, last - 300));
    for (const s of [...kept.keys()]) if (s < firstSequence) kept.delete(s);
    await again.close();
    report.cycles++;
  }
  return report;
}
