// The targets of issues 5 and 14, measured on this run and reported, never
// asserted. Where issue 14 (the lean hot path) raised a bar, its bar is used.
import type { RowRecord, TargetRecord } from './types';

function find(rows: readonly RowRecord[], workload: string, fs: string, contender: string): RowRecord | undefined {
  return rows.find((r) => r.workload === workload && r.fs === fs && r.contender === contender);
}

function value(row: RowRecord | undefined): number | null {
  if (!row || row.status !== 'ok' || !row.median) return null;
  return row.metric === 'iops' ? row.median.iops : row.median.mibs;
}

function ratio(a: number | null, b: number | null): number | null {
  return a !== null && b !== null && b > 0 ? a / b : null;
}

function judge(measured: number | null, threshold: number, comparison: '>=' | '<='): boolean | null {
  if (measured === null) return null;
  return comparison === '>=' ? measured >= threshold : measured <= threshold;
}

function whyMissing(...rows: Array<[string, RowRecord | undefined]>): string {
  const missing = rows.filter(([, r]) => !r || r.status !== 'ok');
  const reasons = new Set(missing.map(([, r]) => (r ? `${r.status}: ${r.reason ?? ''}` : 'not run')));
  // The same reason for all (e.g. the filesystem has no atomic writes): say it once.
  if (missing.length > 1 && reasons.size === 1 && missing[0]![1]) return missing[0]![1].reason ?? missing[0]![1].status;
  return missing.map(([name, r]) => (r ? `${name} ${r.status}${r.reason ? `: ${r.reason}` : ''}` : `${name} not run`)).join('; ');
}

const ENGINES = [
  ['odirect-uring', 'uring'],
  ['odirect-threadpool', 'thread pool'],
] as const;

export const TARGET_TEXT = [
  'uring ≥ 1.0× fio IOPS on 4 KiB random writes and reads at depth 32 (randwrite-qd32, randread-qd32)',
  'uring ≥ 1.0× fio MiB/s on 1 MiB sequential writes at depth 8 (seqwrite-1m-qd8)',
  'uring ≥ 0.95× fio IOPS on durable writes at depth 32 (randwrite-dsync-qd32)',
  'uring ≥ 2× the thread-pool engine at depth 32 (randwrite-qd32)',
  'atomic writes ≥ 0.9× the C liburing reference (atomic-16k-qd32)',
  'durable writes ≥ 3× node:fs with O_DSYNC (randwrite-dsync-qd32)',
  'depth-1 p50 latency: writeSync within 1.05×, async uring within 1.15×, the thread pool within 1.2× fio psync (randwrite-qd1)',
  'uring CPU per I/O ≤ fio\'s (randwrite-qd32, randread-qd32)',
  'uring CPU per I/O ≤ 0.4× the thread-pool engine\'s (randwrite-qd32)',
  'copy with streams ≥ 1.0× node:fs streams + fdatasync MiB/s, with 0 page-cache pages left (copy-pipeline)',
];

function cpuPerOp(row: RowRecord | undefined): number | null {
  return row && row.status === 'ok' ? (row.median?.cpuUsPerOp ?? null) : null;
}

