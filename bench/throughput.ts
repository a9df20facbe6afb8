/**
 * The default benchmark: requests/s, MiB/s and latency of the origin directly, of
 * node-http-proxy, of west one hop and of west three nodes, side by side in one run.
 */
import { combine, failures, runLoad, type LoadResult } from './load.js';
import { contextLines, incidentsText, type RunContext } from './report.js';
import { count, markdownTable, mibps, ms, ratio } from './table.js';
import {
  directTarget, LABEL, startHttpProxy, startOneHop, startOrigin, startThreeHops, westIncidents,
  type Target,
} from './topology.js';
import { withProcesses } from './procs.js';

export interface ThroughputOptions {
  dir: string;
  durationS: number;
  warmupS: number;
  connections: number;
  /** Passes over all lines; each line runs durationS / rounds per pass. */
  rounds: number;
}

interface Body {
  label: string;
  route: string;
}

const BODIES: Body[] = [
  { label: '100 B', route: 'small' },
  { label: '1 MiB', route: '1m' },
];

interface Line {
  target: Target;
  body: Body;
  result: LoadResult;
}

function failureText(r: LoadResult): string {
  const n = failures(r);
  if (n === 0) return '0';
  const parts: string[] = [];
  for (const [code, c] of Object.entries(r.statuses)) if (!code.startsWith('2')) parts.push(`${c}× ${code}`);
  if (r.timeouts) parts.push(`${r.timeouts} timeouts`);
  const otherErrors = r.errors - r.timeouts;
  if (otherErrors) parts.push(`${otherErrors} errors`);
  return parts.join(', ');
}

interface Planned {
  target: Target;
  body: Body;
  connections: number;
  runs: LoadResult[];
}

/**
 * Measures every planned line, `rounds` times over in turn (each run 1/rounds of the
 * duration), so that a burst of other work on the machine falls on all lines alike rather than
 * on whichever line was running. Every run starts with a warm-up whose responses are not
 * counted (see load-worker.ts).
 */
async function measure(plan: Planned[], opts: ThroughputOptions): Promise<void> {
  const total = plan.length * opts.rounds;
  let done = 0;
  for (let round = 0; round < opts.rounds; round++) {
    for (const line of plan) {
      const { target, body, connections } = line;
      const result = await runLoad({
        url: `${target.base}/${body.route}`,
        connections,
        durationS: opts.durationS / opts.rounds,
        warmupS: opts.warmupS,
        timeoutS: 10,
      });
      process.stderr.write(`bench: [${++done}/${total}] ${target.label}, ${body.label}, ${connections} conn: ` +
        `${count(result.reqPerSec)} req/s, ${mibps(result.bytesPerSec)} MiB/s, p50 ${ms(result.p50Ms)} ms, ` +
        `p99 ${ms(result.p99Ms)} ms, failures ${failureText(result)}\n`);
      for (const w of target.west) {
        if (!w.child.running) throw new Error(`west ${w.role} died during ${target.label}, ${body.label}:\n${w.child.stderr.slice(-3000)}`);
      }
      line.runs.push(result);
    }
  }
}

function linesOf(plan: Planned[]): Line[] {
  return plan.map(({ target, body, runs }) => ({ target, body, result: combine(runs) }));
}

function loadTable(lines: Line[]): string {
  const direct = new Map(lines.filter((l) => l.target.label === LABEL.direct).map((l) => [l.body.route, l.result]));
  const rows = lines.map(({ target, body, result }) => [
    target.label,
    body.label,
    count(result.reqPerSec),
    mibps(result.bytesPerSec),
    ms(result.p50Ms),
    ms(result.p99Ms),
    ratio(result.reqPerSec / (direct.get(body.route)?.reqPerSec ?? NaN)),
    failureText(result),
  ]);
  return markdownTable(['line', 'body', 'req/s', 'MiB/s', 'p50 ms', 'p99 ms', '× direct', 'failures'], rows);
}

function latencyTable(lines: Line[]): string {
  const directLine = lines.find((l) => l.target.label === LABEL.direct);
  if (!directLine) throw new Error('latency table: no direct (no-proxy) line to compare with');
  const direct = directLine.result;
  const rows = lines.map(({ target, result }) => {
    const added = result.p50Ms - direct.p50Ms;
    const hops = target.hops;
    return [
      target.label,
      count(result.reqPerSec),
      ms(result.p50Ms),
      ms(result.p99Ms),
      hops === 0 ? '–' : added.toFixed(3),
      String(hops),
      hops === 0 ? '–' : (added / hops).toFixed(3),
      failureText(result),
    ];
  });
  return markdownTable(['line', 'req/s', 'p50 ms', 'p99 ms', 'p50 added ms', 'hops', 'added per hop ms', 'failures'], rows);
}

