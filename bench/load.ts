/**
 * One load run (autocannon, in a child process of its own: load-worker.ts) against one URL,
 * what it counts, and the rates and percentiles derived from those counts. Counts from
 * several runs of the same line add up (`combine`), so a line can be measured in rounds.
 */
import { mergeHistograms, percentile, type Histogram } from './histogram.js';
import { benchScript, spawnNode } from './procs.js';

export interface LoadSpec {
  url: string;
  connections: number;
  durationS: number;
  /** A run of this many seconds first, not measured (JIT, connection pools). */
  warmupS: number;
  /** Seconds autocannon waits for one response before counting a timeout. */
  timeoutS: number;
}

/** What the load worker counts in one run. */
export interface LoadCounts {
  durationS: number;
  /** 2xx responses. */
  requests: number;
  /** Bytes (head and body) of 2xx responses. */
  bytes: number;
  /** Response times of 2xx responses, ms. */
  latency: Histogram;
  /** Socket errors and timeouts (autocannon counts timeouts as errors too). */
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Responses by status code. */
  statuses: Record<string, number>;
  /** Error messages seen, with counts. */
  errorMessages: Record<string, number>;
}

export interface LoadResult extends LoadCounts {
  spec: LoadSpec;
  reqPerSec: number;
  bytesPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

function resultOf(spec: LoadSpec, c: LoadCounts): LoadResult {
  return {
    ...c,
    spec,
    reqPerSec: c.requests / c.durationS,
    bytesPerSec: c.bytes / c.durationS,
    p50Ms: percentile(c.latency, 50),
    p99Ms: percentile(c.latency, 99),
  };
}

function addCounts(into: Record<string, number>, from: Record<string, number>): Record<string, number> {
  const out = { ...into };
  for (const [k, n] of Object.entries(from)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** Several runs of the same line as one: counts and durations summed, histograms merged. */
export function combine(results: LoadResult[]): LoadResult {
  const [first, ...rest] = results;
  if (!first) throw new Error('combine: no results');
  let c: LoadCounts = first;
  for (const r of rest) {
    c = {
      durationS: c.durationS + r.durationS,
      requests: c.requests + r.requests,
      bytes: c.bytes + r.bytes,
      latency: mergeHistograms(c.latency, r.latency),
      errors: c.errors + r.errors,
      timeouts: c.timeouts + r.timeouts,
      non2xx: c.non2xx + r.non2xx,
      statuses: addCounts(c.statuses, r.statuses),
      errorMessages: addCounts(c.errorMessages, r.errorMessages),
    };
  }
  return resultOf({ ...first.spec, durationS: c.durationS }, c);
}

/** Runs autocannon in its own process and returns what it measured. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const worker = spawnNode(benchScript('load-worker'), [JSON.stringify(spec)], { name: `load ${spec.url}` });
  try {
    const deadline = (spec.warmupS + spec.durationS + spec.timeoutS) * 1000 + 30_000;
    return resultOf(spec, await worker.readyLine<LoadCounts>(deadline));
  } finally {
    await worker.stop();
  }
}

/** Failures of any kind in a run: socket errors, timeouts and non-2xx answers. */
export function failures(r: LoadResult): number {
  return r.errors + r.non2xx;
}
