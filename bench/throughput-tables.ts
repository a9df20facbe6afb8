/** The tables of the throughput section: load, latency at one connection, CPU per request, targets. */
import type { LoadResult } from './load.js';
import { failureText, type Line } from './lines.js';
import { count, markdownTable, mibps, ms, percent, ratio, usPer } from './table.js';
import { LABEL } from './topology.js';

function find(lines: Line[], label: string, route: string): LoadResult | undefined {
  return lines.find((l) => l.target.label === label && l.body.route === route)?.result;
}

/** Share of one core the load generator used over the run (wrk's threads may use more than one). */
function generatorLoad(r: LoadResult): number {
  return r.generatorCpuS / r.durationS;
}

/** 50-connection lines: rates, latency, ratio to direct with the same body, generator CPU. */
export function loadTable(lines: Line[]): string {
  const rows = lines.map(({ target, body, result }) => [
    target.label,
    body.label,
    count(result.reqPerSec),
    mibps(result.bytesPerSec),
    ms(result.p50Ms),
    ms(result.p99Ms),
    ratio(result.reqPerSec / (find(lines, LABEL.direct, body.route)?.reqPerSec ?? NaN)),
    percent(generatorLoad(result)),
    failureText(result),
  ]);
  const generator = lines[0]?.result.generator ?? 'wrk';
  return markdownTable(['line', 'body', 'req/s', 'MiB/s', 'p50 ms', 'p99 ms', '× direct', `${generator} CPU`, 'failures'], rows);
}

/** One-connection lines: p50 and what each hop adds to direct's. */
export function latencyTable(lines: Line[]): string {
  const direct = find(lines, LABEL.direct, 'small');
  if (!direct) throw new Error('latency table: no direct (no-proxy) line to compare with');
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

/**
 * CPU per request of every process of each line (µs of user + system time over the measured
 * runs, divided by the requests completed), and how many cores all of them kept busy.
 */
export function cpuTable(lines: Line[]): string {
  const rows = lines.map(({ target, body, connections, result }) => {
    const n = result.requests;
    const originS = result.cpuS.origin ?? NaN;
    const proxyS = target.proxies.reduce((s, p) => s + (result.cpuS[p.name] ?? 0), 0);
    const each = target.proxies.length > 1
      ? target.proxies.map((p) => `${p.name} ${usPer(result.cpuS[p.name] ?? NaN, n)}`).join(' · ')
      : '';
    const all = result.generatorCpuS + originS + proxyS;
    return [
      target.label,
      body.label,
      String(connections),
      count(n),
      usPer(result.generatorCpuS, n),
      usPer(originS, n),
      target.proxies.length ? usPer(proxyS, n) : '–',
      each,
      usPer(all, n),
      (all / result.durationS).toFixed(2),
    ];
  });
  const generator = lines[0]?.result.generator ?? 'wrk';
  return markdownTable(
    ['line', 'body', 'conn', 'requests', generator, 'origin', 'proxy', 'proxy, each process', 'all', 'cores busy'],
    rows,
    ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left', 'right', 'right'],
  );
}

/** The targets of issue 15 that this section measures, each with its figure from this run. */
export function targetsTable(many: Line[], one: Line[], oneStream?: number): string {
  const rows: string[][] = [];
  const check = (what: string, goal: string, value: number | undefined, ok: (v: number) => boolean, fmt: (v: number) => string): void => {
    const known = value !== undefined && Number.isFinite(value);
    rows.push([what, goal, known ? fmt(value) : '–', known ? (ok(value) ? 'yes' : 'no') : '–']);
  };
  const per = (a: LoadResult | undefined, b: LoadResult | undefined, rate: (r: LoadResult) => number): number | undefined =>
    a && b ? rate(a) / rate(b) : undefined;
  const reqs = (r: LoadResult): number => r.reqPerSec;
  const bytes = (r: LoadResult): number => r.bytesPerSec;
  const w1 = find(many, LABEL.oneHop, 'small');
  const w1big = find(many, LABEL.oneHop, '1m');
  const hp = find(many, LABEL.httpProxy, 'small');
  const hpBig = find(many, LABEL.httpProxy, '1m');
  check('one hop, 100 B: req/s ÷ direct', '≥ 0.30', per(w1, find(many, LABEL.direct, 'small'), reqs), (v) => v >= 0.3, ratio);
  check('one hop, 100 B: req/s ÷ node-http-proxy', '≥ 1.5', per(w1, hp, reqs), (v) => v >= 1.5, ratio);
  check('one hop, 1 MiB: MiB/s ÷ direct', '≥ 0.35', per(w1big, find(many, LABEL.direct, '1m'), bytes), (v) => v >= 0.35, ratio);
  check('one hop, 1 MiB: MiB/s ÷ node-http-proxy', '> 1', per(w1big, hpBig, bytes), (v) => v > 1, ratio);
  check('one hop, one big download on one connection: MiB/s ÷ direct', '≥ 0.5', oneStream, (v) => v >= 0.5, ratio);
  check('three nodes ÷ one hop, 100 B req/s', '≥ 0.75', per(find(many, LABEL.threeHops, 'small'), w1, reqs), (v) => v >= 0.75, ratio);
  check('three nodes routed by name ÷ one hop, 100 B req/s', '≥ 0.80', per(find(many, LABEL.mesh, 'small'), w1, reqs), (v) => v >= 0.8, ratio);
  const dl = find(one, LABEL.direct, 'small');
  const added = (r: LoadResult | undefined, hops: number): number | undefined => (r && dl ? (r.p50Ms - dl.p50Ms) / hops : undefined);
  const msText = (v: number): string => `${v.toFixed(3)} ms`;
  check('p50 added per hop, 1 connection (one hop)', '≤ 0.150 ms', added(find(one, LABEL.oneHop, 'small'), 1), (v) => v <= 0.15, msText);
  check('p50 added per hop, 1 connection (three nodes: two tunnels)', '≤ 0.150 ms', added(find(one, LABEL.threeHops, 'small'), 2), (v) => v <= 0.15, msText);
  const w1line = many.find((l) => l.target.label === LABEL.oneHop && l.body.route === 'small');
  const w1cpu = w1line && w1line.target.proxies.reduce((s, p) => s + (w1line.result.cpuS[p.name] ?? 0), 0) / w1line.result.requests;
  check('one hop, 100 B: CPU per request of both west processes (budget, item 5)', '≤ 65 µs', w1cpu && w1cpu * 1e6, (v) => v <= 65, (v) => `${Math.round(v)} µs`);
  return markdownTable(['target (issue 15)', 'goal', 'measured', 'met'], rows, ['left', 'left', 'right', 'left']);
}
