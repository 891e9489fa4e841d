// The log rows of issue 12: appends per second and p50/p99 append latency of
// odirect's openLog() against what Node services use instead, with 1, 64 and
// 256 concurrent appenders and records of 128 B, 1 KiB and 16 KiB:
//  - node:fs, write then fdatasync per record (what a hurried developer writes);
//  - node:fs with hand-rolled group commit (a queue, one writev, one fdatasync per batch);
//  - lmdb (lmdb-js, overlappingSync off: a put resolves once its commit is flushed);
//  - classic-level (LevelDB, put with sync: true);
//  - fio, one appender only: sequential O_DSYNC direct writes at depth 1, appending to a
//    new file (the "append-dsync" row) and overwriting a written file, each write the size
//    the log writes for a batch of one such record (4 KiB for 128 B and 1 KiB, 20 KiB for 16 KiB).
// Every contender appends the same records (random bytes) for the same time, bounded in
// bytes, in a fresh directory that is removed afterwards. One run each (noisy machines:
// read the ratios, not the absolute figures).
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openLog } from './library';
import { isInterrupted, runCommand } from './cleanup';
import type { ToolReport } from './environment';
import { formatIops, formatLatency, formatRatio } from './report';
import { LatencyRecorder } from './stats';

const KiB = 1024;
const MiB = 1024 * KiB;

export const LOG_APPENDERS = [1, 64, 256] as const;
export const LOG_RECORD_BYTES = [128, KiB, 16 * KiB] as const;
export const LOG_CONTENDERS = ['odirect-log', 'nodefs-fdatasync', 'nodefs-group', 'lmdb', 'classic-level', 'fio-append-dsync', 'fio-overwrite-dsync'] as const;
export type LogContender = (typeof LOG_CONTENDERS)[number];

const LABELS: Record<LogContender, string> = {
  'odirect-log': 'odirect log',
  'nodefs-fdatasync': 'node:fs write+fdatasync',
  'nodefs-group': 'node:fs group commit',
  lmdb: 'lmdb',
  'classic-level': 'classic-level',
  'fio-append-dsync': 'fio append-dsync qd1',
  'fio-overwrite-dsync': 'fio overwrite-dsync qd1',
};

export interface LogRow {
  id: string;
  fs: string;
  appenders: number;
  recordBytes: number;
  contender: LogContender;
  label: string;
  status: 'ok' | 'unsupported' | 'error';
  reason?: string;
  appends: number;
  seconds: number;
  appendsPerSecond: number | null;
  p50Us: number | null;
  p99Us: number | null;
  details?: Record<string, unknown>;
}

export interface LogBenchOptions {
  seconds: number;
  capBytes: number;
  /** Row filters (regular expressions against the row id 'log-a64-1k@ext4'). */
  filters: RegExp[];
  tools: ToolReport;
}

function sizeName(bytes: number): string {
  return bytes >= KiB ? `${bytes / KiB}k` : `${bytes}b`;
}

export function logRowId(appenders: number, recordBytes: number, fsName: string): string {
  return `log-a${appenders}-${sizeName(recordBytes)}@${fsName}`;
}

/** The log rows the filters select on `fsName` (all of them without filters). */
export function selectLogRows(filters: RegExp[], fsName: string): Array<{ appenders: number; recordBytes: number }> {
  const out: Array<{ appenders: number; recordBytes: number }> = [];
  for (const appenders of LOG_APPENDERS) {
    for (const recordBytes of LOG_RECORD_BYTES) {
      const id = logRowId(appenders, recordBytes, fsName);
      if (filters.length === 0 || filters.some((f) => f.test(id))) out.push({ appenders, recordBytes });
    }
  }
  return out;
}

interface Driven {
  appends: number;
  seconds: number;
  latency: LatencyRecorder;
}

