/**
 * A latency histogram with logarithmic buckets (1% wide, from 1 µs up), small enough to pass
 * between processes as JSON and to merge across runs, exact enough for p50/p99.
 */

const STEP = Math.log(1.01);
const MIN_MS = 0.001;

/** Sparse: [bucket index, count] pairs, ascending by index. */
export type Histogram = [number, number][];

function bucketOf(valueMs: number): number {
  return valueMs <= MIN_MS ? 0 : Math.floor(Math.log(valueMs / MIN_MS) / STEP);
}

/** The middle of a bucket, in ms. */
function valueOf(bucket: number): number {
  return MIN_MS * Math.exp((bucket + 0.5) * STEP);
}

/** Counts values (ms) into buckets. */
export class HistogramBuilder {
  private readonly counts = new Map<number, number>();
  total = 0;

  record(valueMs: number): void {
    const b = bucketOf(valueMs);
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
    this.total++;
  }

  build(): Histogram {
    return [...this.counts].sort((a, b) => a[0] - b[0]);
  }
}

export function mergeHistograms(a: Histogram, b: Histogram): Histogram {
  const counts = new Map(a);
  for (const [bucket, n] of b) counts.set(bucket, (counts.get(bucket) ?? 0) + n);
  return [...counts].sort((x, y) => x[0] - y[0]);
}

/** The value (ms, ±0.5%) below which `p` percent of the recorded values lie; 0 when empty. */
export function percentile(h: Histogram, p: number): number {
  const total = h.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const [bucket, n] of h) {
    seen += n;
    if (seen >= rank) return valueOf(bucket);
  }
  const last = h.at(-1);
  if (!last) throw new Error('percentile of an empty histogram');
  return valueOf(last[0]);
}
