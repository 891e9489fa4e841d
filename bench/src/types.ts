// Shared shapes of the bench: what a contender gets to run and what it gives back.
import type { Capabilities } from './library';
import type { ToolReport } from './environment';
import type { Workload } from './workloads';

export interface FsTarget {
  /** 'ext4' or 'xfs' (scratch mode), or the filesystem type of --dir. Goes into row ids. */
  name: string;
  fsType: string;
  /** Directory the bench's files live in. */
  dir: string;
  /** The laid-out file of the random and sequential rows. */
  sharedFile: string;
  /** Its size in bytes. */
  fileSize: number;
  caps: Capabilities;
}

export interface RunContext {
  workload: Workload;
  target: FsTarget;
  /** Seconds the run lasts (time-bounded rows) or at most lasts (size-bounded rows). */
  seconds: number;
  /** Path of the new file of 'fresh' rows (does not exist when the run starts). */
  freshFile: string;
  appendCapBytes: number;
  bufferedBytes: number;
  tools: ToolReport;
  fio: { version: string | null; major: number; minor: number };
}

export interface RunResult {
  ops: number;
  bytes: number;
  /** Measured seconds (for cached rows: the writes plus the final fdatasync). */
  seconds: number;
  /** Latency per operation, call to completion, ns. */
  p50Ns: number | null;
  p99Ns: number | null;
  /** Cached rows: page-cache pages of the file left behind (filled in by the suite). */
  pagesLeft?: number | null;
  /** CPU time the contender's process spent on the timed part, µs (null: the contender could not tell). */
  cpu: CpuTime | null;
  notes?: string[];
  details?: Record<string, unknown>;
}

/** User and system CPU time of the process that ran the I/O, over the timed part. */
export interface CpuTime {
  userUs: number;
  systemUs: number;
  /** How it was measured: 'process.cpuUsage()', 'fio usr_cpu/sys_cpu', 'getrusage(RUSAGE_SELF)'. */
  source: string;
}

/** The contender cannot run this row here (missing feature, tool or engine): the row says why. */
export class Unsupported extends Error {}

export type RowStatus = 'ok' | 'unsupported' | 'error';

/** One run of one contender on one row, as it goes into the JSON. */
export interface RunRecord {
  run: number;
  ops: number;
  bytes: number;
  seconds: number;
  iops: number;
  mibs: number;
  p50Us: number | null;
  p99Us: number | null;
  /** CPU µs (user + system) per operation; null when the contender could not measure it. */
  cpuUsPerOp: number | null;
  cpu: CpuTime | null;
  pagesLeft?: number | null;
  notes?: string[];
  details?: Record<string, unknown>;
}

export interface Figures {
  iops: number | null;
  mibs: number | null;
  p50Us: number | null;
  p99Us: number | null;
  /** CPU µs per operation (median over the runs). */
  cpuUsPerOp: number | null;
  pagesLeft?: number | null;
}

/** One contender on one row ('randwrite-qd32@xfs' × 'fio'). */
export interface RowRecord {
  /** 'randwrite-qd32@xfs' */
  id: string;
  workload: string;
  workloadNumber: number;
  title: string;
  fs: string;
  contender: string;
  label: string;
  metric: 'iops' | 'mibs';
  status: RowStatus;
  reason?: string;
  config: Record<string, unknown>;
  runs: RunRecord[];
  /** Medians over the runs. */
  median: Figures | null;
  /** Spread of the row's metric over the runs (min, max, ± half-range % of the median). */
  spread: { min: number; max: number; pct: number } | null;
  /**
   * odirect rows: this row's metric over the peer's (fio, the C reference, node:fs); p50 latency
   * and CPU per I/O over fio's (and the C reference's). `nodeFs` only where node:fs does the same
   * work (see `nodeFsComparison` in workloads.ts); otherwise it is null and the ratio is in `notComparable`.
   */
  ratios?: {
    fio: number | null;
    cRef: number | null;
    nodeFs: number | null;
    p50VsFio: number | null;
    cpuVsFio: number | null;
    cpuVsCRef: number | null;
  };
  /** odirect rows: ratios to a peer that did different work (node:fs buffered vs direct), kept apart. */
  notComparable?: { nodeFs: { ratio: number; why: string } };
  notes: string[];
}

export interface TargetRecord {
  id: string;
  description: string;
  fs: string;
  /** measured value (a ratio) or null when it could not be measured */
  measured: number | null;
  threshold: number;
  comparison: '>=' | '<=';
  met: boolean | null;
  note?: string;
}