/** `appenders` loops, each awaiting one append at a time, until the time or the byte cap is reached. */
async function drive(appenders: number, o: LogBenchOptions, recordBytes: number, append: (a: number, i: number, record: Buffer) => Promise<unknown>): Promise<Driven> {
  const record = randomFillSync(Buffer.alloc(recordBytes));
  const latency = new LatencyRecorder();
  let bytes = 0;
  let appends = 0;
  const start = performance.now();
  const deadline = start + o.seconds * 1000;
  await Promise.all(
    Array.from({ length: appenders }, async (_, a) => {
      for (let i = 0; performance.now() < deadline && bytes < o.capBytes && !isInterrupted(); i++) {
        bytes += recordBytes;
        const t = process.hrtime.bigint();
        await append(a, i, record);
        latency.add(Number(process.hrtime.bigint() - t));
        appends++;
      }
    }),
  );
  return { appends, seconds: (performance.now() - start) / 1000, latency };
}

function key(a: number, i: number): Buffer {
  const k = Buffer.alloc(8);
  k.writeUInt32BE(a, 0);
  k.writeUInt32BE(i, 4);
  return k;
}

type Runner = (dir: string, appenders: number, recordBytes: number, o: LogBenchOptions) => Promise<Driven & { details?: Record<string, unknown> }>;

const runners: Record<Exclude<LogContender, 'fio-append-dsync' | 'fio-overwrite-dsync'>, Runner> = {
  async 'odirect-log'(dir, appenders, recordBytes, o) {
    const log = await openLog(dir, { create: true });
    try {
      // The next segment is prepared (written with zeros) in the background right after open;
      // in steady state that happens once per 64 MiB appended. Start the clock once it is done,
      // so the run measures the append path, not the one-off preparation.
      for (let waited = 0; log.stats.segmentsPrepared < 1 && waited < 60_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      const d = await drive(appenders, o, recordBytes, (_a, _i, r) => log.append(r));
      const s = log.stats;
      return { ...d, details: { batches: s.batches, largestBatch: s.largestBatch, appendsPerBatch: s.appends / Math.max(1, s.batches), paddingBytes: s.paddingBytes, waited: s.waited } };
    } finally {
      await log.close();
    }
  },
  async 'nodefs-fdatasync'(dir, appenders, recordBytes, o) {
    const fh = await fs.promises.open(path.join(dir, 'log.dat'), 'a');
    try {
      return await drive(appenders, o, recordBytes, async (_a, _i, r) => {
        await fh.write(r);
        await fh.datasync();
      });
    } finally {
      await fh.close();
    }
  },
  async 'nodefs-group'(dir, appenders, recordBytes, o) {
    const fh = await fs.promises.open(path.join(dir, 'log.dat'), 'a');
    let queue: Array<{ record: Buffer; done: () => void; fail: (e: unknown) => void }> = [];
    let flushing = false;
    let batches = 0;
    const flush = async (): Promise<void> => {
      while (queue.length) {
        const batch = queue;
        queue = [];
        batches++;
        try {
          await fh.writev(batch.map((b) => b.record));
          await fh.datasync();
          for (const b of batch) b.done();
        } catch (e) {
          for (const b of batch) b.fail(e);
        }
      }
      flushing = false;
    };
    try {
      const d = await drive(appenders, o, recordBytes, (_a, _i, record) =>
        new Promise<void>((done, fail) => {
          queue.push({ record, done, fail });
          if (!flushing) {
            flushing = true;
            process.nextTick(() => void flush()); // gather this tick's appends first
          }
        }),
      );
      return { ...d, details: { batches, appendsPerBatch: d.appends / Math.max(1, batches) } };
    } finally {
      await fh.close();
    }
  },
  async lmdb(dir, appenders, recordBytes, o) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const lmdb = require('lmdb') as {
      open(options: Record<string, unknown>): { put(k: unknown, v: unknown): Promise<boolean>; close(): Promise<void> };
    };
    const db = lmdb.open({ path: path.join(dir, 'lmdb'), overlappingSync: false, compression: false, encoding: 'binary' });
    try {
      return await drive(appenders, o, recordBytes, (a, i, r) => db.put(key(a, i), r));
    } finally {
      await db.close();
    }
  },
  async 'classic-level'(dir, appenders, recordBytes, o) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ClassicLevel } = require('classic-level') as {
      ClassicLevel: new (location: string, options: Record<string, unknown>) => {
        open(): Promise<void>;
        put(k: unknown, v: unknown, o: { sync: boolean }): Promise<void>;
        close(): Promise<void>;
      };
    };
    const db = new ClassicLevel(path.join(dir, 'level'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    try {
      return await drive(appenders, o, recordBytes, (a, i, r) => db.put(key(a, i), r, { sync: true }));
    } finally {
      await db.close();
    }
  },
};

