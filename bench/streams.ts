/**
 * Many concurrent streams over one tunnel: 1,000 requests at once through west one hop (each on
 * its own client connection, all multiplexed on L's single tunnel to G). Twice: requests the
 * origin holds for a second (so all are in flight together), then 1 MiB bodies.
 */
import http from 'node:http';
import { get } from './net.js';
import { withProcesses } from './procs.js';
import { contextLines, incidentsText, type RunContext } from './report.js';
import { RssSampler } from './rss.js';
import { count, markdownTable, mib, mibps, ms, seconds } from './table.js';
import { directTarget, startOneHop, startOrigin, westIncidents, type Target, type WestProc } from './topology.js';

export interface StreamsOptions {
  dir: string;
  streams: number;
}

interface Outcome {
  status: number;
  bytes: number;
  expected: number;
  ms: number;
  error?: string;
  /** First bytes of a non-200 body (west's failure answers name the node and the reason). */
  body?: string;
}

function oneRequest(url: string): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      let bytes = 0;
      let body = '';
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (res.statusCode !== 200 && body.length < 300) body += c.toString('utf8');
      });
      const done = (error?: string): void => resolve({
        status: res.statusCode ?? 0,
        bytes,
        expected: Number(res.headers['content-length'] ?? -1),
        ms: performance.now() - started,
        ...(error ? { error } : {}),
        ...(body ? { body: body.trim() } : {}),
      });
      res.on('end', () => done(res.complete ? undefined : 'body cut off'));
      res.on('error', (err) => done(err.message));
    });
    req.setTimeout(120_000, () => req.destroy(new Error('no answer within 120 s')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, bytes: 0, expected: -1, ms: performance.now() - started, error: err.code ?? err.message }));
  });
}

/** Streams in flight on L's tunnel, read from its control port. */
async function streamsInFlight(l: WestProc): Promise<number> {
  const { text } = await get(`http://127.0.0.1:${l.controlPort}/state.json`);
  const state = JSON.parse(text) as { tunnels: { streams: number }[] };
  return state.tunnels.reduce((n, t) => n + t.streams, 0);
}

interface Wave {
  label: string;
  target: Target;
  outcomes: Outcome[];
  elapsedMs: number;
  peakStreams: number;
  peakRss: Map<string, number>;
}

async function wave(label: string, target: Target, route: string, n: number): Promise<Wave> {
  const l = target.west.find((w) => w.role.endsWith('-L'));
  const sampler = new RssSampler(target.west.map((w) => w.child.pid));
  let peakStreams = 0;
  let polling = l !== undefined;
  const poller = (async () => {
    while (polling && l) {
      try {
        peakStreams = Math.max(peakStreams, await streamsInFlight(l));
      } catch { /* the control port is busy too; the next poll will do */ }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const started = performance.now();
  let outcomes: Outcome[];
  try {
    outcomes = await Promise.all(Array.from({ length: n }, () => oneRequest(`${target.base}/${route}`)));
  } finally {
    polling = false;
    await poller;
    sampler.stop();
  }
  const elapsedMs = performance.now() - started;
  const peakRss = new Map(target.west.map((w) => [w.role, sampler.peak(w.child.pid)]));
  return { label, target, outcomes, elapsedMs, peakStreams, peakRss };
}

function ok(o: Outcome): boolean {
  return o.status === 200 && !o.error && (o.expected < 0 || o.bytes === o.expected);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

function failureSummary(outcomes: Outcome[]): string[] {
  const kinds = new Map<string, number>();
  for (const o of outcomes) {
    if (ok(o)) continue;
    const key = o.error ? `status ${o.status}: ${o.error}` : `status ${o.status}: ${o.body ?? `${o.bytes} of ${o.expected} bytes`}`;
    kinds.set(key, (kinds.get(key) ?? 0) + 1);
  }
  return [...kinds].sort((a, b) => b[1] - a[1]).map(([k, c]) => `${c}× ${k}`);
}

export async function runStreams(opts: StreamsOptions, ctx: RunContext): Promise<string> {
  return withProcesses(() => measure(opts, ctx));
}

async function measure(opts: StreamsOptions, ctx: RunContext): Promise<string> {
  const origin = await startOrigin();
  // 1,000 client connections come from one address (127.0.0.1): lift the listener's
  // per-address cap (256 by default, west.maxConnectionsPerAddress), as for a load balancer.
  const target = await startOneHop(origin.port, { dir: opts.dir, tuning: { maxConnectionsPerAddress: 0 } });
  const direct = directTarget(origin.port);
  const n = opts.streams;
  const waves: Wave[] = [];
  for (const [label, route] of [['100 B, origin answers after 1 s', 'delay/1000'], ['1 MiB each', '1m']] as const) {
    // The same wave straight to the origin first: what the client, TCP and the origin cost.
    for (const t of [direct, target]) {
      process.stderr.write(`bench: streams: ${n} concurrent requests, ${t.label}, ${label}\n`);
      const w = await wave(label, t, route, n);
      const good = w.outcomes.filter(ok).length;
      process.stderr.write(`bench: streams: ${good}/${n} ok in ${seconds(w.elapsedMs)} s` +
        `${t.west.length ? `, peak ${w.peakStreams} streams in flight` : ''}\n`);
      for (const line of failureSummary(w.outcomes).slice(0, 5)) process.stderr.write(`bench: streams:   ${line}\n`);
      waves.push(w);
    }
  }

  const rows = waves.map((w) => {
    const times = w.outcomes.map((o) => o.ms).sort((a, b) => a - b);
    const bytes = w.outcomes.reduce((s, o) => s + o.bytes, 0);
    const viaWest = w.target.west.length > 0;
    return [
      w.target.label,
      w.label,
      count(w.outcomes.filter(ok).length),
      count(w.outcomes.length - w.outcomes.filter(ok).length),
      seconds(w.elapsedMs),
      ms(percentile(times, 50)),
      ms(percentile(times, 99)),
      mibps(bytes / (w.elapsedMs / 1000)),
      viaWest ? count(w.peakStreams) : '–',
      viaWest ? w.target.west.map((p) => `${p.role.replace('hop1-', '')} ${mib(w.peakRss.get(p.role) ?? 0)}`).join(', ') : '–',
    ];
  });
  const failures = waves.flatMap((w) => failureSummary(w.outcomes).slice(0, 10).map((f) => `${w.target.label}, ${w.label}: ${f}`));

  return [
    `## ${count(n)} concurrent streams over one tunnel`,
    '',
    contextLines(ctx),
    '',
    `${count(n)} requests started at once against west one hop (L's listener → one tunnel → G → origin), each on its own ` +
    'client connection, so they all share L\'s single tunnel to G. "Peak streams" is the most streams L\'s control port ' +
    'reported in flight (polled every 100 ms); RSS peaks are polled from /proc every 50 ms. Each wave is first sent ' +
    'straight to the origin by the same client: that line is what the client, TCP and the origin cost by themselves.',
    '',
    markdownTable(['line', 'wave', 'ok', 'failed', 'all done s', 'p50 ms', 'p99 ms', 'MiB/s', 'peak streams', 'peak RSS MiB'], rows, ['left', 'left']),
    '',
    failures.length ? `Failures:\n\n\`\`\`\n${failures.join('\n')}\n\`\`\`` : 'No request failed.',
    '',
    incidentsText(westIncidents(target.west)),
  ].join('\n');
}
