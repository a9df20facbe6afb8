/**
 * A bounded soak of the three-hop chain (sample/case4: G <- L <- L2) under chaos: mixed traffic
 * (small GETs, POSTs whose bodies the origin hashes, 1-10 MiB downloads checked by hash, bursts
 * of parallel requests) while a random node is SIGKILLed and restarted every ~10 s and one is
 * SIGSTOPped and SIGCONTed now and then. Every request has a client-side deadline, so a hang
 * is counted as a hang. At the end the chaos stops and the chain must heal.
 *
 *   npm run soak                      # 60 s
 *   node dist/test/soak/soak.js --seconds 300 --workers 8
 *
 * Prints requests sent, succeeded, failed by status and by kind (connection cut, hang), bytes
 * verified and corrupted responses. Exits 1 when any response was corrupted, any request hung,
 * or the chain did not heal after the chaos.
 */
import { parseArgs } from 'node:util';
import { at } from '../helpers/at.js';
import { Chain, CHAIN_NODES, watchExchange, type ChainNode, type Ending } from '../helpers/chain.js';
import { fetchText, waitFor } from '../helpers/net.js';
import { Origin, patternSha256 } from '../helpers/origin.js';
import { patternBody } from '../helpers/stream.js';
import { stopAll, tempDir } from '../helpers/west.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    workers: { type: 'string', default: '6' },
    'kill-every': { type: 'string', default: '10' },
    'request-timeout': { type: 'string', default: '30' },
  },
});
const SECONDS = Number(args.seconds);
const WORKERS = Number(args.workers);
const KILL_EVERY_MS = Number(args['kill-every']) * 1000;
const REQUEST_TIMEOUT_MS = Number(args['request-timeout']) * 1000;
for (const [k, v] of Object.entries({ seconds: SECONDS, workers: WORKERS, 'kill-every': KILL_EVERY_MS, 'request-timeout': REQUEST_TIMEOUT_MS })) {
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`soak: --${k} must be a positive number\n`);
    process.exit(2);
  }
}

/** Timers of every node: a dead peer is dropped within 2 s, a lost tunnel redialled within 1 s. */
const WEST_KEYS = { heartbeat: 1, reconnectMin: 0.1, reconnectMax: 1, connectTimeout: 2, drainTimeout: 1, responseTimeout: 10 };
const MiB = 1024 * 1024;

type Kind = 'get' | 'post' | 'download' | 'burst-get';
type Outcome = 'ok' | 'status' | 'refused' | 'cut' | 'hang' | 'corrupted';

class Stats {
  sent = 0;
  ok = 0;
  /** Could not connect to G's listener at all (G was down). */
  refused = 0;
  cut = 0;
  hangs = 0;
  corrupted = 0;
  bytesVerified = 0;
  byStatus = new Map<number, number>();
  /** Failure answers from west without a Proxy-Status header (should be none). */
  noProxyStatus = 0;
  byKind = new Map<Kind, Record<Outcome, number>>();
  readonly corruptions: string[] = [];
  readonly hangsSeen: string[] = [];

  record(kind: Kind, outcome: Outcome, detail?: string): void {
    this.sent++;
    const k = this.byKind.get(kind) ?? { ok: 0, status: 0, refused: 0, cut: 0, hang: 0, corrupted: 0 };
    k[outcome]++;
    this.byKind.set(kind, k);
    if (outcome === 'ok') this.ok++;
    if (outcome === 'refused') this.refused++;
    if (outcome === 'cut') this.cut++;
    if (outcome === 'hang') { this.hangs++; this.hangsSeen.push(detail ?? kind); }
    if (outcome === 'corrupted') { this.corrupted++; this.corruptions.push(detail ?? kind); }
  }

  /** The first answer seen of each failure status, for the report. */
  readonly statusSamples = new Map<number, string>();

  status(kind: Kind, status: number, proxyStatus: boolean, sample: string): void {
    if (!this.statusSamples.has(status)) this.statusSamples.set(status, sample);
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    if (!proxyStatus) this.noProxyStatus++;
    this.record(kind, 'status');
  }
}

const stats = new Stats();