async function runFioAppend(dir: string, recordBytes: number, o: LogBenchOptions, overwrite: boolean): Promise<LogRow['details'] & Driven> {
  const fio = o.tools.fio;
  if (!fio) throw Object.assign(new Error('fio is not installed'), { unsupported: true });
  const size = overwrite ? Math.min(o.capBytes, 64 * MiB) : o.capBytes;
  // Direct writes of whole blocks: what the log writes for a batch of one record (frames, data, padding).
  const bs = Math.ceil((64 + Math.ceil(recordBytes / 8) * 8) / 4096) * 4096;
  const args = [
    '--name=log',
    '--output-format=json',
    `--filename=${path.join(dir, 'fio.dat')}`,
    `--size=${size}`,
    '--rw=write',
    `--bs=${bs}`,
    '--direct=1',
    '--ioengine=psync',
    '--iodepth=1',
    '--sync=dsync',
    '--fallocate=none',
    ...(overwrite ? ['--overwrite=1', '--time_based'] : []),
    `--runtime=${Math.round(o.seconds * 1000)}ms`,
  ];
  const r = await runCommand(fio, args, (o.seconds + 120) * 1000);
  const at = r.stdout.indexOf('{');
  if (r.code !== 0 || at < 0) throw new Error(`fio exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  type Lat = { percentile?: Record<string, number> };
  const job = (JSON.parse(r.stdout.slice(at)) as { jobs: Array<{ write: { runtime: number; total_ios: number; lat_ns?: Lat; clat_ns?: Lat } }> }).jobs[0]!;
  const latency = new LatencyRecorder();
  // fio gives percentiles of completion latency (clat) by default; psync submission is part of it.
  const p = job.write.lat_ns?.percentile ?? job.write.clat_ns?.percentile ?? {};
  return {
    appends: job.write.total_ios,
    seconds: job.write.runtime / 1000,
    latency,
    fioP50Ns: p['50.000000'] ?? null,
    fioP99Ns: p['99.000000'] ?? null,
    command: ['fio', ...args].join(' '),
    blockBytes: bs,
  };
}

/** Runs the selected log rows in fresh subdirectories of `dir`. */
export async function runLogRows(dir: string, fsName: string, o: LogBenchOptions, log: (line: string) => void): Promise<LogRow[]> {
  const rows: LogRow[] = [];
  for (const { appenders, recordBytes } of selectLogRows(o.filters, fsName)) {
    for (const contender of LOG_CONTENDERS) {
      if (isInterrupted()) return rows;
      if (contender.startsWith('fio') && appenders !== 1) continue;
      const id = logRowId(appenders, recordBytes, fsName);
      const row: LogRow = { id, fs: fsName, appenders, recordBytes, contender, label: LABELS[contender], status: 'ok', appends: 0, seconds: 0, appendsPerSecond: null, p50Us: null, p99Us: null };
      const work = fs.mkdtempSync(path.join(dir, 'odirect-log-bench-'));
      log(`${id} · ${row.label}`);
      try {
        let d: Driven;
        if (contender === 'fio-append-dsync' || contender === 'fio-overwrite-dsync') {
          const f = await runFioAppend(work, recordBytes, o, contender === 'fio-overwrite-dsync');
          d = f;
          row.p50Us = typeof f.fioP50Ns === 'number' ? f.fioP50Ns / 1000 : null;
          row.p99Us = typeof f.fioP99Ns === 'number' ? f.fioP99Ns / 1000 : null;
          row.details = { command: f.command, writeBytes: f.blockBytes };
        } else {
          const r = await runners[contender](work, appenders, recordBytes, o);
          d = r;
          if (r.details) row.details = r.details;
          const [p50, p99] = d.latency.percentiles([50, 99]);
          row.p50Us = p50 === null ? null : p50! / 1000;
          row.p99Us = p99 === null ? null : p99! / 1000;
        }
        row.appends = d.appends;
        row.seconds = d.seconds;
        row.appendsPerSecond = d.seconds > 0 ? d.appends / d.seconds : null;
      } catch (e) {
        const err = e as Error & { code?: string; unsupported?: boolean };
        row.status = err.unsupported || err.code === 'MODULE_NOT_FOUND' ? 'unsupported' : 'error';
        row.reason = err.message;
        log(`  ${id} ${row.label}: ${row.status} ${row.reason}`);
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
      }
      rows.push(row);
    }
  }
  return rows;
}

export interface LogRatios {
  fs: string;
  recordBytes: number;
  /** 64 appenders: odirect ÷ node:fs write+fdatasync (target ≥ 5). */
  vsFdatasyncAt64: number | null;
  /** 64 appenders: odirect ÷ the best of node:fs group commit, lmdb, classic-level (target ≥ 1.5). */
  vsBestAt64: number | null;
  bestAt64: string | null;
  /** 1 appender: odirect p50 ÷ fio append-dsync p50 (target ≤ 1.3), and ÷ fio overwrite-dsync p50. */
  p50VsFioAppend: number | null;
  p50VsFioOverwrite: number | null;
}

export function logRatios(rows: LogRow[]): LogRatios[] {
  const out: LogRatios[] = [];
  const find = (fsName: string, a: number, b: number, c: LogContender) =>
    rows.find((r) => r.fs === fsName && r.appenders === a && r.recordBytes === b && r.contender === c && r.status === 'ok');
  const div = (x: number | null | undefined, y: number | null | undefined) => (x != null && y != null && y > 0 ? x / y : null);
  for (const fsName of [...new Set(rows.map((r) => r.fs))]) {
    for (const b of LOG_RECORD_BYTES) {
      const ours64 = find(fsName, 64, b, 'odirect-log');
      const others = (['nodefs-group', 'lmdb', 'classic-level'] as const).map((c) => find(fsName, 64, b, c)).filter((r): r is LogRow => !!r);
      const best = others.sort((x, y) => (y.appendsPerSecond ?? 0) - (x.appendsPerSecond ?? 0))[0];
      const ours1 = find(fsName, 1, b, 'odirect-log');
      out.push({
        fs: fsName,
        recordBytes: b,
        vsFdatasyncAt64: div(ours64?.appendsPerSecond, find(fsName, 64, b, 'nodefs-fdatasync')?.appendsPerSecond),
        vsBestAt64: div(ours64?.appendsPerSecond, best?.appendsPerSecond),
        bestAt64: best?.label ?? null,
        p50VsFioAppend: div(ours1?.p50Us, find(fsName, 1, b, 'fio-append-dsync')?.p50Us),
        p50VsFioOverwrite: div(ours1?.p50Us, find(fsName, 1, b, 'fio-overwrite-dsync')?.p50Us),
      });
    }
  }
  return out;
}

export function renderLogTable(rows: LogRow[]): string {
  if (!rows.length) return '';
  const lines: string[] = ['', 'Log rows (issue 12): appends/s · p50 · p99 per append, one run each'];
  const header = ['row', 'contender', 'appends/s', 'p50', 'p99', 'note'];
  const body = rows.map((r) => [
    r.id,
    r.label,
    r.status === 'ok' ? formatIops(r.appendsPerSecond) : r.status,
    formatLatency(r.p50Us),
    formatLatency(r.p99Us),
    r.status !== 'ok'
      ? (r.reason ?? '').slice(0, 60)
      : r.details && typeof r.details.appendsPerBatch === 'number'
        ? `${(r.details.appendsPerBatch as number).toFixed(1)} appends/write`
        : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => [...b[i]!].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  lines.push(fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt));
  lines.push('', 'Log ratios (targets: ≥ 5× node:fs fdatasync and ≥ 1.5× the best other at 64 appenders; p50 ≤ 1.3× fio at 1):');
  for (const q of logRatios(rows)) {
    lines.push(
      `  ${q.fs} ${sizeName(q.recordBytes)}: 64 appenders ${formatRatio(q.vsFdatasyncAt64) || '—'} node:fs fdatasync, ` +
        `${formatRatio(q.vsBestAt64) || '—'} ${q.bestAt64 ?? 'best other'}; 1 appender p50 ${formatRatio(q.p50VsFioAppend) || '—'} fio append-dsync, ` +
        `${formatRatio(q.p50VsFioOverwrite) || '—'} fio overwrite-dsync`,
    );
  }
  return lines.join('\n');
}
