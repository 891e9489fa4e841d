// The workloads of the suite (issue 5) and the contenders that run them.
import type { FsName } from './options';

export type WorkloadKind = 'random' | 'sequential' | 'append' | 'cached' | 'copy' | 'replace';
export type Metric = 'iops' | 'mibs';

export interface Workload {
  /** Row id without the filesystem: 'randwrite-qd32'. The full row id is `${id}@${fs}`. */
  id: string;
  /** Number in the list. */
  number: number;
  title: string;
  kind: WorkloadKind;
  op: 'write' | 'read';
  /** Bytes per I/O. */
  bs: number;
  /** I/Os in flight. */
  depth: number;
  dsync: boolean;
  atomic: boolean;
  /** Append rows: the log file is preallocated (fallocate) before the timed part. */
  prealloc: boolean;
  /** Cached rows: page-cache mode of the buffered writes. */
  cache?: 'default' | 'dontcache';
  /** The row runs on the laid-out shared file ('shared') or on a new file per run ('fresh'). */
  file: 'shared' | 'fresh';
  /** What the table shows: IOPS (small I/O) or MiB/s (large I/O). */
  metric: Metric;
}

const KiB = 1024;
const MiB = 1024 * 1024;

function w(p: Omit<Workload, 'dsync' | 'atomic' | 'prealloc' | 'file'> & Partial<Workload>): Workload {
  return { dsync: false, atomic: false, prealloc: false, file: 'shared', ...p };
}

/** In the order of the issue (the order of the table). */
export const WORKLOADS: readonly Workload[] = [
  w({ id: 'randwrite-qd1', number: 1, title: '4 KiB random direct writes, 1 in flight', kind: 'random', op: 'write', bs: 4 * KiB, depth: 1, metric: 'iops' }),
  w({ id: 'randwrite-qd32', number: 1, title: '4 KiB random direct writes, 32 in flight', kind: 'random', op: 'write', bs: 4 * KiB, depth: 32, metric: 'iops' }),
  w({ id: 'randread-qd32', number: 2, title: '4 KiB random direct reads, 32 in flight', kind: 'random', op: 'read', bs: 4 * KiB, depth: 32, metric: 'iops' }),
  w({ id: 'seqwrite-1m-qd8', number: 3, title: '1 MiB sequential direct writes, 8 in flight', kind: 'sequential', op: 'write', bs: MiB, depth: 8, metric: 'mibs' }),
  w({ id: 'randwrite-dsync-qd32', number: 4, title: '4 KiB random durable (dsync) writes, 32 in flight', kind: 'random', op: 'write', bs: 4 * KiB, depth: 32, dsync: true, metric: 'iops' }),
  w({ id: 'atomic-16k-qd32', number: 5, title: '16 KiB atomic (RWF_ATOMIC) writes, 32 in flight', kind: 'random', op: 'write', bs: 16 * KiB, depth: 32, atomic: true, metric: 'iops' }),
  w({ id: 'append-dsync', number: 6, title: 'appending 4 KiB records to a log with dsync, no preallocation', kind: 'append', op: 'write', bs: 4 * KiB, depth: 1, dsync: true, file: 'fresh', metric: 'iops' }),
  w({ id: 'append-dsync-prealloc', number: 6, title: 'appending 4 KiB records to a log with dsync, preallocated', kind: 'append', op: 'write', bs: 4 * KiB, depth: 1, dsync: true, prealloc: true, file: 'fresh', metric: 'iops' }),
  w({ id: 'buffered-default', number: 7, title: 'buffered 1 MiB writes, default page cache (then fdatasync)', kind: 'cached', op: 'write', bs: MiB, depth: 1, cache: 'default', file: 'fresh', metric: 'mibs' }),
  w({ id: 'buffered-dontcache', number: 7, title: "buffered 1 MiB writes, 'dontcache' (then fdatasync)", kind: 'cached', op: 'write', bs: MiB, depth: 1, cache: 'dontcache', file: 'fresh', metric: 'mibs' }),
  // Issue 13. The copy's size is the laid-out file's size + 4097 bytes.
  w({ id: 'copy-pipeline', number: 8, title: 'copying a file (--file-mib + 4097 bytes) with pipeline, durable at the end', kind: 'copy', op: 'write', bs: MiB, depth: 4, file: 'fresh', metric: 'mibs' }),
  w({ id: 'replace-4k', number: 9, title: 'replacing a 4 KiB file crash-safely, one after another', kind: 'replace', op: 'write', bs: 4 * KiB, depth: 1, file: 'fresh', metric: 'iops' }),
  w({ id: 'replace-1m', number: 9, title: 'replacing a 1 MiB file crash-safely, one after another', kind: 'replace', op: 'write', bs: MiB, depth: 1, file: 'fresh', metric: 'iops' }),
];

