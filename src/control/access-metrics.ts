/**
 * The per-request series of /metrics (requests by status, the duration histogram, body
 * bytes), kept as plain counters per listener and mapping and turned into Prometheus samples
 * only when scraped. prom-client's own Counter and Histogram hash and validate the labels on
 * every increment: 7–10 µs per request on the listener's hot path, against well under 1 µs here
 * (doc/benchmarks.md). The objects below are registered as prom-client metrics (it asks each
 * for `get()` at scrape time), so the exposition format is prom-client's.
 */
import type { Registry } from 'prom-client';
import type { AccessRecord } from '../events.js';

type Labels = Record<string, string | number>;

interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** What prom-client's Registry needs of a metric. */
interface CollectedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }>;
}

/** One listener and mapping. */
interface Series {
  listener: string;
  mapping: string;
  statuses: Map<number, number>;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  buckets: number[];
  sum: number;
  count: number;
  bytesIn: number;
  bytesOut: number;
  /** Named by the config: its byte counters show from the start, even at 0. */
  known: boolean;
}

export class AccessMetrics {
  private readonly series = new Map<string, Series>();
  private readonly bounds: readonly number[];

  constructor(registry: Registry, bounds: readonly number[]) {
    this.bounds = bounds;
    const metric = (name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): CollectedMetric => ({
      name, help, type, aggregator: 'sum',
      get: async () => ({ name, help, type, aggregator: 'sum', values: values() }),
    });
    const all = [
      metric('west_requests_total', 'Requests finished on a proxy listener, by mapping ("-": not routed to one) and status (499: client went away).',
        'counter', () => this.requestSamples()),
      metric('west_request_duration_seconds',
        'Time from a request\'s arrival on a listener until its response ended (for upgrades: until the origin answered the upgrade).',
        'histogram', () => this.durationSamples()),
      metric('west_request_bytes_total', 'Body bytes through proxy listeners: direction="in" from clients, "out" to clients.',
        'counter', () => this.byteSamples()),
    ];
    // prom-client takes any object with a name and get(); its types only know its own classes.
    // test/unit/access-metrics.test.ts reads the exposition through prom-client's own
    // Registry: it is the contract test that fails if an upgrade stops honouring this.
    for (const m of all) registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  record(r: AccessRecord): void {
    const s = this.of(r.listener, r.mapping);
    s.statuses.set(r.status, (s.statuses.get(r.status) ?? 0) + 1);
    const seconds = r.durationMs / 1000;
    let i = 0;
    for (const bound of this.bounds) {
      if (seconds <= bound) break;
      i++;
    }
    s.buckets[i] = (s.buckets[i] ?? 0) + 1;
    s.sum += seconds;
    s.count++;
    s.bytesIn += r.bytesIn;
    s.bytesOut += r.bytesOut;
  }

  /** A series the config names: it reads 0 from the first scrape, before any request. */
  known(listener: string, mapping: string): void {
    this.of(listener, mapping).known = true;
  }

  private of(listener: string, mapping: string): Series {
    const key = `${listener}\u0000${mapping}`;
    let s = this.series.get(key);
    if (!s) {
      s = {
        listener, mapping, statuses: new Map(), buckets: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0, bytesIn: 0, bytesOut: 0, known: false,
      };
      this.series.set(key, s);
    }
    return s;
  }

  private requestSamples(): Sample[] {
    const out: Sample[] = [];
    for (const s of this.series.values()) {
      for (const [status, n] of s.statuses) out.push({ labels: { listener: s.listener, mapping: s.mapping, status: String(status) }, value: n });
    }
    return out;
  }

  private durationSamples(): Sample[] {
    const name = 'west_request_duration_seconds';
    const out: Sample[] = [];
    for (const s of this.series.values()) {
      const where = { listener: s.listener, mapping: s.mapping };
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += s.buckets[i] ?? 0;
        out.push({ metricName: `${name}_bucket`, labels: { le: this.bounds[i] ?? '+Inf', ...where }, value: cumulative });
      }
      out.push({ metricName: `${name}_sum`, labels: where, value: s.sum });
      out.push({ metricName: `${name}_count`, labels: where, value: s.count });
    }
    return out;
  }

  private byteSamples(): Sample[] {
    const out: Sample[] = [];
    for (const s of this.series.values()) {
      if (s.known || s.bytesIn > 0) out.push({ labels: { listener: s.listener, mapping: s.mapping, direction: 'in' }, value: s.bytesIn });
      if (s.known || s.bytesOut > 0) out.push({ labels: { listener: s.listener, mapping: s.mapping, direction: 'out' }, value: s.bytesOut });
    }
    return out;
  }
}
