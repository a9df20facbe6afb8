/**
 * Many client nodes on one tunnel server: rather than 1,000 west processes, 1,000 WebSocket
 * connections that speak west's handshake (subprotocol `west.v2`, a unique `X-West-Node`, an
 * `X-West-Window`) to a real west tunnel server process, which then holds 1,000 sessions. The
 * server's RSS before, with all connected and after they leave gives the memory per idle
 * client. A bare `ws` server measured the same way gives the floor that Node and ws set.
 */
import WebSocket from 'ws';
import { SUBPROTOCOL } from '../src/tunnel/frame.js';
import { Inspector, INSPECT_FLAG } from './inspector.js';
import { get, waitFor } from './net.js';
import { benchScript, spawnNode, withProcesses, type Child } from './procs.js';
import { contextLines, incidentsText, type RunContext } from './report.js';
import { settledRss } from './rss.js';
import { count, kib, markdownTable, mib, seconds } from './table.js';
import { startTunnelServer, westIncidents, type WestProc } from './topology.js';

export interface ClientsOptions {
  dir: string;
  clients: number;
  /** How long RSS is sampled (median) at each step. */
  settleMs: number;
}

interface Dialed {
  sockets: WebSocket[];
  failures: Map<string, number>;
  elapsedMs: number;
}

