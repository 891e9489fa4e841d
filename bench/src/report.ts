// What the bench prints and writes: the table (text), the JSON document, the SVG chart.
import { WORKLOADS } from './workloads';
import type { RowRecord, TargetRecord } from './types';

/* ---------------------------------------------------------------------------------------- */
/* Number formatting                                                                        */
/* ---------------------------------------------------------------------------------------- */

export function formatIops(n: number | null): string {
  if (n === null) return '—';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}k`;
  return n.toFixed(n >= 100 ? 0 : 1);
}

export function formatMibs(n: number | null): string {
  if (n === null) return '—';
  return n >= 100 ? `${n.toFixed(0)}` : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

export function formatLatency(us: number | null | undefined): string {
  if (us === null || us === undefined) return '—';
  if (us < 1000) return `${us.toFixed(us < 10 ? 1 : 0)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

/** CPU time per I/O, µs. */
export function formatCpu(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us)) return '—';
  if (us >= 1000) return `${(us / 1000).toFixed(us >= 1e4 ? 1 : 2)} ms`;
  return `${us.toFixed(us < 10 ? 2 : us < 100 ? 1 : 0)} µs`;
}

export function formatRatio(r: number | null | undefined): string {
  if (r === null || r === undefined) return '';
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

/* ---------------------------------------------------------------------------------------- */
/* Table                                                                                    */
/* ---------------------------------------------------------------------------------------- */

function pad(text: string, width: number, right = false): string {
  const len = [...text].length;
  if (len >= width) return text;
  return right ? ' '.repeat(width - len) + text : text + ' '.repeat(width - len);
}

function rowValue(r: RowRecord): string {
  if (r.status !== 'ok' || !r.median) return '—';
  const v = r.metric === 'iops' ? formatIops(r.median.iops) : formatMibs(r.median.mibs);
  return r.spread ? `${v} ±${r.spread.pct < 10 ? r.spread.pct.toFixed(1) : r.spread.pct.toFixed(0)}%` : v;
}

function pagesText(pages: number | null | undefined): string {
  if (pages === null || pages === undefined) return '';
  return `page cache left: ${pages} pages (${((pages * 4096) / 2 ** 20).toFixed(1)} MiB)`;
}

/** Cells of one contender row. */
function cells(r: RowRecord): string[] {
  const notes: string[] = [];
  if (r.status === 'unsupported') notes.push(`not supported: ${r.reason ?? ''}`);
  if (r.status === 'error') notes.push(`ERROR: ${r.reason ?? ''}`);
  if (r.median?.pagesLeft !== undefined) {
    const p = pagesText(r.median.pagesLeft);
    if (p) notes.push(p);
  }
  if (r.ratios?.p50VsFio !== null && r.ratios?.p50VsFio !== undefined && r.workload === 'randwrite-qd1') {
    notes.push(`p50 ${formatRatio(r.ratios.p50VsFio)} fio's`);
  }
  if (r.notComparable) notes.push(`vs node:fs: not comparable (see below)`);
  notes.push(...r.notes);
  return [
    r.fs,
    r.label,
    rowValue(r),
    r.status === 'ok' ? formatLatency(r.median?.p50Us) : '',
    r.status === 'ok' ? formatLatency(r.median?.p99Us) : '',
    formatRatio(r.ratios?.fio),
    formatRatio(r.ratios?.cRef),
    formatRatio(r.ratios?.nodeFs),
    r.status === 'ok' ? formatCpu(r.median?.cpuUsPerOp) : '',
    formatRatio(r.ratios?.cpuVsFio ?? r.ratios?.cpuVsCRef),
    notes.join('; '),
  ];
}

const HEADER = ['fs', 'contender', '', 'p50', 'p99', '×fio', '×C ref', '×node:fs', 'CPU/IO', 'CPU ×ref', 'notes'];
const RIGHT = [false, false, true, true, true, true, true, true, true, true, false];

export function renderTable(rows: readonly RowRecord[]): string {
  const lines: string[] = [];
  for (const workload of WORKLOADS) {
    const mine = rows.filter((r) => r.workload === workload.id);
    if (!mine.length) continue;
    lines.push('');
    lines.push(`${workload.number}. ${workload.id} — ${workload.title}`);
    const body: string[][] = [];
    for (const fs of [...new Set(mine.map((r) => r.fs))]) {
      const onFs = mine.filter((r) => r.fs === fs);
      const reasons = new Set(onFs.map((r) => r.reason));
      if (onFs.every((r) => r.status === 'unsupported') && reasons.size === 1 && workload.atomic) {
        const detail = onFs[0]!.notes[0];
        body.push([fs, '(every contender)', '—', '', '', '', '', '', '', '', `${onFs[0]!.reason ?? 'not supported'}${detail ? ` (${detail})` : ''}`]);
        continue;
      }
      for (const r of onFs) body.push(cells(r));
    }
    const header = [...HEADER];
    header[2] = workload.metric === 'iops' ? 'IOPS' : 'MiB/s';
    const widths = header.map((h, i) => Math.max([...h].length, ...body.map((b) => [...(b[i] ?? '')].length)));
    const fmt = (cols: string[]): string =>
      '  ' +
      cols
        .map((c, i) => (i === cols.length - 1 ? c : pad(c, widths[i]!, RIGHT[i])))
        .join('  ')
        .trimEnd();
    lines.push(fmt(header));
    for (const b of body) lines.push(fmt(b));
  }
  const apart = comparisonGroups(rows).notComparable;
  if (apart.length) {
    lines.push('');
    lines.push('Not like with like, shown apart (odirect direct I/O ÷ node:fs buffered; not a speed-up):');
    const whys = [...new Set(apart.map((e) => e.why ?? ''))];
    for (const e of apart) lines.push(`  ${pad(e.id, 26)} ${pad(contenderName(e.contender), 20)} ${pad(formatRatio(e.ratio), 7, true)}  [${whys.indexOf(e.why ?? '') + 1}]`);
    whys.forEach((why, i) => lines.push(`  [${i + 1}] ${why}`));
  }
  lines.push('');
  lines.push(
    'CPU/IO: user+system CPU µs per I/O of the process that ran it (odirect and node:fs: process.cpuUsage() of the bench; ' +
      'fio: its usr_cpu/sys_cpu; C ref: getrusage). CPU ×ref: odirect ÷ fio (÷ the C reference on the atomic row); lower is less CPU.',
  );
  return lines.join('\n');
}

function contenderName(c: string): string {
  return c === 'odirect-uring' ? 'odirect uring' : c === 'odirect-threadpool' ? 'odirect thread pool' : c === 'odirect-sync' ? 'odirect sync' : c;
}

/* ---------------------------------------------------------------------------------------- */
/* Which ratios compare like with like                                                      */
/* ---------------------------------------------------------------------------------------- */

export interface RatioEntry {
  /** Row id, 'randwrite-qd32@xfs'. */
  id: string;
  workload: string;
  fs: string;
  /** The odirect contender. */
  contender: string;
  peer: 'fio' | 'cRef' | 'nodeFs';
  ratio: number;
  /** notComparable entries: why the peer did different work. */
  why?: string;
}

/**
 * The odirect ratios of a run, split into those against a peer that did the same work (fio, the
 * C reference, node:fs where it is durable or ends in fdatasync) and those against node:fs where
 * it was buffered while odirect was direct: the second group is drawn and printed apart.
 */
export function comparisonGroups(rows: readonly RowRecord[]): { likeWithLike: RatioEntry[]; notComparable: RatioEntry[] } {
  const likeWithLike: RatioEntry[] = [];
  const notComparable: RatioEntry[] = [];
  for (const r of rows) {
    const base = { id: r.id, workload: r.workload, fs: r.fs, contender: r.contender };
    for (const peer of ['fio', 'cRef', 'nodeFs'] as const) {
      const ratio = r.ratios?.[peer];
      if (typeof ratio === 'number' && Number.isFinite(ratio) && ratio > 0) likeWithLike.push({ ...base, peer, ratio });
    }
    const apart = r.notComparable?.nodeFs;
    if (apart && Number.isFinite(apart.ratio) && apart.ratio > 0) notComparable.push({ ...base, peer: 'nodeFs', ratio: apart.ratio, why: apart.why });
  }
  return { likeWithLike, notComparable };
}

export function renderTargets(targets: readonly TargetRecord[]): string {
  if (!targets.length) return '';
  const lines = ['', 'Targets (measured on this run, reported, not asserted):'];
  for (const t of targets) {
    const mark = t.met === null ? 'n/a ' : t.met ? 'met ' : 'MISS';
    const measured = t.measured === null ? '—' : formatRatio(t.measured);
    lines.push(`  [${mark}] ${pad(`${t.description} @${t.fs}`, 66)} ${pad(measured, 7, true)}  (target ${t.comparison} ${t.threshold}×)${t.note ? `  ${t.note}` : ''}`);
  }
  return lines.join('\n');
}

/* ---------------------------------------------------------------------------------------- */
/* SVG chart of the ratios (hand-made, no dependencies)                                     */
/* ---------------------------------------------------------------------------------------- */

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface Bar {
  label: string;
  ratio: number;
  color: string;
  /** The target for this ratio, drawn as a tick. */
  target?: number;
}

/** Targets that are a ratio of one bar: [workload, series key, threshold]. */
const BAR_TARGETS: Array<[string, 'fio' | 'cRef' | 'nodeFs', number, 'uring' | 'any']> = [
  ['randwrite-qd32', 'fio', 1.0, 'uring'],
  ['randread-qd32', 'fio', 1.0, 'uring'],
  ['seqwrite-1m-qd8', 'fio', 1.0, 'uring'],
  ['randwrite-dsync-qd32', 'fio', 0.95, 'uring'],
  ['atomic-16k-qd32', 'cRef', 0.9, 'any'],
  ['randwrite-dsync-qd32', 'nodeFs', 3, 'any'],
];

const SERIES = [
  { contender: 'odirect-uring', key: 'fio', color: '#1f77b4', label: 'uring ÷ fio' },
  { contender: 'odirect-threadpool', key: 'fio', color: '#6baed6', label: 'thread pool ÷ fio' },
  { contender: 'odirect-uring', key: 'cRef', color: '#2ca02c', label: 'uring ÷ C ref' },
  { contender: 'odirect-threadpool', key: 'cRef', color: '#98df8a', label: 'thread pool ÷ C ref' },
  { contender: 'odirect-uring', key: 'nodeFs', color: '#d62728', label: 'uring ÷ node:fs (same work)' },
  { contender: 'odirect-threadpool', key: 'nodeFs', color: '#ff9896', label: 'thread pool ÷ node:fs (same work)' },
] as const;

const APART_SERIES = [
  { contender: 'odirect-uring', color: '#8c8c8c', label: 'uring ÷ node:fs buffered' },
  { contender: 'odirect-threadpool', color: '#c7c7c7', label: 'thread pool ÷ node:fs buffered' },
] as const;

const CPU_SERIES = [
  { contender: 'odirect-uring', color: '#1f77b4', label: 'odirect uring' },
  { contender: 'odirect-threadpool', color: '#6baed6', label: 'odirect thread pool' },
  { contender: 'fio', color: '#ff7f0e', label: 'fio' },
  { contender: 'c-ref', color: '#2ca02c', label: 'C ref' },
  { contender: 'node-fs', color: '#d62728', label: 'node:fs' },
] as const;

/** Row ids in the order of WORKLOADS, each filesystem next to the other. */
function orderedIds(rows: readonly RowRecord[]): string[] {
  const order = new Map(WORKLOADS.map((w, i) => [w.id, i]));
  return [...new Set(rows.map((r) => r.id))].sort((a, b) => {
    const [wa = '', fa = ''] = a.split('@');
    const [wb = '', fb = ''] = b.split('@');
    return (order.get(wa) ?? 99) - (order.get(wb) ?? 99) || fa.localeCompare(fb);
  });
}

interface Panel {
  title: string;
  /** Text under the title (what the bars are). */
  caption: string;
  groups: Array<{ id: string; bars: Bar[] }>;
  /** Axis range and ticks (log scale). */
  min: number;
  max: number;
  ticks: number[];
  /** Where bars start: 1 for ratios (left or right of 1×), the axis minimum for absolute values. */
  origin: number;
  tickLabel: (t: number) => string;
  valueLabel: (v: number) => string;
  legend: Array<{ color: string; label: string }>;
  empty: string;
}

const LEFT = 190;
const PLOT = 560;
const BAR_H = 11;
const GAP = 10;

/** Draws one panel at `top`; returns the SVG lines and the panel's height. */
function drawPanel(p: Panel, top: number): { svg: string[]; height: number } {
  const out: string[] = [];
  const x = (v: number): number =>
    LEFT + ((Math.log10(Math.min(p.max, Math.max(p.min, v))) - Math.log10(p.min)) / (Math.log10(p.max) - Math.log10(p.min))) * PLOT;
  out.push(`<text x="12" y="${top + 14}" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<text x="12" y="${top + 30}" fill="#555">${esc(p.caption)}</text>`);
  const plotTop = top + 48;
  const bodyH = Math.max(
    p.groups.reduce((h, g) => h + g.bars.length * BAR_H + GAP, 0),
    30,
  );
  const axisBottom = plotTop + bodyH;
  for (const t of p.ticks) {
    const tx = x(t).toFixed(1);
    const strong = t === p.origin && p.origin === 1;
    out.push(`<line x1="${tx}" y1="${plotTop - 6}" x2="${tx}" y2="${axisBottom}" stroke="${strong ? '#000' : '#ddd'}" stroke-width="${strong ? 1.5 : 1}"/>`);
    out.push(`<text x="${tx}" y="${axisBottom + 14}" text-anchor="middle" fill="#333">${esc(p.tickLabel(t))}</text>`);
  }
  let y = plotTop;
  for (const g of p.groups) {
    out.push(`<text x="${LEFT - 8}" y="${(y + (g.bars.length * BAR_H) / 2 + 4).toFixed(1)}" text-anchor="end">${esc(g.id)}</text>`);
    for (const b of g.bars) {
      const x0 = x(p.origin);
      const x1 = x(b.ratio);
      const bx = Math.min(x0, x1);
      const bw = Math.max(1, Math.abs(x1 - x0));
      out.push(`<rect x="${bx.toFixed(1)}" y="${y + 1}" width="${bw.toFixed(1)}" height="${BAR_H - 2}" fill="${b.color}"><title>${esc(`${g.id}: ${b.label} = ${p.valueLabel(b.ratio)}`)}</title></rect>`);
      const right = b.ratio >= p.origin;
      const tx = right ? x1 + 4 : x1 - 4;
      out.push(`<text x="${tx.toFixed(1)}" y="${y + BAR_H - 2}" font-size="9" text-anchor="${right ? 'start' : 'end'}" fill="#333">${esc(p.valueLabel(b.ratio))}</text>`);
      if (b.target !== undefined) {
        const mx = x(b.target).toFixed(1);
        out.push(`<line x1="${mx}" y1="${y - 1}" x2="${mx}" y2="${y + BAR_H + 1}" stroke="#000" stroke-width="2"><title>${esc(`target ${b.target}×`)}</title></line>`);
      }
      y += BAR_H;
    }
    y += GAP;
  }
  if (!p.groups.length) out.push(`<text x="${LEFT}" y="${plotTop + 18}" fill="#888">${esc(p.empty)}</text>`);
  const ly = axisBottom + 32;
  p.legend.forEach((s, i) => {
    const lx = 12 + (i % 3) * 270;
    const yy = ly + Math.floor(i / 3) * 18;
    out.push(`<rect x="${lx}" y="${yy - 9}" width="12" height="10" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 18}" y="${yy}">${esc(s.label)}</text>`);
  });
  const legendRows = Math.ceil(p.legend.length / 3);
  return { svg: out, height: ly - top + legendRows * 18 };
}

/** Log-scale ticks 1-2-5 covering [min, max]. */
function ticks125(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** e;
      if (t >= min * 0.999 && t <= max * 1.001) out.push(Number(t.toPrecision(3)));
    }
  }
  return out;
}

