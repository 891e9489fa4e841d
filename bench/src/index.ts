// `odirect bench`: the benchmark suite of issue 5.
//
// Scratch mode (default, root): with --install, installs what is missing (scripts/install-deps.sh);
// makes an ext4 and an XFS filesystem on sparse images attached to loop devices with
// --direct-io=on (lib/scratch), lays out the file, runs every row against fio,
// node:fs and (atomic row) a C liburing reference, prints the table, writes
// bench/results/<date>.json and .svg, and removes everything it made — also on
// SIGINT/SIGTERM. `--dir PATH` runs the same rows on PATH's filesystem in a temp
// subdirectory it removes afterwards, making and mounting nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  makeScratchFs,
  registerCleanupOnExit,
  removeScratchFs,
  scratchAvailable,
  sweepStaleScratch,
  type ScratchFs,
} from './library';
import { installInterruptHandlers, isInterrupted, removeTempDir, trackDirectory, trackTempDir, untrackDirectory } from './cleanup';
import {
  checkTools,
  configureThreadpool,
  fioVersion,
  freeBytes,
  installMissing,
  loopDirectIo,
  machineInfo,
  mountOf,
  PACKAGE_ROOT,
  type MachineInfo,
  type ThreadpoolInfo,
} from './environment';
import { HELP, parseOptions, UsageError, type BenchOptions, type FsName } from './options';
import { Progress } from './progress';
import { renderSvg, renderTable, renderTargets } from './report';
import { layOutFile, runWorkloads, stepsFor, targetCapabilities, type SuiteEnv } from './suite';
import { evaluateTargets, TARGET_TEXT } from './targets';
import type { FsTarget, RowRecord, TargetRecord } from './types';
import { isOdirect, nodeFsComparison, rowId, selectWorkloads, WORKLOADS, type Workload } from './workloads';
import { logRatios, logRowId, renderLogTable, runLogRows, selectLogRows, type LogRatios, type LogRow } from './log';

export { parseOptions } from './options';
export type { RowRecord, TargetRecord } from './types';

const MiB = 1024 * 1024;
/** Threads the libuv pool needs so the thread-pool engine and node:fs reach depth 32. */
const THREADPOOL_SIZE = 64;

export interface FsRecord {
  name: string;
  fsType: string;
  mode: 'scratch' | 'dir';
  /** Where the bench's files were (removed afterwards). */
  dir: string;
  mount: { mountpoint: string; source: string; options: string } | null;
  device: Record<string, unknown> | null;
  /** Scratch mode: what lib/scratch made (all of it removed at the end). */
  scratch?: { dir: string; image: string; loop: string; mountpoint?: string; imageMiB: number; removed: boolean };
  fileBytes: number;
  layoutSeconds: number | null;
  capabilities: unknown;
}

export interface BenchReport {
  schema: 'odirect-bench/1';
  date: string;
  command: string[];
  mode: 'scratch' | 'dir';
  settings: {
    quick: boolean;
    runs: number;
    secondsPerRun: number;
    fileMiB: number;
    bufferedMiB: number;
    appendCapMiB: number;
    filters: string[];
    contenders: string[] | null;
    odirectEngineEnv: string | null;
  };
  machine: MachineInfo;
  filesystems: FsRecord[];
  rows: RowRecord[];
  targets: TargetRecord[];
  targetsText: string[];
  /** The log rows (issue 12) and their ratios. */
  log: { rows: LogRow[]; ratios: LogRatios[] };
  errors: string[];
  durationSeconds: number;
  table: string;
  files: { json: string; svg: string };
}