/**
 * When the chain was last disturbed. A request that starts with every node up for SETTLE_MS
 * and ends before the next disturbance ran in a calm period: it should succeed, and a failure
 * there is listed on its own.
 */
const SETTLE_MS = 3000;
const chaosClock = { epoch: 0, disturbed: true, since: Date.now() };
function disturb(): void {
  chaosClock.epoch++;
  chaosClock.disturbed = true;
}
function settled(): void {
  chaosClock.disturbed = false;
  chaosClock.since = Date.now();
}
const calmFailures: string[] = [];
let calmRequests = 0;
const started = Date.now();
const log = (line: string): void => { process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rand = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));
const pick = <T>(xs: readonly T[]): T => at(xs, Math.floor(Math.random() * xs.length));

let seq = 0;

/** Runs one exchange with a hard deadline; a request still going at the deadline is a hang. */
async function exchange(url: string, opts: Parameters<typeof watchExchange>[1] = {}): Promise<Ending | 'hang'> {
  const epoch = chaosClock.epoch;
  const calm = !chaosClock.disturbed && Date.now() - chaosClock.since >= SETTLE_MS;
  // The socket's own idle timeout is set past the deadline, so the deadline is what fires.
  const x = watchExchange(url, { ...opts, timeoutMs: REQUEST_TIMEOUT_MS * 2 });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'hang'>((resolve) => { timer = setTimeout(() => resolve('hang'), REQUEST_TIMEOUT_MS); });
  const result = await Promise.race([x.ending, deadline]);
  clearTimeout(timer);
  if (result === 'hang') x.req.destroy();
  if (calm && chaosClock.epoch === epoch) {
    calmRequests++;
    const failed = result === 'hang' ? 'hang' : result.kind === 'broken' ? `cut (${result.error})` : result.status !== 200 ? `${result.status} ${result.text.trim().slice(0, 160)}` : undefined;
    if (failed) {
      calmFailures.push(`${new URL(url).pathname}: ${failed}`);
      log(`calm-period failure ${new URL(url).pathname}: ${failed}`);
    }
  }
  return result;
}

/** Classifies an ending; `verify` checks a complete 200 and returns the bytes it verified, or a complaint. */
function classify(kind: Kind, what: string, end: Ending | 'hang', verify: (e: Extract<Ending, { kind: 'complete' }>) => number | string): boolean {
  if (end === 'hang') {
    stats.record(kind, 'hang', what);
    log(`HANG ${what}: no end after ${REQUEST_TIMEOUT_MS / 1000} s`);
    return false;
  }
  if (end.kind === 'broken') {
    stats.record(kind, end.status === undefined && end.error.includes('ECONNREFUSED') ? 'refused' : 'cut');
    return false;
  }
  if (end.status !== 200) {
    const sample = `${what} (${(Date.now() - started) / 1000} s): ${end.status} Proxy-Status: ${String(end.headers['proxy-status'])} body: ${end.text.trim().slice(0, 200)}`;
    if (end.status !== 502 && end.status !== 503) log(`answer ${sample}`);
    stats.status(kind, end.status, end.headers['proxy-status'] !== undefined || end.headers['x-origin'] !== undefined, sample);
    return false;
  }
  const verdict = verify(end);
  if (typeof verdict === 'string') {
    stats.record(kind, 'corrupted', `${what}: ${verdict}`);
    log(`CORRUPTED ${what}: ${verdict}`);
    return false;
  }
  stats.bytesVerified += verdict;
  stats.record(kind, 'ok');
  return true;
}

async function smallGet(chain: Chain, kind: Kind): Promise<boolean> {
  const n = ++seq;
  const marker = `soak-get-${n}`;
  const end = await exchange(`${chain.url}/${marker}/echo?n=${n}`);
  return classify(kind, marker, end, (e) => {
    let body: { url?: string };
    try {
      body = JSON.parse(e.text) as typeof body;
    } catch {
      return `not JSON (${e.bytes} bytes)`;
    }
    if (body.url !== `/a/${marker}/echo?n=${n}`) return `origin saw ${String(body.url)}`;
    return e.bytes;
  });
}

