/**
 * `--mqtt`: one hop over MQTT (through Debian's mosquitto, passwords and west's ACL, on a free
 * loopback port) beside one hop over a WebSocket, as sample/case1: one 64 MiB download, eight
 * 16 MiB downloads at once, and the time of a 100 B request on a kept-alive connection.
 */
import { ACL_PATTERNS } from '../src/tunnel/mqtt/acl.js';
import { stopDaemons } from '../test/helpers/daemon.js';
import { mosquittoMissing, startBroker } from '../test/helpers/mosquitto.js';
import { freePort, waitFor200 } from './net.js';
import { withProcesses } from './procs.js';
import { warnLoudly } from './programs.js';
import { contextLines, incidentsText, type RunContext } from './report.js';
import { markdownTable, mibps, ms, ratio } from './table.js';
import { startOneHop, startOrigin, startWest, stopWest, westIncidents, type Target, type WestIncident } from './topology.js';
import { download, downloadAll, EACH, keptAliveTimes, MANY, median, ONE, rate, type Download, type TransferFigures as Figures } from './transfer.js';

export interface MqttBenchOptions {
  dir: string;
  /** Each download stops here and reports the rate so far. */
  capS: number;
  requests: number;
  tuning?: Record<string, unknown>;
}



/** One hop whose tunnel runs through the broker at `brokerUrl` (users bench.G and bench.L). */
async function startOneHopMqtt(originPort: number, brokerUrl: string, opts: MqttBenchOptions): Promise<Target> {
  const listenL = await freePort();
  const base = { dir: opts.dir, ...(opts.tuning ? { tuning: opts.tuning } : {}) };
  const g = await startWest(base, 'mqtt-G', {
    west: { nm: 'bench.G', egress: { 'bench.L': [`http://127.0.0.1:${originPort}/x`] } },
    wsts: { sp: brokerUrl, mqtt: { password: 'pw-G' } },
  });
  const l = await startWest(base, 'mqtt-L', {
    west: { nm: 'bench.L', egress: {} },
    wstc: { [brokerUrl]: { mqtt: { server: 'bench.G', password: 'pw-L' } } },
    proxy: { [`http://127.0.0.1:${listenL}`]: { ea: brokerUrl, '/px': { ou: `http://127.0.0.1:${originPort}/x` } } },
  });
  const target: Target = {
    label: 'west, one hop over MQTT (mosquitto)', base: `http://127.0.0.1:${listenL}/px`, hops: 1, west: [l, g],
    proxies: [{ name: 'L', pid: l.child.pid }, { name: 'G', pid: g.child.pid }],
  };
  await waitFor200(`${target.base}/small`);
  return target;
}

async function measureBase(base: string, opts: MqttBenchOptions): Promise<Figures> {
  const capMs = opts.capS * 1000;
  const single = await download(`${base}/bytes/${ONE}`, capMs);
  const many = await downloadAll(Array.from({ length: MANY }, () => `${base}/bytes/${EACH}`), capMs);
  const requestMs = median(await keptAliveTimes(`${base}/small`, opts.requests));
  return { single, many, requestMs };
}

function cell(parts: Download[], bytes: number, elapsedMs: number): string {
  const failed = parts.find((p) => !p.complete && !p.capped);
  const text = mibps(rate(bytes, elapsedMs));
  if (failed) return `${text} (failed: ${failed.error ?? `status ${failed.status}`})`;
  return parts.some((p) => p.capped) ? `${text} (stopped at the cap)` : text;
}

/** Runs both lines and returns the section of doc/benchmarks.md. */
export async function runMqtt(opts: MqttBenchOptions, ctx: RunContext): Promise<string> {
  const missing = mosquittoMissing();
  if (missing) {
    warnLoudly([`--mqtt needs mosquitto: ${missing}`]);
    return `## MQTT: one hop over mosquitto beside one over a WebSocket\n\nNot measured: ${missing}.`;
  }
  try {
    return await withProcesses(() => measure(opts, ctx));
  } finally {
    await stopDaemons();
  }
}

async function measure(opts: MqttBenchOptions, ctx: RunContext): Promise<string> {
  const origin = await startOrigin();
  const broker = await startBroker(opts.dir, {
    users: [{ name: 'bench.G', password: 'pw-G', acl: [] }, { name: 'bench.L', password: 'pw-L', acl: [] }],
    patterns: ACL_PATTERNS,
  });
  const rows: { label: string; figures: Figures }[] = [];
  const incidents: WestIncident[] = [];
  const lines: { label: string; start: () => Promise<Target> }[] = [
    { label: 'west, one hop over a WebSocket', start: () => startOneHop(origin.port, { dir: opts.dir, ...(opts.tuning ? { tuning: opts.tuning } : {}) }) },
    { label: 'west, one hop over MQTT (mosquitto)', start: () => startOneHopMqtt(origin.port, broker.url, opts) },
  ];
  for (const line of lines) {
    const target = await line.start();
    const figures = await measureBase(target.base, opts);
    process.stderr.write(`bench: mqtt: ${line.label}: 64 MiB ${mibps(rate(figures.single.bytes, figures.single.elapsedMs))} MiB/s, ` +
      `${MANY} × 16 MiB ${mibps(rate(figures.many.bytes, figures.many.elapsedMs))} MiB/s, 100 B request ${ms(figures.requestMs)} ms\n`);
    incidents.push(...westIncidents(target.west));
    await stopWest(target);
    rows.push({ label: line.label, figures });
  }
  const ws = rows[0]?.figures;
  const body = rows.map(({ label, figures: f }) => [
    label,
    cell([f.single], f.single.bytes, f.single.elapsedMs),
    ws ? ratio(rate(f.single.bytes, f.single.elapsedMs) / rate(ws.single.bytes, ws.single.elapsedMs)) : '–',
    cell(f.many.each, f.many.bytes, f.many.elapsedMs),
    ws ? ratio(rate(f.many.bytes, f.many.elapsedMs) / rate(ws.many.bytes, ws.many.elapsedMs)) : '–',
    ms(f.requestMs),
  ]);
  return [
    '## MQTT: one hop over mosquitto beside one over a WebSocket',
    '',
    contextLines(ctx),
    '',
    markdownTable(
      ['line', '64 MiB download MiB/s', '× WebSocket', `${MANY} × 16 MiB at once MiB/s`, '× WebSocket', '100 B request ms'],
      body,
      ['left', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
    'Both hops as sample/case1 (the client talks to L, G performs), on one machine; the MQTT line runs the',
    'tunnel through mosquitto on loopback with passwords and the ACL of doc/mqtt.md.',
    incidentsText(incidents),
  ].join('\n');
}
