/**
 * The default benchmark: requests/s, MiB/s, latency and CPU per request of the origin directly,
 * of nginx, of node-http-proxy, of west one hop and of west three nodes, side by side in one run.
 */
import type { MeteredProc } from './cpu.js';
import { BODIES, linesOf, measure, type Body, type Planned } from './lines.js';
import { loadGenerator } from './load.js';
import { nginxLogText, startNginx } from './nginx.js';
import { withProcesses } from './procs.js';
import { haveCurl, measureSingleStream, oneHopStreamRatio, singleStreamTable, type StreamLine } from './single-stream.js';
import { contextLines, incidentsText, type RunContext } from './report.js';
import { cpuTable, latencyTable, loadTable, targetsTable } from './throughput-tables.js';
import {
  directTarget, startHttpProxy, startMeshThree, startOneHop, startOrigin, startThreeHops, westIncidents,
  type Target,
} from './topology.js';

export interface ThroughputOptions {
  dir: string;
  durationS: number;
  warmupS: number;
  connections: number;
  /** Threads of wrk (at most one per connection). */
  threads: number;
  /** Passes over all lines; each line runs durationS / rounds per pass. */
  rounds: number;
  /** Extra `west` keys for every west node. */
  tuning?: Record<string, unknown>;
  /** Size of the one-connection download of the single-stream table. */
  streamBytes: number;
}

/** Runs the whole comparison and returns its section of doc/benchmarks.md. */
export async function runThroughput(opts: ThroughputOptions, ctx: RunContext): Promise<string> {
  return withProcesses(() => compare(opts, ctx));
}

function generatorText(opts: ThroughputOptions): string {
  const { name } = loadGenerator();
  return name === 'wrk'
    ? `wrk (${Math.min(opts.threads, opts.connections)} threads)`
    : '**autocannon (one Node process): wrk was not installed, so the fast lines show the generator\'s ceiling**';
}

async function compare(opts: ThroughputOptions, ctx: RunContext): Promise<string> {
  const started = await startOrigin();
  const origin: MeteredProc = { name: 'origin', pid: started.child.pid };
  const nginx = await startNginx(started.port, opts.dir);
  const west = { dir: opts.dir, ...(opts.tuning ? { tuning: opts.tuning } : {}) };
  const targets: Target[] = [
    directTarget(started.port),
    ...(nginx ? [nginx] : []),
    await startHttpProxy(started.port),
    await startOneHop(started.port, west),
    await startThreeHops(started.port, west),
    await startMeshThree(started.port, west),
  ];
  const plan = (body: Body, connections: number): Planned[] => targets.map((target) => ({ target, body, connections, runs: [] }));
  const manyPlan = BODIES.flatMap((body) => plan(body, opts.connections));
  const onePlan = BODIES.slice(0, 1).flatMap((body) => plan(body, 1));
  await measure([...manyPlan, ...onePlan], { ...opts, origin });
  const many = linesOf(manyPlan);
  const one = linesOf(onePlan);
  const curl = await haveCurl();
  if (!curl) process.stderr.write('bench: warning: curl is not installed; the single-stream table is left out\n');
  const streams: StreamLine[] = curl ? await measureSingleStream(targets, origin, opts.streamBytes, opts.rounds, 300) : [];
  const incidents = westIncidents(targets.flatMap((t) => t.west));
  const errorLines = [...many, ...one].flatMap(({ target, body, connections, result }) =>
    Object.entries(result.errorMessages).map(([msg, n]) => `${target.label}, ${body.label}, ${connections} conn: ${n}× ${msg}`));
  const perLine = `${opts.durationS} s per line` +
    (opts.rounds > 1 ? ` (${opts.rounds} passes over all lines of ${opts.durationS / opts.rounds} s each)` : '');

  return [
    '## Throughput, latency and CPU per request',
    '',
    contextLines(ctx),
    '',
    `${generatorText(opts)}, ${opts.connections} connections, ${perLine}, each run after a ${opts.warmupS} s warm-up run ` +
    'that is not counted; origin, proxies and load generator each in their own process. "× direct" is requests/s over the ' +
    'direct line with the same body (for 1 MiB bodies that is also the MiB/s ratio). ' +
    `"${loadGenerator().name} CPU" is the load generator's own CPU time over the run, in shares of one core.` +
    (opts.tuning ? ` Every west node ran with \`${JSON.stringify(opts.tuning)}\` added to its \`west\` object.` : ''),
    '',
    loadTable(many),
    '',
    `One connection, 100 B body, ${perLine}; latency percentiles to the microsecond:`,
    '',
    latencyTable(one),
    '',
    'CPU per request, µs of user + system time of each process (all its threads; nginx with its worker) over the ' +
    'measured runs, divided by the requests completed. "proxy" is the sum of the proxy processes (both west ends for ' +
    'one hop); "all" adds the load generator and the origin; "cores busy" is all their CPU time over the wall time.',
    '',
    cpuTable([...many, ...one]),
    '',
    ...(streams.length ? [
      `One download of ${opts.streamBytes / 2 ** 20} MiB on one connection per line, with curl (to /dev/null), ${opts.rounds} ` +
      `pass${opts.rounds > 1 ? 'es' : ''} over all lines; the fastest pass of each line is shown (other work on the machine only ` +
      'ever slows a pass). CPU is user + system time of each process over that download, per GiB moved.',
      '',
      singleStreamTable(streams),
      '',
    ] : []),
    'Against the targets of issue 15 (ratios from this run):',
    '',
    targetsTable(many, one, oneHopStreamRatio(streams)),
    '',
    ...(errorLines.length ? [`Errors the load generator saw:\n\n\`\`\`\n${errorLines.join('\n')}\n\`\`\``, ''] : []),
    incidentsText(incidents),
    ...(nginx ? ['', await nginxLogText(opts.dir)] : []),
  ].join('\n');
}
