/**
 * Lines of the throughput comparison (a target, a body, a number of connections) and how they
 * are measured: every line `rounds` times over in turn, so that a burst of other work on the
 * machine falls on all lines alike rather than on whichever line was running.
 */
import type { MeteredProc } from './cpu.js';
import { combine, failures, runLoad, type LoadResult } from './load.js';
import { count, mibps, ms, usPer } from './table.js';
import type { Target } from './topology.js';

export interface Body {
  label: string;
  route: string;
}

export const BODIES: Body[] = [
  { label: '100 B', route: 'small' },
  { label: '1 MiB', route: '1m' },
];

export interface Line {
  target: Target;
  body: Body;
  connections: number;
  result: LoadResult;
}

export interface Planned {
  target: Target;
  body: Body;
  connections: number;
  runs: LoadResult[];
}

export interface MeasureOptions {
  durationS: number;
  warmupS: number;
  rounds: number;
  threads: number;
  /** The origin: its CPU is counted on every line. */
  origin: MeteredProc;
}

/** Failures as text: "0", or "12× 502, 3 timeouts". */
export function failureText(r: LoadResult): string {
  const n = failures(r);
  if (n === 0) return '0';
  const parts: string[] = [];
  const byStatus = Object.entries(r.statuses).filter(([code]) => !code.startsWith('2'));
  for (const [code, c] of byStatus) parts.push(`${c}× ${code}`);
  if (byStatus.length === 0 && r.non2xx) parts.push(`${r.non2xx}× status ≥ 400`);
  if (r.timeouts) parts.push(`${r.timeouts} timeouts`);
  const otherErrors = r.errors - r.timeouts;
  if (otherErrors) parts.push(`${otherErrors} errors`);
  return parts.join(', ');
}

/** Every planned line, `rounds` times over; each run lasts durationS / rounds. */
export async function measure(plan: Planned[], opts: MeasureOptions): Promise<void> {
  const total = plan.length * opts.rounds;
  let done = 0;
  for (let round = 0; round < opts.rounds; round++) {
    for (const line of plan) {
      const { target, body, connections } = line;
      const result = await runLoad({
        url: `${target.base}/${body.route}`,
        connections,
        threads: opts.threads,
        durationS: opts.durationS / opts.rounds,
        warmupS: opts.warmupS,
        timeoutS: 10,
      }, [opts.origin, ...target.proxies]);
      const proxyCpu = target.proxies.reduce((s, p) => s + (result.cpuS[p.name] ?? 0), 0);
      process.stderr.write(`bench: [${++done}/${total}] ${target.label}, ${body.label}, ${connections} conn: ` +
        `${count(result.reqPerSec)} req/s, ${mibps(result.bytesPerSec)} MiB/s, p50 ${ms(result.p50Ms)} ms, ` +
        `p99 ${ms(result.p99Ms)} ms, failures ${failureText(result)}; CPU µs/request: ` +
        `${result.generator} ${usPer(result.generatorCpuS, result.requests)}, origin ${usPer(result.cpuS[opts.origin.name] ?? NaN, result.requests)}` +
        (target.proxies.length ? `, proxies ${usPer(proxyCpu, result.requests)}` : '') + '\n');
      for (const w of target.west) {
        if (!w.child.running) throw new Error(`west ${w.role} died during ${target.label}, ${body.label}:\n${w.child.stderr.slice(-3000)}`);
      }
      line.runs.push(result);
    }
  }
}

/** The rounds of each planned line as one result. */
export function linesOf(plan: Planned[]): Line[] {
  return plan.map(({ target, body, connections, runs }) => ({ target, body, connections, result: combine(runs) }));
}