async function post(chain: Chain): Promise<boolean> {
  const size = Math.random() < 0.3 ? rand(0, 64 * 1024) : rand(64 * 1024, 3 * MiB);
  const marker = `soak-post-${++seq}`;
  const end = await exchange(`${chain.url}/${marker}/echo`, { method: 'POST', body: patternBody(size), headers: { 'Content-Type': 'application/octet-stream' } });
  return classify('post', marker, end, (e) => {
    let body: { bodyBytes?: number; sha256?: string; method?: string };
    try {
      body = JSON.parse(e.text) as typeof body;
    } catch {
      return `answer is not JSON (${e.bytes} bytes)`;
    }
    if (body.method !== 'POST') return `origin saw method ${String(body.method)}`;
    if (body.bodyBytes !== size) return `origin received ${String(body.bodyBytes)} of ${size} body bytes`;
    if (body.sha256 !== patternSha256(size)) return 'origin received a body with the wrong hash';
    return size;
  });
}

async function download(chain: Chain): Promise<boolean> {
  const size = rand(1 * MiB, 10 * MiB);
  const marker = `soak-dl-${++seq}`;
  const end = await exchange(`${chain.url}/${marker}/bytes/${size}`);
  return classify('download', marker, end, (e) => {
    if (e.bytes !== size) return `got ${e.bytes} of ${size} bytes in a complete response`;
    if (e.sha256 !== patternSha256(size)) return `wrong hash over ${size} bytes`;
    return size;
  });
}

async function burst(chain: Chain): Promise<boolean> {
  const results = await Promise.all(Array.from({ length: 5 }, () => smallGet(chain, 'burst-get')));
  return results.every(Boolean);
}

async function worker(chain: Chain, until: number): Promise<void> {
  while (Date.now() < until) {
    const r = Math.random();
    const ok = r < 0.35 ? await smallGet(chain, 'get') : r < 0.6 ? await post(chain) : r < 0.9 ? await download(chain) : await burst(chain);
    // Failures come fast while a node is down; pace them instead of spinning.
    if (!ok) await sleep(rand(100, 300));
  }
}

interface ChaosCounts {
  kills: Record<ChainNode, number>;
  pauses: Record<ChainNode, number>;
  restartFailures: number;
}

async function chaos(chain: Chain, until: number, counts: ChaosCounts): Promise<void> {
  let nextKill = Date.now() + KILL_EVERY_MS * (0.8 + 0.4 * Math.random());
  while (Date.now() < until) {
    const now = Date.now();
    if (now >= nextKill) {
      const node = pick(CHAIN_NODES);
      log(`chaos: SIGKILL ${node}`);
      disturb();
      await chain.kill(node);
      counts.kills[node]++;
      await sleep(rand(300, 2000));
      for (;;) {
        try {
          await chain.start(node);
          log(`chaos: ${node} restarted`);
          settled();
          break;
        } catch (err) {
          counts.restartFailures++;
          log(`chaos: restarting ${node} failed (${(err as Error).message.split('\n')[0]}), retrying`);
          await sleep(500);
        }
      }
      nextKill = Date.now() + KILL_EVERY_MS * (0.8 + 0.4 * Math.random());
    } else if (Math.random() < 0.15 && nextKill - now > 5000) {
      const node = pick(CHAIN_NODES);
      const ms = rand(500, 3500);
      log(`chaos: SIGSTOP ${node} for ${ms} ms`);
      disturb();
      chain.proc(node).kill('SIGSTOP');
      counts.pauses[node]++;
      await sleep(ms);
      chain.proc(node).kill('SIGCONT');
      settled();
      log(`chaos: SIGCONT ${node}`);
    }
    // Each node's log is kept in memory by the harness; the soak does not read it back.
    for (const node of CHAIN_NODES) {
      const p = chain.procs[node];
      if (p) { p.events.length = 0; p.stderr = ''; }
    }
    await sleep(1000);
  }
}