/** Smallest image that holds the rows' files, with room for CoW and metadata. */
function imageSizeMiB(fsName: FsName, workloads: readonly Workload[], opts: BenchOptions): number {
  const shared = workloads.some((w) => w.file === 'shared');
  const atomic = fsName === 'xfs' && workloads.some((w) => w.atomic);
  // XFS atomic writes without hardware support are copy-on-write: the CoW fork can hold as
  // many blocks again as the file, so give it twice the file. And 1 GiB more: on a quiet
  // machine a primed 256 MiB file on a 1,152 MiB image still hit ENOSPC with 549 MiB free,
  // where 1,536 MiB ran clean (bench/README.md, XFS atomic writes and ENOSPC).
  let mib = shared ? opts.fileMiB * (atomic ? 3 : 1) + (atomic ? 1024 : 0) : 0;
  const fresh = Math.max(
    workloads.some((w) => w.kind === 'append') ? opts.appendCapMiB : 0,
    workloads.some((w) => w.kind === 'cached') ? opts.bufferedMiB : 0,
  );
  // The copy row: a source of the file's size (+ 4097 bytes) and its copy.
  if (workloads.some((w) => w.kind === 'copy')) mib += 2 * opts.fileMiB + 2;
  mib += fresh + 256 + Math.ceil(mib / 10);
  // The log rows: up to the byte cap per contender (lmdb's copy-on-write pages may take twice that), removed after each.
  if (selectLogRows(opts.filters, fsName).length) mib += logCapMiB(opts) * 3;
  mib = Math.max(mib, 512); // mkfs.xfs needs at least 300 MiB
  return Math.ceil(mib / 64) * 64;
}

/** Bytes one log-row contender may append (its run also ends at the time limit). */
function logCapMiB(opts: BenchOptions): number {
  return opts.quick ? 96 : 192;
}

async function runLogRowsOn(dir: string, fsName: string, opts: BenchOptions, env: SuiteEnv, logRows: LogRow[]): Promise<void> {
  if (!selectLogRows(opts.filters, fsName).length) return;
  const seconds = Math.min(opts.seconds, opts.quick ? 1.5 : 3);
  logRows.push(
    ...(await runLogRows(dir, fsName, { seconds, capBytes: logCapMiB(opts) * MiB, filters: opts.filters, tools: env.tools }, (line) => env.progress.log(line))),
  );
}

