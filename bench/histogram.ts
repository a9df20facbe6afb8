/**
 * A latency histogram with 1 µs buckets, sparse, so it passes between processes as JSON and
 * merges across runs; percentiles read from it are exact to the microsecond (wrk records
 * latencies in whole microseconds, autocannon's float milliseconds are rounded to them).
 */

/** Sparse: [microseconds, count] pairs, ascending by microseconds. */
export type Histogram = [number, number][];

/** Counts values into 1 µs buckets. */
export class HistogramBuilder {
  private readonly counts = new Map<number, number>();
  total = 0;

  /** Counts `valueMs` (milliseconds) `times` times. */
  record(valueMs: number, times = 1): void {
    this.recordUs(Math.round(valueMs * 1000), times);
  }

  /** Counts `us` (whole microseconds) `times` times. */
  recordUs(us: number, times = 1): void {
    this.counts.set(us, (this.counts.get(us) ?? 0) + times);
    this.total += times;
  }

  build(): Histogram {
    return [...this.counts].sort((a, b) => a[0] - b[0]);
  }
}

export function mergeHistograms(a: Histogram, b: Histogram): Histogram {
  const counts = new Map(a);
  for (const [us, n] of b) counts.set(us, (counts.get(us) ?? 0) + n);
  return [...counts].sort((x, y) => x[0] - y[0]);
}

/** The value (ms, to the µs) at or below which `p` percent of the recorded values lie; 0 when empty. */
export function percentile(h: Histogram, p: number): number {
  const total = h.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const [us, n] of h) {
    seen += n;
    if (seen >= rank) return us / 1000;
  }
  const last = h.at(-1);
  if (!last) throw new Error('percentile of an empty histogram');
  return last[0] / 1000;
}
