// The benchmark suite (bench/src, issue 5), end to end: `--quick --filter` of one row
// makes its own scratch ext4 on a loop device, runs every contender, writes valid JSON
// and an SVG, and leaves no mount, loop device or directory behind. `--dir` makes
// nothing and removes its temp subdirectory.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { computeRatios, runBench } from '../bench/src/index';
import type { BenchReport } from '../bench/src/index';
import { compileFilter } from '../bench/src/options';
import { comparisonGroups, renderSvg, renderTable } from '../bench/src/report';
import type { RowRecord } from '../bench/src/types';
import { nodeFsComparison, WORKLOADS } from '../bench/src/workloads';
import { LatencyRecorder, median, spread } from '../bench/src/stats';
import { scratchAvailable } from '../lib/scratch/scratchfs';
import { ENGINES } from './helpers/engines';
import { describeOnFs, requireLoop, uniqueDir } from './helpers/scratch';

// Which odirect engines must produce numbers (the lead flips this list).

const outDirs: string[] = [];
function tempOut(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-bench-test-'));
  outDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of outDirs) fs.rmSync(dir, { recursive: true, force: true });
});

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the bench in this process, capturing what it prints. */
async function bench(argv: string[]): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await runBench(argv);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

function readReport(outDir: string): { report: BenchReport; json: string; svg: string } {
  const files = fs.readdirSync(outDir);
  const json = files.filter((f) => f.endsWith('.json'));
  const svg = files.filter((f) => f.endsWith('.svg'));
  expect(json).toHaveLength(1);
  expect(svg).toHaveLength(1);
  const text = fs.readFileSync(path.join(outDir, json[0]!), 'utf8');
  return { report: JSON.parse(text) as BenchReport, json: path.join(outDir, json[0]!), svg: path.join(outDir, svg[0]!) };
}

function mountpoints(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** Backing files of every attached loop device (sysfs). */
function loopBackingFiles(): string[] {
  const files: string[] = [];
  for (const name of fs.readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n))) {
    try {
      files.push(fs.readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim());
    } catch {
      // not attached
    }
  }
  return files;
}

describe('bench helpers', () => {
  it('takes percentiles by nearest rank and medians with their spread', () => {
    const lat = new LatencyRecorder();
    for (let i = 100; i >= 1; i--) lat.add(i * 1000);
    expect(lat.count).toBe(100);
    expect(lat.percentiles([50, 99, 100])).toEqual([50_000, 99_000, 100_000]);
    expect(new LatencyRecorder().percentiles([50])).toEqual([null]);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(spread([90, 100, 110])).toEqual({ min: 90, max: 110, pct: 10 });
    expect(spread([5])).toBeNull();
  });

  it('matches row ids by substring or regular expression', () => {
    expect(compileFilter('randwrite-qd32').test('randwrite-qd32@xfs')).toBe(true);
    expect(compileFilter('randwrite-qd32').test('randwrite-dsync-qd32@xfs')).toBe(false);
    expect(compileFilter('qd(1|8)$').test('randwrite-qd1')).toBe(true);
    expect(compileFilter('/^ATOMIC/i').test('atomic-16k-qd32@xfs')).toBe(true);
  });

  it('rejects bad arguments with exit status 2, making nothing', async () => {
    const before = loopBackingFiles().length;
    for (const argv of [['--runs', '0'], ['--nope'], ['--filter', '('], ['--fs', 'btrfs'], ['--filter', 'no-such-row']]) {
      const r = await bench(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/odirect bench: /);
    }
    expect(loopBackingFiles().length).toBeLessThanOrEqual(before);
  });
});

/** A finished row as the suite makes it, with made-up figures (for the report model only). */
function fakeRow(workload: string, fs: string, contender: string, value: number, cpuUsPerOp: number): RowRecord {
  const w = WORKLOADS.find((x) => x.id === workload)!;
  const figures = w.metric === 'iops' ? { iops: value, mibs: (value * w.bs) / 2 ** 20 } : { iops: (value * 2 ** 20) / w.bs, mibs: value };
  return {
    id: `${workload}@${fs}`,
    workload,
    workloadNumber: w.number,
    title: w.title,
    fs,
    contender,
    label: contender,
    metric: w.metric,
    status: 'ok',
    config: {},
    runs: [],
    median: { ...figures, p50Us: 100, p99Us: 200, cpuUsPerOp },
    spread: null,
    notes: [],
  };
}

