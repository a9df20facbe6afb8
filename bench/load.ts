/**
 * One load run against one URL, what it counts, and the rates and percentiles derived from
 * those counts. The generator is wrk when it is installed (bench/wrk.ts), else autocannon in a
 * Node process of its own (load-worker.ts), with a loud warning: a single Node process is
 * slower than what it measures on the fast lines. Around the measured run the CPU time of the
 * processes under test is read, for CPU per request. Counts from several runs of the same
 * line add up (`combine`), so a line can be measured in rounds.
 */
import { cpuSnapshot, cpuSpent, type MeteredProc } from './cpu.js';
import { mergeHistograms, percentile } from './histogram.js';
import { benchScript, spawnNode } from './procs.js';
import { DEBIAN_PACKAGE, findProgram, warnLoudly } from './programs.js';
import { runWrk } from './wrk.js';
import type { GeneratorName, LoadCounts, LoadSpec } from './load-spec.js';

export type { GeneratorName, LoadCounts, LoadSpec } from './load-spec.js';

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

/** Several runs of the same line as one: counts, CPU and durations summed, histograms merged. */
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
      generator: c.generator,
      generatorCpuS: c.generatorCpuS + r.generatorCpuS,
      cpuS: addCounts(c.cpuS, r.cpuS),
    };
  }
  return resultOf({ ...first.spec, durationS: c.durationS }, c);
}

/** autocannon in its own process (load-worker.ts). */
async function runAutocannon(spec: LoadSpec): Promise<LoadCounts> {
  const worker = spawnNode(benchScript('load-worker'), [JSON.stringify(spec)], { name: `load ${spec.url}` });
  try {
    const deadline = (spec.durationS + spec.timeoutS) * 1000 + 30_000;
    return await worker.readyLine<LoadCounts>(deadline);
  } finally {
    await worker.stop();
  }
}

type Generator = (spec: LoadSpec) => Promise<LoadCounts>;
let chosen: { name: GeneratorName; run: Generator } | undefined;

/** Takes autocannon even when wrk is installed (`--autocannon`: to compare the two). */
export function preferAutocannon(): void {
  chosen = { name: 'autocannon', run: runAutocannon };
}

/** wrk when installed; otherwise autocannon, said loudly once. */
export function loadGenerator(): { name: GeneratorName; run: Generator } {
  if (chosen) return chosen;
  const wrk = findProgram('wrk');
  if (wrk) {
    chosen = { name: 'wrk', run: (spec) => runWrk(wrk, spec) };
  } else {
    warnLoudly([
      'wrk is not installed: falling back to autocannon (one Node process).',
      'autocannon is slower than the origin and the fast proxies it drives, so the',
      'direct and nginx lines will show autocannon\'s ceiling, not theirs, and every',
      'ratio to direct will read too high. Install wrk and run again:',
      `    apt-get install ${DEBIAN_PACKAGE.wrk}`,
    ]);
    chosen = { name: 'autocannon', run: runAutocannon };
  }
  return chosen;
}

/**
 * Warms the line up (a run of `warmupS`, not counted), then measures it for `durationS`,
 * reading the CPU time of each process in `metered` just before and just after.
 */
export async function runLoad(spec: LoadSpec, metered: MeteredProc[] = []): Promise<LoadResult> {
  const generator = loadGenerator();
  if (spec.warmupS > 0) await generator.run({ ...spec, durationS: spec.warmupS, warmupS: 0 });
  const before = cpuSnapshot(metered);
  const counts = await generator.run({ ...spec, warmupS: 0 });
  const cpuS = Object.fromEntries(cpuSpent(before, cpuSnapshot(metered)));
  return resultOf(spec, { ...counts, cpuS });
}

/** Failures of any kind in a run: socket errors, timeouts and non-2xx answers. */
export function failures(r: LoadResult): number {
  return r.errors + r.non2xx;
}