function dialOne(url: string, name: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [SUBPROTOCOL], {
      headers: { 'X-West-Node': name, 'X-West-Window': String(256 * 1024) },
      perMessageDeflate: false,
      handshakeTimeout: 30_000,
    });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(new Error(`server answered ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}

/** Opens `n` connections, `batch` at a time. */
async function dialAll(url: string, n: number, prefix: string, batch = 50): Promise<Dialed> {
  const started = performance.now();
  const sockets: WebSocket[] = [];
  const failures = new Map<string, number>();
  for (let i = 0; i < n; i += batch) {
    const names = Array.from({ length: Math.min(batch, n - i) }, (_, k) => `${prefix}-${i + k}`);
    const results = await Promise.allSettled(names.map((name) => dialOne(url, name)));
    for (const r of results) {
      if (r.status === 'fulfilled') {
        r.value.on('error', () => { /* counted when the server's count falls short */ });
        sockets.push(r.value);
      } else {
        const key = r.reason instanceof Error ? r.reason.message : String(r.reason);
        failures.set(key, (failures.get(key) ?? 0) + 1);
      }
    }
  }
  return { sockets, failures, elapsedMs: performance.now() - started };
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) => new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) { resolve(); return; }
    const timer = setTimeout(() => { ws.terminate(); resolve(); }, 5000);
    ws.once('close', () => { clearTimeout(timer); resolve(); });
    ws.close(1000, 'benchmark done');
  })));
}

async function connectedPeers(server: WestProc): Promise<number> {
  const { text } = await get(`http://127.0.0.1:${server.controlPort}/state.json`, 10_000);
  return (JSON.parse(text) as { server?: { peers: unknown[] } }).server?.peers.length ?? 0;
}

/** RSS (median over the settle time) and JS heap in use after a forced full GC. */
interface Memory {
  rss: number;
  heap: number;
}

async function memoryOf(child: Child, inspector: Inspector, settleMs: number): Promise<Memory> {
  const heap = await inspector.heapUsedAfterGc();
  return { heap, rss: await settledRss(child.pid, settleMs) };
}

interface Step {
  label: string;
  before: Memory;
  during: Memory;
  after: Memory;
  connected: number;
  dialMs: number;
  failures: Map<string, number>;
}

/** Measures one server process: memory idle, with `n` clients connected, after they left. */
async function measureServer(label: string, child: Child, url: string, n: number, settleMs: number, serverCount: (() => Promise<number>) | undefined): Promise<Step> {
  const inspector = await Inspector.attach(child);
  let dialed: Dialed | undefined;
  try {
    const before = await memoryOf(child, inspector, settleMs);
    process.stderr.write(`bench: clients: ${label}: RSS ${mib(before.rss)} MiB idle; connecting ${n} clients\n`);
    dialed = await dialAll(url, n, `bench-client-${label.replace(/\W+/g, '-')}`);
    const { sockets } = dialed;
    if (serverCount) {
      await waitFor(`${sockets.length} peers on the server`, async () => (await serverCount()) === sockets.length, 30_000, 200);
    }
    const during = await memoryOf(child, inspector, settleMs);
    const connected = sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
    process.stderr.write(`bench: clients: ${label}: ${connected} connected in ${seconds(dialed.elapsedMs)} s, RSS ${mib(during.rss)} MiB\n`);
    await closeAll(sockets);
    if (serverCount) await waitFor('no peers on the server', async () => (await serverCount()) === 0, 30_000, 200);
    const after = await memoryOf(child, inspector, settleMs);
    return { label, before, during, after, connected, dialMs: dialed.elapsedMs, failures: dialed.failures };
  } finally {
    for (const s of dialed?.sockets ?? []) s.terminate();
    inspector.close();
  }
}

export async function runClients(opts: ClientsOptions, ctx: RunContext): Promise<string> {
  return withProcesses(() => measure(opts, ctx));
}

async function measure(opts: ClientsOptions, ctx: RunContext): Promise<string> {
  const n = opts.clients;
  const { west, url } = await startTunnelServer({ dir: opts.dir, nodeArgs: [INSPECT_FLAG] });
  const westStep = await measureServer('west tunnel server', west.child, url, n, opts.settleMs, () => connectedPeers(west));
  await west.child.stop();

  const bare = spawnNode(benchScript('ws-baseline'), [], { name: 'ws baseline', nodeArgs: [INSPECT_FLAG] });
  const { port } = await bare.readyLine<{ port: number }>();
  const bareStep = await measureServer('bare ws server', bare, `ws://127.0.0.1:${port}`, n, opts.settleMs, undefined);
  await bare.stop();

  const per = (s: Step, k: keyof Memory): number => (s.during[k] - s.before[k]) / Math.max(1, s.connected);
  const rows = [westStep, bareStep].map((s) => [
    s.label,
    `${count(s.connected)} / ${count(n)}`,
    seconds(s.dialMs),
    `${mib(s.before.rss)} / ${mib(s.during.rss)} / ${mib(s.after.rss)}`,
    `${mib(s.before.heap)} / ${mib(s.during.heap)} / ${mib(s.after.heap)}`,
    kib(per(s, 'rss')),
    kib(per(s, 'heap')),
  ]);
  const perWest = per(westStep, 'rss');
  const perBare = per(bareStep, 'rss');
  const failures = [westStep, bareStep].flatMap((s) => [...s.failures].map(([k, c]) => `${s.label}: ${c}× ${k}`));

  return [
    `## ${count(n)} client nodes on one tunnel server`,
    '',
    contextLines(ctx),
    '',
    `${count(n)} WebSocket connections speaking west's handshake (\`${SUBPROTOCOL}\`, a unique \`X-West-Node\` each, ` +
    '`X-West-Window: 262144`), dialed 50 at a time from the benchmark process to one west tunnel server process ' +
    '(`wsts.sp` only), then held idle. Memory is read idle before, with all connected (once the server\'s control port ' +
    'counts them all), and after all have closed: the JS heap in use right after a full GC (asked through the ' +
    `inspector), then RSS as the median of VmRSS sampled every 100 ms for ${seconds(opts.settleMs)} s. The bare \`ws\` ` +
    'server (bench/ws-baseline.ts) is the floor: Node and ws alone.',
    '',
    markdownTable(['server', 'connected', 'dial s', 'RSS MiB: before / connected / after', 'heap after GC MiB: before / connected / after', 'RSS KiB per client', 'heap KiB per client'], rows),
    '',
    `Target of issue 7, under 64 KiB of memory per idle connected client: ${perWest < 64 * 1024 ? 'met' : 'missed'} ` +
    `(${kib(perWest)} KiB of RSS each; a bare ws connection costs ${kib(perBare)} KiB).`,
    '',
    failures.length ? `Failed dials:\n\n\`\`\`\n${failures.join('\n')}\n\`\`\`` : 'Every dial succeeded.',
    '',
    incidentsText(westIncidents([west])),
  ].join('\n');
}