describe('bench report model: like with like', () => {
  it('compares node:fs only where it does the same work, and keeps the rest apart with the reason', () => {
    expect(nodeFsComparison(WORKLOADS.find((w) => w.id === 'randwrite-dsync-qd32')!).comparable).toBe(true);
    expect(nodeFsComparison(WORKLOADS.find((w) => w.id === 'buffered-default')!).comparable).toBe(true);
    expect(nodeFsComparison(WORKLOADS.find((w) => w.id === 'append-dsync')!).comparable).toBe(true);
    for (const id of ['randwrite-qd1', 'randwrite-qd32', 'randread-qd32', 'seqwrite-1m-qd8']) {
      expect(nodeFsComparison(WORKLOADS.find((w) => w.id === id)!).comparable, id).toBe(false);
    }
    const rows = [
      fakeRow('randwrite-qd32', 'xfs', 'odirect-uring', 50_000, 8),
      fakeRow('randwrite-qd32', 'xfs', 'fio', 40_000, 4),
      fakeRow('randwrite-qd32', 'xfs', 'node-fs', 100_000, 10),
      fakeRow('randwrite-dsync-qd32', 'xfs', 'odirect-uring', 9_000, 6),
      fakeRow('randwrite-dsync-qd32', 'xfs', 'node-fs', 3_000, 12),
      fakeRow('buffered-default', 'xfs', 'odirect-threadpool', 400, 300),
      fakeRow('buffered-default', 'xfs', 'node-fs', 500, 250),
    ];
    computeRatios(rows);
    const uring = rows[0]!;
    expect(uring.ratios).toMatchObject({ fio: 1.25, nodeFs: null, cpuVsFio: 2 });
    expect(uring.notComparable!.nodeFs.ratio).toBe(0.5);
    expect(uring.notComparable!.nodeFs.why).toMatch(/buffered/);
    expect(rows[3]!.ratios).toMatchObject({ nodeFs: 3, fio: null, cpuVsFio: null });
    expect(rows[3]!.notComparable).toBeUndefined();
    expect(rows[5]!.ratios!.nodeFs).toBeCloseTo(0.8, 12);
    for (const peer of [rows[1]!, rows[2]!]) expect(peer.ratios).toBeUndefined();

    const groups = comparisonGroups(rows);
    expect(groups.likeWithLike.map((e) => `${e.id} ${e.contender} ${e.peer}`).sort()).toEqual([
      'buffered-default@xfs odirect-threadpool nodeFs',
      'randwrite-dsync-qd32@xfs odirect-uring nodeFs',
      'randwrite-qd32@xfs odirect-uring fio',
    ]);
    expect(groups.notComparable.map((e) => `${e.id} ${e.contender} ${e.peer} ${e.ratio}`)).toEqual(['randwrite-qd32@xfs odirect-uring nodeFs 0.5']);

    // The table prints the non-comparable ratio apart, not in the ×node:fs column; the chart draws it in its own panel.
    const table = renderTable(rows);
    const apart = table.indexOf('Not like with like');
    expect(apart).toBeGreaterThan(0);
    expect(table.slice(apart)).toMatch(/randwrite-qd32@xfs\s+odirect uring\s+0\.50×/);
    expect(table).toMatch(/CPU\/IO/);
    expect(table).toContain('8.00 µs');
    const svg = renderSvg(rows, 't', 's');
    const panel = svg.indexOf('Not comparable, shown apart');
    const cpuPanel = svg.indexOf('CPU time per I/O');
    expect(panel).toBeGreaterThan(svg.indexOf('Like with like'));
    expect(cpuPanel).toBeGreaterThan(panel);
    expect(svg.slice(panel, cpuPanel)).toContain('randwrite-qd32@xfs: uring ÷ node:fs buffered = 0.50×');
    expect(svg.slice(0, panel)).not.toContain('randwrite-qd32@xfs: uring ÷ node:fs');
    expect(svg.slice(0, panel)).toContain('randwrite-dsync-qd32@xfs: uring ÷ node:fs (same work) = 3.00×');
    expect(svg).not.toContain("the issue's target");
  });
});