export function renderSvg(rows: readonly RowRecord[], title: string, subtitle: string): string {
  const { likeWithLike, notComparable } = comparisonGroups(rows);
  const ids = orderedIds(rows);
  const ratioAxis = { min: 0.05, max: 20, ticks: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 20], origin: 1, tickLabel: (t: number) => `${t}×`, valueLabel: (v: number) => formatRatio(v) };

  const ratios: Panel = {
    ...ratioAxis,
    title: 'Like with like: odirect ÷ a peer doing the same work',
    caption: 'IOPS or MiB/s, log scale; right of 1× = odirect faster. node:fs only where it is durable too (O_DSYNC) or ends in fdatasync.',
    groups: [],
    legend: [...SERIES.map((s) => ({ color: s.color, label: s.label }))],
    empty: 'no odirect ratios in this run',
  };
  for (const id of ids) {
    const bars: Bar[] = [];
    for (const s of SERIES) {
      const e = likeWithLike.find((x) => x.id === id && x.contender === s.contender && x.peer === s.key);
      if (!e) continue;
      const t = BAR_TARGETS.find(([w, key, , engine]) => w === e.workload && key === s.key && (engine === 'any' || s.contender === 'odirect-uring'));
      bars.push({ label: s.label, ratio: e.ratio, color: s.color, ...(t ? { target: t[2] } : {}) });
    }
    if (bars.length) ratios.groups.push({ id, bars });
  }

  const apart: Panel = {
    ...ratioAxis,
    title: 'Not comparable, shown apart: odirect direct I/O ÷ node:fs buffered',
    caption: 'node:fs counts page-cache copies (writes) or cache hits (reads); odirect counts device I/O. Not a speed-up or a slow-down.',
    groups: [],
    legend: APART_SERIES.map((s) => ({ color: s.color, label: s.label })),
    empty: 'none in this run',
  };
  for (const id of ids) {
    const bars: Bar[] = [];
    for (const s of APART_SERIES) {
      const e = notComparable.find((x) => x.id === id && x.contender === s.contender);
      if (e) bars.push({ label: s.label, ratio: e.ratio, color: s.color });
    }
    if (bars.length) apart.groups.push({ id, bars });
  }

  const cpuValues = rows.filter((r) => r.status === 'ok').map((r) => r.median?.cpuUsPerOp ?? NaN).filter((v) => Number.isFinite(v) && v > 0);
  const cpuMin = cpuValues.length ? 10 ** Math.floor(Math.log10(Math.min(...cpuValues))) : 1;
  const cpuMax = cpuValues.length ? 10 ** Math.ceil(Math.log10(Math.max(...cpuValues) * 1.0001)) : 100;
  const cpu: Panel = {
    title: 'CPU time per I/O (user + system, µs; lower is better)',
    caption: 'odirect and node:fs: process.cpuUsage() of the bench process; fio: its usr_cpu/sys_cpu; C ref: getrusage(RUSAGE_SELF). Log scale.',
    groups: [],
    min: cpuMin,
    max: cpuMax,
    ticks: ticks125(cpuMin, cpuMax),
    origin: cpuMin,
    tickLabel: (t) => `${t} µs`,
    valueLabel: (v) => formatCpu(v),
    legend: CPU_SERIES.map((s) => ({ color: s.color, label: s.label })),
    empty: 'no CPU figures in this run',
  };
  for (const id of ids) {
    const bars: Bar[] = [];
    for (const s of CPU_SERIES) {
      const r = rows.find((x) => x.id === id && x.contender === s.contender && x.status === 'ok');
      const v = r?.median?.cpuUsPerOp;
      if (typeof v === 'number' && Number.isFinite(v) && v > 0) bars.push({ label: `${s.label}${r!.contender === 'node-fs' ? ` (${r!.label})` : ''}`, ratio: v, color: s.color });
    }
    if (bars.length) cpu.groups.push({ id, bars });
  }

  const width = LEFT + PLOT + 80;
  const body: string[] = [];
  let top = 50;
  for (const panel of [ratios, ...(apart.groups.length ? [apart] : []), cpu]) {
    const drawn = drawPanel(panel, top);
    body.push(...drawn.svg);
    top += drawn.height + 24;
  }
  body.push(`<line x1="18" y1="${top - 10}" x2="18" y2="${top + 1}" stroke="#000" stroke-width="2"/>`);
  body.push(`<text x="30" y="${top}">${esc('target for that ratio (measured and reported, not asserted)')}</text>`);
  const height = top + 16;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="12" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="12" y="38" fill="#555">${esc(subtitle)}</text>`);
  out.push(...body);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
