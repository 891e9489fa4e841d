// Latency samples, percentiles, medians and spreads.

/** Per-operation latencies in nanoseconds, kept in a growing Float64Array (bounded). */
export class LatencyRecorder {
  private samples = new Float64Array(1 << 16);
  private n = 0;
  /** 32 Mi samples (256 MiB) is far beyond any run the bench makes; beyond that, samples are dropped. */
  static readonly MAX_SAMPLES = 1 << 25;
  dropped = 0;

  add(ns: number): void {
    if (this.n === this.samples.length) {
      if (this.samples.length >= LatencyRecorder.MAX_SAMPLES) {
        this.dropped++;
        return;
      }
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.n++] = ns;
  }

  get count(): number {
    return this.n;
  }

  /** Percentiles (0-100) in nanoseconds, nearest-rank; null when there are no samples. */
  percentiles(ps: readonly number[]): Array<number | null> {
    if (this.n === 0) return ps.map(() => null);
    const sorted = this.samples.subarray(0, this.n).sort();
    return ps.map((p) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))]!);
  }
}

export function median(values: readonly number[]): number | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export interface Spread {
  min: number;
  max: number;
  /** Half the range as a percentage of the median: the '±' the table shows. */
  pct: number;
}

export function spread(values: readonly number[]): Spread | null {
  const v = values.filter((x) => Number.isFinite(x));
  const m = median(v);
  if (m === null || v.length < 2) return null;
  const min = Math.min(...v);
  const max = Math.max(...v);
  return { min, max, pct: m === 0 ? 0 : ((max - min) / 2 / m) * 100 };
}

export function nowNs(): bigint {
  return process.hrtime.bigint();
}