const loopReason = scratchAvailable();
const describeScratch = loopReason.ok || requireLoop() ? describe : describe.skip;

describeScratch(`bench --quick --filter on a scratch filesystem it makes${loopReason.ok ? '' : ` [skipped: ${loopReason.reason}]`}`, () => {
  let result: Captured;
  let report: BenchReport;
  let svg: string;
  const ROW = 'randwrite-qd32@ext4';

  beforeAll(async () => {
    const out = tempOut();
    result = await bench(['--quick', '--filter', ROW, '--out', out]);
    ({ report, svg } = readReport(out));
  }, 180_000);

  afterEach(() => vi.restoreAllMocks());

  it('exits 0, shows progress on stderr and the table on stdout', () => {
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`${ROW} · odirect thread pool`);
    expect(result.stderr).toContain(`${ROW} · fio io_uring`);
    expect(result.stdout).toContain('randwrite-qd32 — 4 KiB random direct writes, 32 in flight');
    expect(result.stdout).toMatch(/IOPS\s+p50\s+p99\s+×fio/);
    expect(result.stdout).toContain('Targets (measured on this run, reported, not asserted)');
    expect(result.stdout).toContain(svg);
  });

  it('writes JSON with the settings, the machine and the filesystem', () => {
    expect(report.schema).toBe('odirect-bench/1');
    expect(report.mode).toBe('scratch');
    expect(report.settings).toMatchObject({ quick: true, runs: 1, secondsPerRun: 2, fileMiB: 256, filters: [ROW] });
    expect(report.machine.kernel).toBe(os.release());
    expect(report.machine.node).toBe(process.version);
    expect(report.machine.fio.version).toMatch(/^fio-\d+\.\d+/);
    expect(typeof report.machine.uvThreadpool.note).toBe('string');
    expect(report.filesystems).toHaveLength(1);
    const f = report.filesystems[0]!;
    expect(f).toMatchObject({ name: 'ext4', fsType: 'ext4', mode: 'scratch', fileBytes: 256 * 1024 * 1024 });
    expect(f.device).toMatchObject({ kind: 'loop', directIo: true });
    expect(f.mount?.source).toBe(f.scratch?.loop);
    expect((f.capabilities as { direct: { supported: boolean } }).direct.supported).toBe(true);
    expect(report.errors).toEqual([]);
    expect(report.durationSeconds).toBeGreaterThan(0);
  });

  it('has a row per contender with medians, latencies and the ratios of the odirect rows', () => {
    const rows = report.rows.filter((r) => r.id === ROW);
    expect(rows.map((r) => r.contender).sort()).toEqual(['fio', 'node-fs', 'odirect-threadpool', 'odirect-uring']);
    const byContender = new Map(rows.map((r) => [r.contender, r]));
    const fio = byContender.get('fio')!;
    const node = byContender.get('node-fs')!;
    for (const r of [fio, node]) {
      expect(r.status, r.reason).toBe('ok');
      expect(r.runs).toHaveLength(1);
      expect(r.median!.iops).toBeGreaterThan(0);
      expect(r.median!.p50Us).toBeGreaterThan(0);
      expect(r.median!.p99Us!).toBeGreaterThanOrEqual(r.median!.p50Us!);
    }
    expect(node.label).toBe('node:fs buffered');
    expect(String(fio.runs[0]!.details!.command)).toMatch(/--ioengine=io_uring --iodepth=32 .*--randrepeat=0 --norandommap/);
    for (const engine of ['threadpool', 'uring'] as const) {
      const r = byContender.get(`odirect-${engine}`)!;
      if (!ENGINES.includes(engine)) continue;
      expect(r.status, r.reason).toBe('ok');
      const run = r.runs[0]!;
      expect(run.ops).toBeGreaterThan(0);
      expect(run.bytes).toBe(run.ops * 4096);
      // Every write the row counted went around the page cache, on the engine asked for.
      const details = run.details as { engine: string; direct: boolean; stats: { direct: number; bufferedFallback: number } };
      expect(details.engine).toBe(engine);
      expect(details.direct).toBe(true);
      expect(details.stats.direct).toBe(run.ops);
      expect(details.stats.bufferedFallback).toBe(0);
      expect(r.ratios!.fio).toBeCloseTo(r.median!.iops! / fio.median!.iops!, 6);
      // node:fs wrote buffered here: its ratio is kept apart, not compared with the direct writes.
      expect(r.ratios!.nodeFs).toBeNull();
      expect(r.notComparable!.nodeFs.ratio).toBeCloseTo(r.median!.iops! / node.median!.iops!, 6);
      expect(r.ratios!.cpuVsFio).toBeCloseTo(r.median!.cpuUsPerOp! / fio.median!.cpuUsPerOp!, 6);
      expect(run.cpu!.source).toBe('process.cpuUsage()');
    }
    // CPU per I/O for every contender that ran: present, positive, finite, and the sum of its parts.
    for (const r of rows.filter((x) => x.status === 'ok')) {
      const run = r.runs[0]!;
      expect(run.cpu, r.contender).not.toBeNull();
      expect(run.cpu!.userUs + run.cpu!.systemUs, r.contender).toBeGreaterThan(0);
      expect(Number.isFinite(run.cpuUsPerOp), r.contender).toBe(true);
      expect(run.cpuUsPerOp!, r.contender).toBeGreaterThan(0);
      expect(run.cpuUsPerOp!).toBeCloseTo((run.cpu!.userUs + run.cpu!.systemUs) / run.ops, 6);
      expect(r.median!.cpuUsPerOp).toBe(run.cpuUsPerOp);
    }
    expect(fio.runs[0]!.cpu!.source).toMatch(/^fio usr_cpu\/sys_cpu/);
    expect(result.stdout).toMatch(/×node:fs\s+CPU\/IO\s+CPU ×ref/);
    const target = report.targets.find((t) => t.id === 'uring-vs-fio-randwrite-qd32' && t.fs === 'ext4');
    expect(target).toBeDefined();
    if (ENGINES.includes('uring')) expect(target!.measured).toBeCloseTo(byContender.get('odirect-uring')!.ratios!.fio!, 6);
  });

  it('draws the SVG chart of the ratios', () => {
    const text = fs.readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(text.trimEnd().endsWith('</svg>')).toBe(true);
    expect(text).toContain(ROW);
    expect(text).toContain('thread pool ÷ fio');
    expect(text).toContain('CPU time per I/O');
    expect(text).toContain(`${ROW}: fio = `); // fio's bar in the CPU panel
  });

  it('leaves no mount, loop device or directory behind', () => {
    const f = report.filesystems[0]!;
    const made = f.scratch!;
    expect(made.removed).toBe(true);
    expect(made.loop).toMatch(/^\/dev\/loop\d+$/);
    expect(fs.existsSync(made.dir)).toBe(false);
    expect(mountpoints()).not.toContain(made.mountpoint);
    expect(loopBackingFiles()).not.toContain(made.image);
    // The loop device itself may have been reused since; if so, not for our image.
    const backing = `/sys/block/${path.basename(made.loop)}/loop/backing_file`;
    if (fs.existsSync(backing)) expect(fs.readFileSync(backing, 'utf8').trim()).not.toBe(made.image);
  });
});