function print(counts: ChaosCounts, healedMs: number | undefined): void {
  const row = (label: string, value: string | number): string => `${label.padEnd(22)}${value}`;
  const fmtBytes = (n: number): string => `${n} (${(n / 1024 / 1024 / 1024).toFixed(2)} GiB)`;
  const statuses = [...stats.byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', ') || 'none';
  const lines = [
    '',
    `west soak: ${SECONDS} s, ${WORKERS} workers, chain G <- L <- L2, timers ${JSON.stringify(WEST_KEYS)}`,
    `chaos: SIGKILL+restart ${CHAIN_NODES.map((n) => `${n} ${counts.kills[n]}`).join(', ')}; SIGSTOP/SIGCONT ${CHAIN_NODES.map((n) => `${n} ${counts.pauses[n]}`).join(', ')}; restart retries ${counts.restartFailures}`,
    row('requests sent', stats.sent),
    row('succeeded', stats.ok),
    row('failed by status', `${statuses}${stats.noProxyStatus ? ` (${stats.noProxyStatus} without Proxy-Status)` : ''}`),
    row('connection refused', `${stats.refused} (G's listener was down)`),
    row('connection cut', `${stats.cut} (reset, or a body cut short)`),
    row(`hangs (> ${REQUEST_TIMEOUT_MS / 1000} s)`, stats.hangs),
    row('corrupted responses', stats.corrupted),
    row('bytes verified', fmtBytes(stats.bytesVerified)),
    row(`calm-period requests`, `${calmRequests} (every node up for ${SETTLE_MS / 1000} s before and during), failed: ${calmFailures.length}`),
    row('healed after chaos', healedMs === undefined ? 'NO (no 200 within 20 s)' : `yes, first 200 after ${healedMs} ms`),
    '',
    'by kind                 sent      ok  status refused     cut    hang corrupt',
    ...[...stats.byKind.entries()].map(([kind, k]) => {
      const sent = k.ok + k.status + k.refused + k.cut + k.hang + k.corrupted;
      return `  ${kind.padEnd(20)}${[sent, k.ok, k.status, k.refused, k.cut, k.hang, k.corrupted].map((n) => String(n).padStart(8)).join('')}`;
    }),
  ];
  for (const [status, sample] of [...stats.statusSamples.entries()].sort((a, b) => a[0] - b[0])) lines.push(`first ${status}: ${sample}`);
  for (const c of calmFailures) lines.push(`failed in a calm period: ${c}`);
  for (const c of stats.corruptions) lines.push(`corrupted: ${c}`);
  for (const h of stats.hangsSeen) lines.push(`hung: ${h}`);
  process.stdout.write(lines.join('\n') + '\n');
}

async function main(): Promise<number> {
  const origin = new Origin();
  await origin.listen();
  const { dir, cleanup } = await tempDir('west-soak-');
  const chain = await Chain.launch({ dir, originPort: origin.port, west: WEST_KEYS });
  const counts: ChaosCounts = { kills: { G: 0, L: 0, L2: 0 }, pauses: { G: 0, L: 0, L2: 0 }, restartFailures: 0 };
  let healedMs: number | undefined;
  const stop = async (): Promise<void> => {
    await chain.stopAll();
    await stopAll();
    await origin.close();
    await cleanup();
  };
  process.once('SIGINT', () => { void stop().then(() => process.exit(130)); });
  try {
    await chain.until200('/soak-warm/echo', 15_000);
    settled();
    log(`chain up; traffic and chaos for ${SECONDS} s`);
    const until = Date.now() + SECONDS * 1000;
    await Promise.all([
      chaos(chain, until, counts),
      ...Array.from({ length: WORKERS }, () => worker(chain, until)),
    ]);
    log('traffic done; chaos stopped');
    await chain.ensureRunning();
    const healStart = Date.now();
    try {
      await waitFor('the chain to heal', async () => (await fetchText(`${chain.url}/soak-healed/echo`, { timeoutMs: 5000 })).status === 200, 20_000, 100);
      healedMs = Date.now() - healStart;
    } catch {
      healedMs = undefined;
    }
  } finally {
    await stop();
  }
  print(counts, healedMs);
  return stats.corrupted > 0 || stats.hangs > 0 || healedMs === undefined ? 1 : 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`soak failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  void stopAll().finally(() => process.exit(1));
});