function neededBytes(workloads: readonly Workload[], opts: BenchOptions): number {
  const shared = workloads.some((w) => w.file === 'shared') ? opts.fileMiB * (workloads.some((w) => w.atomic) ? 2 : 1) : 0;
  const fresh = Math.max(
    workloads.some((w) => w.kind === 'append') ? opts.appendCapMiB : 0,
    workloads.some((w) => w.kind === 'cached') ? opts.bufferedMiB : 0,
  );
  const copy = workloads.some((w) => w.kind === 'copy') ? 2 * opts.fileMiB + 2 : 0;
  return (shared + fresh + copy + 64) * MiB;
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

function uniquePath(dir: string, base: string, ext: string): string {
  let candidate = path.join(dir, `${base}${ext}`);
  for (let i = 2; fs.existsSync(candidate); i++) candidate = path.join(dir, `${base}-${i}${ext}`);
  return candidate;
}

/** Fills in the odirect rows' ratios to their peers (node:fs only where the work is the same). */
export function computeRatios(rows: RowRecord[]): void {
  const value = (r: RowRecord | undefined): number | null =>
    r && r.status === 'ok' && r.median ? (r.metric === 'iops' ? r.median.iops : r.median.mibs) : null;
  const cpu = (r: RowRecord | undefined): number | null => (r && r.status === 'ok' ? (r.median?.cpuUsPerOp ?? null) : null);
  const div = (a: number | null, b: number | null): number | null => (a !== null && b !== null && b > 0 ? a / b : null);
  const workloads = new Map(WORKLOADS.map((w) => [w.id, w]));
  for (const r of rows) {
    if (!isOdirect(r.contender as never) || r.status !== 'ok') continue;
    const peer = (c: string): RowRecord | undefined => rows.find((x) => x.id === r.id && x.contender === c);
    const fio = peer('fio');
    const cRef = peer('c-ref');
    const nodeFs = div(value(r), value(peer('node-fs')));
    const workload = workloads.get(r.workload);
    const comparison = workload ? nodeFsComparison(workload) : { comparable: false as const, why: 'unknown workload' };
    r.ratios = {
      fio: div(value(r), value(fio)),
      cRef: div(value(r), value(cRef)),
      nodeFs: comparison.comparable ? nodeFs : null,
      p50VsFio: fio?.status === 'ok' ? div(r.median?.p50Us ?? null, fio.median?.p50Us ?? null) : null,
      cpuVsFio: div(cpu(r), cpu(fio)),
      cpuVsCRef: div(cpu(r), cpu(cRef)),
    };
    if (!comparison.comparable && nodeFs !== null) r.notComparable = { nodeFs: { ratio: nodeFs, why: comparison.why } };
  }
}

function describeTarget(target: FsTarget, mode: 'scratch' | 'dir', layoutSeconds: number | null, scratch?: ScratchFs, imageMiB?: number): FsRecord {
  const mount = mountOf(target.dir);
  let device: Record<string, unknown> | null = target.caps.device ? { ...target.caps.device } : null;
  if (scratch) {
    const host = mountOf(scratch.dir);
    device = {
      kind: 'loop',
      loop: scratch.loop,
      image: scratch.image,
      imageMiB,
      directIo: loopDirectIo(scratch.loop),
      hostFilesystem: host ? { fsType: host.fsType, source: host.source, mountpoint: host.mountpoint } : null,
      queue: target.caps.device ?? null,
    };
  }
  return {
    name: target.name,
    fsType: target.fsType,
    mode,
    dir: target.dir,
    mount: mount ? { mountpoint: mount.mountpoint, source: mount.source, options: mount.options } : null,
    device,
    ...(scratch
      ? { scratch: { dir: scratch.dir, image: scratch.image, loop: scratch.loop, mountpoint: scratch.mountpoint, imageMiB: imageMiB ?? 0, removed: false } }
      : {}),
    fileBytes: target.fileSize,
    layoutSeconds,
    capabilities: target.caps,
  };
}

/** Lays out the shared file (if a row needs it) and probes what the filesystem can do. */
async function prepareTarget(name: string, dir: string, workloads: readonly Workload[], opts: BenchOptions, progress: Progress) {
  const sharedFile = path.join(dir, 'bench-shared.dat');
  const fileSize = opts.fileMiB * MiB;
  let layoutSeconds: number | null = null;
  if (workloads.some((w) => w.file === 'shared')) {
    progress.log(`laying out ${opts.fileMiB} MiB ${path.basename(sharedFile)} on ${name} (fallocate + direct writes)`);
    layoutSeconds = await layOutFile(sharedFile, fileSize);
    progress.log(`  laid out in ${layoutSeconds.toFixed(1)} s`);
  }
  const caps = await targetCapabilities(layoutSeconds === null ? undefined : sharedFile, dir);
  const target: FsTarget = { name, fsType: caps.fsType, dir, sharedFile, fileSize, caps };
  return { target, layoutSeconds };
}

export async function runBench(argv: string[]): Promise<number> {
  // First, before anything touches libuv's thread pool: its size is fixed when it starts.
  const threadpool: ThreadpoolInfo = await configureThreadpool(THREADPOOL_SIZE);
  const startedAt = new Date();
  let opts: BenchOptions;
  try {
    opts = parseOptions(argv, PACKAGE_ROOT);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`odirect bench: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const fsNames: string[] = opts.dir ? ['<fs of --dir>'] : opts.fs;
  if (opts.list) {
    for (const w of WORKLOADS) process.stdout.write(`${opts.fs.map((f) => rowId(w, f)).join('  ')}    ${w.title}\n`);
    for (const { appenders, recordBytes } of selectLogRows([], 'fs')) {
      process.stdout.write(`${opts.fs.map((f) => logRowId(appenders, recordBytes, f)).join('  ')}    log: ${appenders} appender(s), ${recordBytes} B records\n`);
    }
    return 0;
  }
  if (!opts.dir && opts.filters.length && !selectWorkloads(opts.filters, fsNames).length && !fsNames.some((f) => selectLogRows(opts.filters, f).length)) {
    process.stderr.write(`odirect bench: --filter ${opts.filterText.join(',')} matches no row (see --list)\n`);
    return 2;
  }

  const progress = new Progress(0, opts.progress);
  const errors: string[] = [];
  // The bench compares the engines by name; a process-wide override would make both rows one engine.
  const engineEnv = process.env.ODIRECT_ENGINE ?? null;
  delete process.env.ODIRECT_ENGINE;

  let tools = checkTools();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const scratchMissing = !opts.dir && !scratchAvailable().ok;
  if ((tools.missing.length || scratchMissing) && opts.install && isRoot) {
    const r = installMissing((m) => progress.log(m));
    if (r.ran) {
      progress.log(r.message.split('\n').slice(-3).join('\n'));
      if (!r.ok) errors.push(`scripts/install-deps.sh failed: ${r.message.split('\n').slice(-2).join(' ')}`);
    }
    tools = checkTools();
  }
  if (tools.missing.length) progress.log(`missing: ${tools.missing.join(', ')} — their rows will say so`);
  const fio = fioVersion(tools.fio);
  const machine = machineInfo(tools, threadpool);
  const env: SuiteEnv = { opts, tools, fio, progress };

  const rows: RowRecord[] = [];
  const logRows: LogRow[] = [];
  const filesystems: FsRecord[] = [];
  registerCleanupOnExit();
  const uninstall = installInterruptHandlers(() => progress.finish());

  try {
    if (opts.dir) {
      await runOnDirectory(opts, env, rows, filesystems, errors, logRows);
    } else {
      await runOnScratch(opts, env, rows, filesystems, errors, logRows);
    }
  } catch (e) {
    if (!isInterrupted()) errors.push(`bench failed: ${(e as Error).stack ?? String(e)}`);
  } finally {
    progress.finish();
    uninstall();
    if (engineEnv !== null) process.env.ODIRECT_ENGINE = engineEnv;
  }

  computeRatios(rows);
  const targets = evaluateTargets(rows);
  for (const r of rows) if (r.status === 'error') errors.push(`${r.id} ${r.label}: ${r.reason ?? 'error'}`);
  for (const r of logRows) if (r.status === 'error') errors.push(`${r.id} ${r.label}: ${r.reason ?? 'error'}`);

  const durationSeconds = (Date.now() - startedAt.getTime()) / 1000;
  const modeText = opts.quick ? 'quick' : 'full';
  const headline = [
    `odirect bench (${modeText}: ${opts.runs} run${opts.runs > 1 ? 's' : ''} × ${opts.seconds} s per contender and row${opts.runs > 1 ? '; medians, ± half the range' : ''})`,
    `${machine.kernel} · ${machine.cpus} CPUs · node ${machine.node} · ${machine.fio.version ?? 'fio missing'} · liburing ${machine.liburing ?? 'missing'}`,
    ...filesystems.map((f) => {
      const dev = f.scratch ? `${f.scratch.loop} (loop, direct-io ${f.device?.directIo ? 'on' : 'off'}, ${f.scratch.imageMiB} MiB sparse image)` : (f.mount?.source ?? '?');
      return `${f.name}: ${dev}, file ${f.fileBytes / MiB} MiB${f.mount ? `, mounted ${f.mount.options}` : ''}`;
    }),
    `thread pool: ${threadpool.note}`,
    ...(engineEnv !== null ? [`ODIRECT_ENGINE=${engineEnv} was ignored during the bench (it would force one engine on both odirect rows)`] : []),
    `latency: per operation, call to completion (fio: lat_ns, submission included); ratios: odirect ÷ peer on IOPS or MiB/s`,
  ].join('\n');
  const table = renderTable(rows) + renderLogTable(logRows);
  const targetsText = renderTargets(targets);

  // Files.
  const base = timestamp(startedAt);
  let jsonPath = '';
  let svgPath = '';
  try {
    fs.mkdirSync(opts.outDir, { recursive: true });
    jsonPath = uniquePath(opts.outDir, base, '.json');
    svgPath = jsonPath.replace(/\.json$/, '.svg');
    const subtitle = `${machine.kernel} · ${filesystems.map((f) => f.name).join(', ')} · ${modeText} · ${startedAt.toISOString()}`;
    fs.writeFileSync(svgPath, renderSvg(rows, 'odirect bench: odirect against fio, a C reference and node:fs; CPU per I/O', subtitle));
    const report: BenchReport = {
      schema: 'odirect-bench/1',
      date: startedAt.toISOString(),
      command: ['odirect', 'bench', ...argv],
      mode: opts.dir ? 'dir' : 'scratch',
      settings: {
        quick: opts.quick,
        runs: opts.runs,
        secondsPerRun: opts.seconds,
        fileMiB: opts.fileMiB,
        bufferedMiB: opts.bufferedMiB,
        appendCapMiB: opts.appendCapMiB,
        filters: opts.filterText,
        contenders: opts.contenders ?? null,
        odirectEngineEnv: engineEnv,
      },
      machine,
      filesystems,
      rows,
      targets,
      targetsText: TARGET_TEXT,
      log: { rows: logRows, ratios: logRatios(logRows) },
      errors,
      durationSeconds,
      table: `${headline}\n${table}\n${targetsText}\n`,
      files: { json: jsonPath, svg: svgPath },
    };
    fs.writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n');
  } catch (e) {
    errors.push(`writing results to ${opts.outDir} failed: ${(e as Error).message}`);
  }

  process.stdout.write(`\n${headline}\n${table}\n${targetsText}\n\n`);
  if (jsonPath) process.stdout.write(`results: ${jsonPath}\nchart:   ${svgPath}\n`);
  process.stdout.write(`time: ${durationSeconds.toFixed(0)} s\n`);
  if (errors.length) process.stderr.write(`\nodirect bench: ${errors.length} problem(s):\n  ${errors.join('\n  ')}\n`);
  if (isInterrupted()) return 130;
  return errors.length ? 1 : 0;
}

async function runOnScratch(opts: BenchOptions, env: SuiteEnv, rows: RowRecord[], filesystems: FsRecord[], errors: string[], logRows: LogRow[]): Promise<void> {
  const available = scratchAvailable();
  if (!available.ok) {
    throw new Error(`cannot make scratch filesystems: ${available.reason}. Run as root, or use --dir PATH on a filesystem you choose.`);
  }
  for (const line of sweepStaleScratch()) env.progress.log(`removed a leftover of an earlier run: ${line}`);
  const plan = opts.fs
    .map((name) => ({ name, workloads: selectWorkloads(opts.filters, [name]).map((s) => s.workload) }))
    .filter((p) => p.workloads.length || selectLogRows(opts.filters, p.name).length);
  env.progress.addSteps(plan.reduce((n, p) => n + stepsFor(p.workloads, opts), 0));
  for (const { name, workloads } of plan) {
    if (isInterrupted()) return;
    const imageMiB = imageSizeMiB(name, workloads, opts);
    env.progress.log(`making ${name} on a ${imageMiB} MiB sparse image (loop device, --direct-io=on)`);
    const scratch = await makeScratchFs({ kind: name, sizeMiB: imageMiB, label: `bench-${name}` });
    let record: FsRecord | undefined;
    try {
      trackDirectory(scratch.mountpoint!);
      const { target, layoutSeconds } = await prepareTarget(name, scratch.mountpoint!, workloads, opts, env.progress);
      record = describeTarget(target, 'scratch', layoutSeconds, scratch, imageMiB);
      filesystems.push(record);
      rows.push(...(await runWorkloads(target, workloads, env)));
      await runLogRowsOn(target.dir, name, opts, env, logRows);
    } finally {
      untrackDirectory(scratch.mountpoint!);
      try {
        await removeScratchFs(scratch);
        if (record?.scratch) record.scratch.removed = true;
      } catch (e) {
        errors.push(`removing the ${name} scratch filesystem failed: ${(e as Error).message}`);
      }
    }
  }
}

async function runOnDirectory(opts: BenchOptions, env: SuiteEnv, rows: RowRecord[], filesystems: FsRecord[], errors: string[], logRows: LogRow[]): Promise<void> {
  const dir = opts.dir!;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`--dir ${dir}: not a directory`);
  const work = fs.mkdtempSync(path.join(dir, 'odirect-bench-'));
  trackTempDir(work);
  try {
    const fsType = (await targetCapabilities(undefined, work)).fsType;
    const workloads = selectWorkloads(opts.filters, [fsType]).map((s) => s.workload);
    if (!workloads.length && !selectLogRows(opts.filters, fsType).length) {
      errors.push(`--filter ${opts.filterText.join(',')} matches no row on ${fsType} (row ids end in @${fsType} here)`);
      return;
    }
    const need = neededBytes(workloads, opts);
    const free = freeBytes(work);
    if (free < need) {
      throw new Error(`--dir ${dir}: ${Math.floor(free / MiB)} MiB free, the selected rows need about ${Math.ceil(need / MiB)} MiB (try --file-mib, --buffered-mib, --append-mib or --filter)`);
    }
    env.progress.addSteps(stepsFor(workloads, opts));
    const { target, layoutSeconds } = await prepareTarget(fsType, work, workloads, opts, env.progress);
    filesystems.push(describeTarget(target, 'dir', layoutSeconds));
    rows.push(...(await runWorkloads(target, workloads, env)));
    await runLogRowsOn(work, fsType, opts, env, logRows);
  } finally {
    try {
      removeTempDir(work);
    } catch (e) {
      errors.push(`removing ${work} failed: ${(e as Error).message}`);
    }
  }
}