/**
 * The order rows run in: atomic writes on XFS go through copy-on-write and leave the
 * shared file fragmented (and CoW blocks reserved), so they run after everything else.
 */
export function executionOrder(workloads: readonly Workload[]): Workload[] {
  return [...workloads.filter((x) => !x.atomic), ...workloads.filter((x) => x.atomic)];
}

export function rowId(workload: Workload, fs: string): string {
  return `${workload.id}@${fs}`;
}

export function selectWorkloads(filters: readonly RegExp[], fsNames: readonly string[]): Array<{ workload: Workload; fs: string[] }> {
  const picked: Array<{ workload: Workload; fs: string[] }> = [];
  for (const workload of WORKLOADS) {
    const fs = fsNames.filter((name) => filters.length === 0 || filters.some((re) => re.test(rowId(workload, name))));
    if (fs.length) picked.push({ workload, fs });
  }
  return picked;
}

export type ContenderId = 'odirect-uring' | 'odirect-threadpool' | 'odirect-sync' | 'fio' | 'c-ref' | 'node-fs' | 'cp';
export const CONTENDERS: readonly ContenderId[] = ['odirect-uring', 'odirect-threadpool', 'odirect-sync', 'fio', 'c-ref', 'node-fs', 'cp'];

export function isOdirect(c: ContenderId): boolean {
  return c === 'odirect-uring' || c === 'odirect-threadpool' || c === 'odirect-sync';
}

/**
 * Contenders that have a row for this workload (c-ref only for the atomic row, cp only for the copy, no fio for issue 13's rows,
 * odirect-sync (DirectFile.writeSync/readSync) only for the depth-1 direct rows on the shared file).
 */
export function contendersFor(workload: Workload, only?: readonly string[]): ContenderId[] {
  const whole = workload.kind === 'copy' || workload.kind === 'replace';
  return CONTENDERS.filter(
    (c) =>
      (c !== 'c-ref' || workload.atomic) &&
      (c !== 'cp' || workload.kind === 'copy') &&
      (c !== 'odirect-sync' || (workload.depth === 1 && (workload.kind === 'random' || workload.kind === 'sequential'))) &&
      (c !== 'fio' || !whole) &&
      (!only || only.includes(c)),
  );
}

/** How the contender runs this workload, for the table ('fio io_uring qd32', 'node:fs buffered+O_DSYNC'). */
export function contenderLabel(c: ContenderId, workload: Workload): string {
  switch (c) {
    case 'odirect-uring':
      if (workload.kind === 'copy') return 'odirect streams, uring';
      if (workload.kind === 'replace') return 'odirect replaceFile, uring';
      return 'odirect uring';
    case 'odirect-threadpool':
      if (workload.kind === 'copy') return 'odirect streams, thread pool';
      if (workload.kind === 'replace') return 'odirect replaceFile, thread pool';
      return 'odirect thread pool';
    case 'odirect-sync':
      return 'odirect writeSync/readSync';
    case 'fio':
      if (workload.kind === 'cached') return 'fio psync buffered';
      return workload.depth === 1 ? 'fio psync' : 'fio io_uring';
    case 'c-ref':
      return 'C liburing (ceiling)';
    case 'node-fs':
      if (workload.kind === 'copy') return 'node:fs streams + fdatasync';
      if (workload.kind === 'replace') return 'write-file-atomic (npm)';
      if (workload.op === 'read') return 'node:fs buffered';
      return workload.dsync ? 'node:fs buffered+O_DSYNC' : 'node:fs buffered';
    case 'cp':
      return 'cp + sync -f';
  }
}

/**
 * Whether node:fs does the same work as odirect on this row, so their ratio means something.
 * node:fs cannot do O_DIRECT (no aligned memory), so its rows are buffered: where the row is
 * durable (O_DSYNC vs RWF_DSYNC) or ends in fdatasync (both buffered), the data is on the
 * device when the clock stops for both; elsewhere node:fs counts page-cache copies (writes) or
 * page-cache hits and readahead (reads) while odirect counts device I/O.
 */
export function nodeFsComparison(workload: Workload): { comparable: true; basis: string } | { comparable: false; why: string } {
  if (workload.op === 'write' && workload.dsync) {
    return { comparable: true, basis: 'both durable when counted (node:fs O_DSYNC, odirect RWF_DSYNC)' };
  }
  if (workload.kind === 'cached') {
    return { comparable: true, basis: 'both buffered writes, timed to the end of the final fdatasync' };
  }
  if (workload.op === 'read') {
    return { comparable: false, why: 'node:fs reads are buffered (page-cache hits and readahead count); odirect reads each block from the device' };
  }
  return { comparable: false, why: 'node:fs writes are buffered (counted in the page cache, not on disk); odirect writes are on the device when counted' };
}

export function isFsName(name: string): name is FsName {
  return name === 'ext4' || name === 'xfs';
}
