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
    notes.join('; '),
  ];
}

const HEADER = ['fs', 'contender', '', 'p50', 'p99', '×fio', '×C ref', '×node:fs', 'notes'];
const RIGHT = [false, false, true, true, true, true, true, true, false];

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
        body.push([fs, '(every contender)', '—', '', '', '', '', '', `${onFs[0]!.reason ?? 'not supported'}${detail ? ` (${detail})` : ''}`]);
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
  return lines.join('\n');
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
  /** The issue's target for this ratio, drawn as a tick. */
  target?: number;
}

/** Targets that are a ratio of one bar: [workload, series key, threshold]. */
const BAR_TARGETS: Array<[string, 'fio' | 'cRef' | 'nodeFs', number, 'uring' | 'any']> = [
  ['randwrite-qd32', 'fio', 0.9, 'uring'],
  ['seqwrite-1m-qd8', 'fio', 0.95, 'uring'],
  ['atomic-16k-qd32', 'cRef', 0.9, 'any'],
  ['randwrite-dsync-qd32', 'nodeFs', 3, 'any'],
];

const SERIES = [
  { contender: 'odirect-uring', peer: 'fio', key: 'fio', color: '#1f77b4', label: 'uring ÷ fio' },
  { contender: 'odirect-threadpool', peer: 'fio', key: 'fio', color: '#6baed6', label: 'thread pool ÷ fio' },
  { contender: 'odirect-uring', peer: 'C ref', key: 'cRef', color: '#2ca02c', label: 'uring ÷ C ref' },
  { contender: 'odirect-threadpool', peer: 'C ref', key: 'cRef', color: '#98df8a', label: 'thread pool ÷ C ref' },
  { contender: 'odirect-uring', peer: 'node:fs', key: 'nodeFs', color: '#d62728', label: 'uring ÷ node:fs' },
  { contender: 'odirect-threadpool', peer: 'node:fs', key: 'nodeFs', color: '#ff9896', label: 'thread pool ÷ node:fs' },
] as const;

export function renderSvg(rows: readonly RowRecord[], title: string, subtitle: string): string {
  const groups: Array<{ id: string; bars: Bar[] }> = [];
  // The issue's order of workloads, each filesystem next to the other.
  const order = new Map(WORKLOADS.map((w, i) => [w.id, i]));
  const ids = [...new Set(rows.map((r) => r.id))].sort((a, b) => {
    const [wa = '', fa = ''] = a.split('@');
    const [wb = '', fb = ''] = b.split('@');
    return (order.get(wa) ?? 99) - (order.get(wb) ?? 99) || fa.localeCompare(fb);
  });
  for (const id of ids) {
    const bars: Bar[] = [];
    for (const s of SERIES) {
      const r = rows.find((x) => x.id === id && x.contender === s.contender);
      const ratio = r?.ratios?.[s.key];
      if (typeof ratio === 'number' && Number.isFinite(ratio) && ratio > 0) {
        const t = BAR_TARGETS.find(([w, key, , engine]) => w === r!.workload && key === s.key && (engine === 'any' || s.contender === 'odirect-uring'));
        bars.push({ label: s.label, ratio, color: s.color, ...(t ? { target: t[2] } : {}) });
      }
    }
    if (bars.length) groups.push({ id, bars });
  }
  const MIN = 0.05;
  const MAX = 20;
  const left = 190;
  const plot = 560;
  const barH = 11;
  const gap = 10;
  const top = 74;
  const legendRows = Math.ceil(SERIES.length / 3);
  const bodyH = groups.reduce((h, g) => h + g.bars.length * barH + gap, 0);
  const height = top + Math.max(bodyH, 30) + 40 + (legendRows + 1) * 18;
  const width = left + plot + 80;
  const x = (r: number): number => left + ((Math.log10(Math.min(MAX, Math.max(MIN, r))) - Math.log10(MIN)) / (Math.log10(MAX) - Math.log10(MIN))) * plot;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="12" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="12" y="38" fill="#555">${esc(subtitle)}</text>`);
  out.push(`<text x="12" y="54" fill="#555">${esc('odirect ÷ peer (IOPS or MiB/s; log scale; right of 1× = odirect faster)')}</text>`);
  const axisBottom = top + Math.max(bodyH, 30);
  for (const t of [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 20]) {
    const tx = x(t).toFixed(1);
    out.push(`<line x1="${tx}" y1="${top - 6}" x2="${tx}" y2="${axisBottom}" stroke="${t === 1 ? '#000' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${tx}" y="${axisBottom + 14}" text-anchor="middle" fill="#333">${t}×</text>`);
  }
  let y = top;
  for (const g of groups) {
    out.push(`<text x="${left - 8}" y="${(y + (g.bars.length * barH) / 2 + 4).toFixed(1)}" text-anchor="end">${esc(g.id)}</text>`);
    for (const b of g.bars) {
      const x0 = x(1);
      const x1 = x(b.ratio);
      const bx = Math.min(x0, x1);
      const bw = Math.max(1, Math.abs(x1 - x0));
      out.push(`<rect x="${bx.toFixed(1)}" y="${y + 1}" width="${bw.toFixed(1)}" height="${barH - 2}" fill="${b.color}"><title>${esc(`${g.id}: ${b.label} = ${b.ratio.toFixed(3)}×`)}</title></rect>`);
      const tx = b.ratio >= 1 ? x1 + 4 : x1 - 4;
      out.push(`<text x="${tx.toFixed(1)}" y="${y + barH - 2}" font-size="9" text-anchor="${b.ratio >= 1 ? 'start' : 'end'}" fill="#333">${esc(formatRatio(b.ratio))}</text>`);
      if (b.target !== undefined) {
        const mx = x(b.target).toFixed(1);
        out.push(`<line x1="${mx}" y1="${y - 1}" x2="${mx}" y2="${y + barH + 1}" stroke="#000" stroke-width="2"><title>${esc(`target ${b.target}×`)}</title></line>`);
      }
      y += barH;
    }
    y += gap;
  }
  if (!groups.length) out.push(`<text x="${left}" y="${top + 18}" fill="#888">no odirect ratios in this run</text>`);
  const ly = axisBottom + 32;
  SERIES.forEach((s, i) => {
    const lx = 12 + (i % 3) * 250;
    const yy = ly + Math.floor(i / 3) * 18;
    out.push(`<rect x="${lx}" y="${yy - 9}" width="12" height="10" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 18}" y="${yy}">${esc(s.label)}</text>`);
  });
  const ty = ly + legendRows * 18;
  out.push(`<line x1="18" y1="${ty - 10}" x2="18" y2="${ty + 1}" stroke="#000" stroke-width="2"/>`);
  out.push(`<text x="30" y="${ty}">${esc("the issue's target for that ratio (measured, not asserted)")}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