describeOnFs('ext4', 'bench --dir on a filesystem it does not make', (mnt) => {
  it('runs the rows in a temp subdirectory and removes it, mounting nothing', async () => {
    const parent = uniqueDir(mnt, 'bench-dir');
    const mountsBefore = mountpoints().filter((m) => m.includes('odirect-scratch-bench-')).length;
    const out = tempOut();
    const r = await bench([
      '--quick', '--dir', parent, '--filter', 'randwrite-qd1', '--contenders', 'odirect-threadpool,node-fs',
      '--file-mib', '32', '--seconds', '0.5', '--out', out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const { report } = readReport(out);
    expect(report.mode).toBe('dir');
    expect(report.filesystems).toHaveLength(1);
    const f = report.filesystems[0]!;
    expect(f).toMatchObject({ name: 'ext4', fsType: 'ext4', mode: 'dir' });
    expect(f.scratch).toBeUndefined();
    expect(path.dirname(f.dir)).toBe(parent);
    expect(report.rows.map((x) => `${x.id} ${x.contender} ${x.status}`)).toEqual([
      'randwrite-qd1@ext4 odirect-threadpool ok',
      'randwrite-qd1@ext4 node-fs ok',
    ]);
    const tp = report.rows[0]!;
    expect((tp.runs[0]!.details as { stats: { direct: number } }).stats.direct).toBe(tp.runs[0]!.ops);
    // Its temp subdirectory (and the 32 MiB file in it) is gone; nothing was mounted.
    expect(fs.existsSync(f.dir)).toBe(false);
    expect(fs.readdirSync(parent)).toEqual([]);
    expect(mountpoints().filter((m) => m.includes('odirect-scratch-bench-')).length).toBeLessThanOrEqual(mountsBefore);
    fs.rmSync(parent, { recursive: true, force: true });
  }, 60_000);
});

describeOnFs('xfs', 'bench atomic row on XFS (software, copy-on-write atomic writes)', (mnt) => {
  it('primes the CoW fork, keeps free space steady during the run, and reports CPU per I/O for odirect and the C reference', async () => {
    const parent = uniqueDir(mnt, 'bench-atomic');
    const out = tempOut();
    const r = await bench([
      '--dir', parent, '--filter', 'atomic-16k-qd32', '--contenders', 'odirect-uring,odirect-threadpool,c-ref',
      '--file-mib', '32', '--runs', '1', '--seconds', '0.5', '--no-progress', '--out', out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const { report } = readReport(out);
    const rows = report.rows.filter((x) => x.workload === 'atomic-16k-qd32');
    expect(rows.map((x) => x.contender).sort()).toEqual(['c-ref', 'odirect-threadpool', 'odirect-uring']);
    const ran = rows.filter((x) => x.status === 'ok');
    // The C reference needs cc (installed by scripts/install-deps.sh) and the vendored deps/liburing; odirect's engines per ENGINES.
    expect(ran.map((x) => x.contender)).toEqual(expect.arrayContaining(ENGINES.map((e) => `odirect-${e}`)));
    for (const row of rows.filter((x) => x.status !== 'ok')) expect(row.status, `${row.contender}: ${row.reason}`).toBe('unsupported');
    for (const row of ran) {
      const run = row.runs[0]!;
      expect(run.ops, row.contender).toBeGreaterThan(0);
      expect(run.cpu, row.contender).not.toBeNull();
      expect(run.cpuUsPerOp!, row.contender).toBeGreaterThan(0);
      expect(Number.isFinite(run.cpuUsPerOp), row.contender).toBe(true);
      const file = run.details!.atomicFile as Record<string, number>;
      // 32 MiB from the end down in 8 MiB strides: 4 priming writes before the timed part.
      expect(file.cowPrimeWrites).toBe(4);
      // The run took no more space than a few MiB beyond the primed file (a hole reservation would take up to 32 MiB).
      expect(file.freeBeforeRunMiB - file.lowestFreeMiB, row.contender).toBeLessThan(8);
    }
    const cref = ran.find((x) => x.contender === 'c-ref');
    if (cref) {
      expect(cref.runs[0]!.cpu!.source).toBe('getrusage(RUSAGE_SELF)');
      for (const od of ran.filter((x) => x.contender !== 'c-ref')) {
        expect(od.ratios!.cpuVsCRef).toBeCloseTo(od.median!.cpuUsPerOp! / cref.median!.cpuUsPerOp!, 6);
      }
    }
    fs.rmSync(parent, { recursive: true, force: true });
  }, 120_000);
});
