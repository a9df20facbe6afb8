/**
 * One wrk run (Debian's wrk 4) against one URL, in a process of its own, reported by
 * bench/wrk-report.lua as one JSON line: counts, every latency to the microsecond, and wrk's
 * own CPU time, which shows whether the generator was the bottleneck.
 */
import path from 'node:path';
import { CLOCK_TICKS } from './cpu.js';
import { HistogramBuilder } from './histogram.js';
import type { LoadCounts, LoadSpec } from './load-spec.js';
import { ROOT, spawnProgram } from './procs.js';

const REPORT_SCRIPT = path.join(ROOT, 'bench', 'wrk-report.lua');

/** What bench/wrk-report.lua prints. */
interface WrkReport {
  /** 1: tells the report from any other JSON wrk might print. */
  wrkReport?: number;
  durationUs: number;
  /** Responses completed, any status. */
  requests: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  cpuTicks: number;
  latencyUs: [number, number][];
}

/** wrk's arguments for one run (it takes whole seconds only). */
export function wrkArgs(spec: LoadSpec): string[] {
  const threads = Math.max(1, Math.min(spec.threads, spec.connections));
  return [
    `-t${threads}`, `-c${spec.connections}`, `-d${Math.max(1, Math.round(spec.durationS))}s`,
    '--timeout', `${Math.round(spec.timeoutS)}s`, '-s', REPORT_SCRIPT, spec.url,
  ];
}

/** Runs wrk (at `file`) once and returns what it counted. */
export async function runWrk(file: string, spec: LoadSpec): Promise<LoadCounts> {
  const child = spawnProgram(file, wrkArgs(spec), { name: `wrk ${spec.url}` });
  try {
    const r = await child.readyLine<WrkReport>((spec.durationS + spec.timeoutS) * 1000 + 30_000);
    if (r.wrkReport !== 1) throw new Error(`wrk: unexpected report line: ${JSON.stringify(r).slice(0, 200)}`);
    const latency = new HistogramBuilder();
    for (const [us, n] of r.latencyUs) latency.recordUs(us, n);
    const socketErrors = r.errors.connect + r.errors.read + r.errors.write;
    return {
      durationS: r.durationUs / 1e6,
      requests: r.requests - r.errors.status,
      bytes: r.bytes,
      latency: latency.build(),
      errors: socketErrors + r.errors.timeout,
      timeouts: r.errors.timeout,
      non2xx: r.errors.status,
      statuses: {},
      errorMessages: Object.fromEntries(Object.entries(r.errors)
        .filter(([kind, n]) => kind !== 'status' && n > 0)
        .map(([kind, n]) => [`wrk ${kind} errors`, n])),
      generator: 'wrk',
      generatorCpuS: r.cpuTicks >= 0 ? r.cpuTicks / CLOCK_TICKS : NaN,
      cpuS: {},
    };
  } finally {
    await child.stop();
  }
}