function targetsTable(many: Line[], one: Line[]): string {
  const find = (lines: Line[], label: string, route: string): LoadResult | undefined =>
    lines.find((l) => l.target.label === label && l.body.route === route)?.result;
  const hop1 = LABEL.oneHop;
  const hop3 = LABEL.threeHops;
  const rows: string[][] = [];
  const check = (what: string, goal: string, value: number | undefined, ok: (v: number) => boolean, fmt: (v: number) => string): void => {
    rows.push([what, goal, value === undefined ? '–' : fmt(value), value === undefined ? '–' : ok(value) ? 'yes' : 'no']);
  };
  const d1 = find(many, LABEL.direct, 'small');
  const w1 = find(many, hop1, 'small');
  const w3 = find(many, hop3, 'small');
  const d2 = find(many, LABEL.direct, '1m');
  const w2 = find(many, hop1, '1m');
  check('one hop, 100 B: req/s ÷ direct', '≥ 0.30', w1 && d1 && w1.reqPerSec / d1.reqPerSec, (v) => v >= 0.3, ratio);
  check('one hop, 1 MiB: MiB/s ÷ direct', '≥ 0.35', w2 && d2 && w2.bytesPerSec / d2.bytesPerSec, (v) => v >= 0.35, ratio);
  const dl = find(one, LABEL.direct, 'small');
  const l1 = find(one, hop1, 'small');
  const l3 = find(one, hop3, 'small');
  check('p50 added per hop, 1 connection (one hop)', '≤ 0.150 ms', l1 && dl && l1.p50Ms - dl.p50Ms, (v) => v <= 0.15, (v) => `${v.toFixed(3)} ms`);
  check('p50 added per hop, 1 connection (three nodes: two tunnels)', '≤ 0.150 ms', l3 && dl && (l3.p50Ms - dl.p50Ms) / 2, (v) => v <= 0.15, (v) => `${v.toFixed(3)} ms`);
  check('three nodes ÷ one hop, 100 B req/s', '≥ 0.50', w3 && w1 && w3.reqPerSec / w1.reqPerSec, (v) => v >= 0.5, ratio);
  return markdownTable(['target (issue 7)', 'goal', 'measured', 'met'], rows, ['left', 'left', 'right', 'left']);
}

/** Runs the whole comparison and returns its section of doc/benchmarks.md. */
export async function runThroughput(opts: ThroughputOptions, ctx: RunContext): Promise<string> {
  return withProcesses(() => compare(opts, ctx));
}

async function compare(opts: ThroughputOptions, ctx: RunContext): Promise<string> {
  const origin = await startOrigin();
  const targets: Target[] = [
    directTarget(origin.port),
    await startHttpProxy(origin.port),
    await startOneHop(origin.port, { dir: opts.dir }),
    await startThreeHops(origin.port, { dir: opts.dir }),
  ];
  const plan = (body: Body, connections: number): Planned[] => targets.map((target) => ({ target, body, connections, runs: [] }));
  const manyPlan = BODIES.flatMap((body) => plan(body, opts.connections));
  const onePlan = BODIES.slice(0, 1).flatMap((body) => plan(body, 1));
  await measure([...manyPlan, ...onePlan], opts);
  const many = linesOf(manyPlan);
  const one = linesOf(onePlan);
  const incidents = westIncidents(targets.flatMap((t) => t.west));
  const errorLines = [...many, ...one].flatMap(({ target, body, result }) =>
    Object.entries(result.errorMessages).map(([msg, n]) => `${target.label}, ${body.label}, ${result.spec.connections} conn: ${n}× ${msg}`));

  return [
    '## Throughput and latency',
    '',
    contextLines(ctx),
    '',
    `autocannon, ${opts.connections} connections, ${opts.durationS} s per line` +
    (opts.rounds > 1 ? ` (${opts.rounds} passes over all lines of ${opts.durationS / opts.rounds} s each)` : '') +
    `, each run after a ${opts.warmupS} s warm-up on the same connections; ` +
    'origin, proxies and load generator each in their own process. "× direct" is requests/s over the direct line ' +
    'with the same body (for 1 MiB bodies that is also the MiB/s ratio).',
    '',
    loadTable(many),
    '',
    `One connection, 100 B body, ${opts.durationS} s per line (latency; percentiles from every response time, ±0.5%):`,
    '',
    latencyTable(one),
    '',
    'Against the targets of issue 7 (ratios from this run):',
    '',
    targetsTable(many, one),
    '',
    ...(errorLines.length ? [`Errors the load generator saw (warm-ups included):\n\n\`\`\`\n${errorLines.join('\n')}\n\`\`\``, ''] : []),
    incidentsText(incidents),
  ].join('\n');
}