export function evaluateTargets(rows: readonly RowRecord[]): TargetRecord[] {
  const out: TargetRecord[] = [];
  const filesystems = [...new Set(rows.map((r) => r.fs))];
  for (const fs of filesystems) {
    const has = (workload: string): boolean => rows.some((r) => r.workload === workload && r.fs === fs);
    // 1, 2: uring against fio.
    for (const [workload, threshold, id, text] of [
      ['randwrite-qd32', 1.0, 'uring-vs-fio-randwrite-qd32', 'uring vs fio IOPS, randwrite-qd32'],
      ['randread-qd32', 1.0, 'uring-vs-fio-randread-qd32', 'uring vs fio IOPS, randread-qd32'],
      ['seqwrite-1m-qd8', 1.0, 'uring-vs-fio-seqwrite-1m-qd8', 'uring vs fio MiB/s, seqwrite-1m-qd8'],
      ['randwrite-dsync-qd32', 0.95, 'uring-vs-fio-randwrite-dsync-qd32', 'uring vs fio IOPS, randwrite-dsync-qd32'],
    ] as const) {
      if (!has(workload)) continue;
      const uring = find(rows, workload, fs, 'odirect-uring');
      const fio = find(rows, workload, fs, 'fio');
      const measured = ratio(value(uring), value(fio));
      const tp = ratio(value(find(rows, workload, fs, 'odirect-threadpool')), value(fio));
      let note = measured === null ? whyMissing(['uring', uring], ['fio', fio]) : undefined;
      if (measured === null && tp !== null) note += `; thread-pool engine measured ${tp.toFixed(2)}×`;
      out.push({ id, description: text, fs, measured, threshold, comparison: '>=', met: judge(measured, threshold, '>='), note });
    }
    // 3: uring against the thread pool.
    if (has('randwrite-qd32')) {
      const uring = find(rows, 'randwrite-qd32', fs, 'odirect-uring');
      const tp = find(rows, 'randwrite-qd32', fs, 'odirect-threadpool');
      const measured = ratio(value(uring), value(tp));
      out.push({
        id: 'uring-vs-threadpool-qd32',
        description: 'uring vs thread-pool IOPS, randwrite-qd32',
        fs,
        measured,
        threshold: 2,
        comparison: '>=',
        met: judge(measured, 2, '>='),
        note: measured === null ? whyMissing(['uring', uring], ['thread pool', tp]) : undefined,
      });
    }
    // CPU per I/O: uring against fio, and against the thread pool.
    for (const workload of ['randwrite-qd32', 'randread-qd32']) {
      if (!has(workload)) continue;
      const uring = find(rows, workload, fs, 'odirect-uring');
      const fio = find(rows, workload, fs, 'fio');
      const measured = ratio(cpuPerOp(uring), cpuPerOp(fio));
      out.push({
        id: `uring-cpu-vs-fio-${workload}`,
        description: `uring vs fio CPU per I/O, ${workload}`,
        fs,
        measured,
        threshold: 1,
        comparison: '<=',
        met: judge(measured, 1, '<='),
        note: measured === null ? whyMissing(['uring', uring], ['fio', fio]) : undefined,
      });
    }
    if (has('randwrite-qd32')) {
      const uring = find(rows, 'randwrite-qd32', fs, 'odirect-uring');
      const tp = find(rows, 'randwrite-qd32', fs, 'odirect-threadpool');
      const measured = ratio(cpuPerOp(uring), cpuPerOp(tp));
      out.push({
        id: 'uring-cpu-vs-threadpool-qd32',
        description: 'uring vs thread-pool CPU per I/O, randwrite-qd32',
        fs,
        measured,
        threshold: 0.4,
        comparison: '<=',
        met: judge(measured, 0.4, '<='),
        note: measured === null ? whyMissing(['uring', uring], ['thread pool', tp]) : undefined,
      });
    }
    // Depth 1, synchronous: writeSync against fio psync (issue 14).
    if (has('randwrite-qd1')) {
      const od = find(rows, 'randwrite-qd1', fs, 'odirect-sync');
      const fio = find(rows, 'randwrite-qd1', fs, 'fio');
      const measured = ratio(od?.status === 'ok' ? (od.median?.p50Us ?? null) : null, fio?.status === 'ok' ? (fio.median?.p50Us ?? null) : null);
      if (od) {
        out.push({
          id: 'qd1-p50-vs-fio-odirect-sync',
          description: 'depth-1 p50 latency (writeSync) vs fio psync, randwrite-qd1',
          fs,
          measured,
          threshold: 1.05,
          comparison: '<=',
          met: judge(measured, 1.05, '<='),
          note: measured === null ? whyMissing(['writeSync', od], ['fio', fio]) : undefined,
        });
      }
    }
    // 4-6: for each odirect engine that ran.
    for (const [contender, engine] of ENGINES) {
      if (has('atomic-16k-qd32')) {
        const od = find(rows, 'atomic-16k-qd32', fs, contender);
        const ref = find(rows, 'atomic-16k-qd32', fs, 'c-ref');
        const measured = ratio(value(od), value(ref));
        out.push({
          id: `atomic-vs-cref-${contender}`,
          description: `atomic (${engine}) vs C reference IOPS, atomic-16k-qd32`,
          fs,
          measured,
          threshold: 0.9,
          comparison: '>=',
          met: judge(measured, 0.9, '>='),
          note: measured === null ? whyMissing([engine, od], ['C reference', ref]) : undefined,
        });
      }
      if (has('randwrite-dsync-qd32')) {
        const od = find(rows, 'randwrite-dsync-qd32', fs, contender);
        const node = find(rows, 'randwrite-dsync-qd32', fs, 'node-fs');
        const measured = ratio(value(od), value(node));
        out.push({
          id: `durable-vs-nodefs-${contender}`,
          description: `durable (${engine}) vs node:fs O_DSYNC IOPS, randwrite-dsync-qd32`,
          fs,
          measured,
          threshold: 3,
          comparison: '>=',
          met: judge(measured, 3, '>='),
          note: measured === null ? whyMissing([engine, od], ['node:fs', node]) : undefined,
        });
      }
      if (has('randwrite-qd1')) {
        const od = find(rows, 'randwrite-qd1', fs, contender);
        const fio = find(rows, 'randwrite-qd1', fs, 'fio');
        const a = od?.status === 'ok' ? (od.median?.p50Us ?? null) : null;
        const b = fio?.status === 'ok' ? (fio.median?.p50Us ?? null) : null;
        const measured = ratio(a, b);
        // io_uring: issue 14's bar; the thread pool keeps issue 5's.
        const bar = contender === 'odirect-uring' ? 1.15 : 1.2;
        out.push({
          id: `qd1-p50-vs-fio-${contender}`,
          description: `depth-1 p50 latency (${engine}) vs fio psync, randwrite-qd1`,
          fs,
          measured,
          threshold: bar,
          comparison: '<=',
          met: judge(measured, bar, '<='),
          note: measured === null ? whyMissing([engine, od], ['fio', fio]) : undefined,
        });
      }
      if (has('copy-pipeline')) {
        const od = find(rows, 'copy-pipeline', fs, contender);
        const node = find(rows, 'copy-pipeline', fs, 'node-fs');
        const cp = find(rows, 'copy-pipeline', fs, 'cp');
        const measured = ratio(value(od), value(node));
        const pages = (r: RowRecord | undefined) => (r?.status === 'ok' ? (r.median?.pagesLeft ?? null) : null);
        const left = pages(od);
        const vsCp = ratio(value(od), value(cp));
        const note = [
          measured === null ? whyMissing([engine, od], ['node:fs', node]) : undefined,
          `pages left: odirect ${left ?? '?'}, node:fs ${pages(node) ?? '?'}, cp ${pages(cp) ?? '?'}`,
          vsCp === null ? undefined : `${vsCp.toFixed(2)}× cp + sync -f`,
        ]
          .filter(Boolean)
          .join('; ');
        const met = judge(measured, 1, '>=');
        out.push({
          id: `copy-vs-nodefs-${contender}`,
          description: `copy (${engine} streams) vs node:fs streams + fdatasync MiB/s, 0 pages left, copy-pipeline`,
          fs,
          measured,
          threshold: 1,
          comparison: '>=',
          met: met === null || left === null ? met : met && left === 0,
          note,
        });
      }
    }
  }
  return out;
}
