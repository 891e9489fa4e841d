// fio with the matching engine and depth: io_uring, or psync at depth 1 (and
// for the append and buffered rows, which are one write at a time).
import { runCommand } from '../cleanup';
import { Unsupported, type CpuTime, type RunContext, type RunResult } from '../types';

interface FioSide {
  io_bytes: number;
  iops: number;
  bw_bytes: number;
  runtime: number;
  total_ios?: number;
  lat_ns?: { percentile?: Record<string, number>; mean?: number };
  clat_ns?: { percentile?: Record<string, number>; mean?: number };
}

interface FioJob {
  error: number;
  read: FioSide;
  write: FioSide;
  /** CPU time of the job's process in percent of job_runtime (fio's getrusage(RUSAGE_SELF) figures). */
  usr_cpu?: number;
  sys_cpu?: number;
  /** ms the job ran, the base of usr_cpu/sys_cpu. */
  job_runtime?: number;
}

/** The job's CPU time, µs, from fio's own usr_cpu/sys_cpu (percent of job_runtime). */
export function fioCpu(job: FioJob, sideRuntimeMs: number): CpuTime | null {
  const runtimeMs = typeof job.job_runtime === 'number' && job.job_runtime > 0 ? job.job_runtime : sideRuntimeMs;
  if (typeof job.usr_cpu !== 'number' || typeof job.sys_cpu !== 'number' || !(runtimeMs > 0)) return null;
  return {
    userUs: (job.usr_cpu / 100) * runtimeMs * 1000,
    systemUs: (job.sys_cpu / 100) * runtimeMs * 1000,
    source: 'fio usr_cpu/sys_cpu × job_runtime',
  };
}

function atLeast(v: { major: number; minor: number }, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/** The fio command line for this row, or Unsupported when this fio cannot do it. */
export function fioArgs(ctx: RunContext): string[] {
  const w = ctx.workload;
  const v = ctx.fio;
  const ms = `${Math.max(1, Math.round(ctx.seconds * 1000))}ms`;
  const common = [
    `--name=${w.id}`,
    `--bs=${w.bs}`,
    '--numjobs=1',
    '--output-format=json',
    '--lat_percentiles=1',
    '--clat_percentiles=1',
    '--percentile_list=50:99',
  ];
  if (w.atomic && !atLeast(v, 3, 38)) {
    throw new Unsupported(`${v.version ?? 'this fio'} has no RWF_ATOMIC (atomic=1 needs fio 3.38; older ones only set a stale O_ATOMIC open flag)`);
  }
  switch (w.kind) {
    case 'random':
    case 'sequential': {
      const rw = w.kind === 'sequential' ? (w.op === 'read' ? 'read' : 'write') : w.op === 'read' ? 'randread' : 'randwrite';
      return [
        ...common,
        `--filename=${ctx.target.sharedFile}`,
        `--size=${ctx.target.fileSize}`,
        `--rw=${rw}`,
        '--direct=1',
        `--ioengine=${w.depth === 1 ? 'psync' : 'io_uring'}`,
        `--iodepth=${w.depth}`,
        '--time_based',
        `--runtime=${ms}`,
        '--randrepeat=0',
        '--norandommap',
        '--fallocate=none',
        ...(w.dsync ? ['--sync=dsync'] : []),
        ...(w.atomic ? ['--atomic=1'] : []),
      ];
    }
    case 'append':
      // A new file, sequential 4 KiB O_DSYNC writes from 0: each one extends the file
      // (fallocate=none), or lands in blocks fio fallocated (mode 0) before the timed part.
      return [
        ...common,
        `--filename=${ctx.freshFile}`,
        `--size=${ctx.appendCapBytes}`,
        '--rw=write',
        '--direct=1',
        '--ioengine=psync',
        '--iodepth=1',
        '--sync=dsync',
        `--fallocate=${w.prealloc ? 'native' : 'none'}`,
        `--runtime=${ms}`,
      ];
    case 'cached': {
      let cacheArgs: string[] = [];
      if (w.cache === 'dontcache') {
        if (!atLeast(v, 3, 40)) throw new Unsupported(`${v.version ?? 'this fio'} has no RWF_DONTCACHE (uncached=1 is fio 3.40+)`);
        cacheArgs = ['--ioengine=pvsync2', '--uncached=1'];
      }
      return [
        ...common,
        `--filename=${ctx.freshFile}`,
        `--size=${ctx.bufferedBytes}`,
        '--rw=write',
        '--direct=0',
        ...(cacheArgs.length ? cacheArgs : ['--ioengine=psync']),
        '--iodepth=1',
        '--fallocate=none',
        '--end_fsync=1',
        `--runtime=${ms}`,
      ];
    }
    case 'copy':
    case 'replace':
      throw new Unsupported(`fio has no ${w.kind} row`);
  }
}

function percentile(side: FioSide, key: 'lat_ns' | 'clat_ns', p: string): number | null {
  const v = side[key]?.percentile?.[p];
  return typeof v === 'number' && v > 0 ? v : null;
}

export async function runFio(ctx: RunContext): Promise<RunResult> {
  const fio = ctx.tools.fio;
  if (!fio) throw new Unsupported('fio is not installed (scripts/install-deps.sh installs it)');
  const args = fioArgs(ctx);
  const r = await runCommand(fio, args, (ctx.seconds + 120) * 1000);
  const jsonStart = r.stdout.indexOf('{');
  if (r.code !== 0 || jsonStart < 0) {
    const why = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
    throw new Error(`fio ${why}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  }
  const parsed = JSON.parse(r.stdout.slice(jsonStart)) as { jobs?: FioJob[]; 'fio version'?: string };
  const job = parsed.jobs?.[0];
  if (!job) throw new Error('fio printed no job results');
  if (job.error) throw new Error(`fio job error ${job.error}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  const side = ctx.workload.op === 'read' ? job.read : job.write;
  const seconds = side.runtime / 1000;
  const ops = side.total_ios ?? Math.round(side.iops * seconds);
  const notes: string[] = [];
  if (ctx.workload.kind === 'cached') notes.push('MiB/s includes the end fsync (end_fsync=1)');
  return {
    ops,
    bytes: side.io_bytes,
    seconds,
    p50Ns: percentile(side, 'lat_ns', '50.000000') ?? percentile(side, 'clat_ns', '50.000000'),
    p99Ns: percentile(side, 'lat_ns', '99.000000') ?? percentile(side, 'clat_ns', '99.000000'),
    cpu: fioCpu(job, side.runtime),
    notes,
    details: {
      command: ['fio', ...args].join(' '),
      iops: side.iops,
      bwBytes: side.bw_bytes,
      clatP50Ns: percentile(side, 'clat_ns', '50.000000'),
      clatP99Ns: percentile(side, 'clat_ns', '99.000000'),
      latP50Ns: percentile(side, 'lat_ns', '50.000000'),
      latP99Ns: percentile(side, 'lat_ns', '99.000000'),
      usrCpuPct: job.usr_cpu ?? null,
      sysCpuPct: job.sys_cpu ?? null,
      jobRuntimeMs: job.job_runtime ?? null,
    },
  };
}
