/**
 * Failure answers end to end: real `west` processes, a real origin, real sockets on 127.0.0.1.
 * Each case checks the status, the RFC 9209 Proxy-Status header and the node the body names
 * (SPEC §2), and that nothing hangs: peers missing in either start order, origin refusing or
 * never answering, `ca` denying, loops, lazy tunnels, clients hanging up, a tunnel server
 * killed mid-request, and draining on SIGTERM.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { stateOf, within } from '../helpers/chain.js';
import { fetchText, freePort, waitFor, type FetchResult } from '../helpers/net.js';
import { patternSha256 } from '../helpers/origin.js';
import { halfUpload } from '../helpers/stream.js';
import { originAndTempDir, portTaken, retryIfPortTaken, WestProcess, writeConfig } from '../helpers/west.js';

/**
 * A node arms its timers with the time its event loop read last, which may be a little older
 * than the moment it arms them, so seen from this process a timer of N ms can fire slightly
 * early. Only lower bounds use this; upper bounds are deadlines, not measurements.
 */
const CLOCK_SLACK_MS = 100;

const G = 'test-G';
const L = 'test-L';

const fixture = originAndTempDir('west-failures-');
const { origin } = fixture;

/** Tuning keys (seconds) for `west`. */
type Tuning = Record<string, number>;
type Mappings = Record<string, { ou: string; ca?: string[] }>;

interface PairOptions {
  tag: string;
  gTuning?: Tuning;
  lTuning?: Tuning;
  /** Mappings of L's `ea` listener (performed at G). */
  lMappings?: Mappings;
  /** Mappings of G's `en` listener (performed at L). */
  gMappings?: Mappings;
  /** `ee` of L's wstc entry; absent: no wstc entry (the `ea` implies one). */
  ee?: 'yes' | 'no';
}

class Pair {
  /** L's proxy listener (ea → G), once L is started. */
  lUrl = '';
  /** G's proxy listener (en → L), once G is started. */
  gUrl = '';
  gControl = '';
  lControl = '';
  server = '';
  private lStarted = false;

  constructor(private readonly opts: PairOptions) {}

  /** Writes both configs for a tunnel server on `sp`; listeners and control ports are the OS's pick. */
  async write(sp: number): Promise<void> {
    const { opts } = this;
    this.server = `ws://127.0.0.1:${sp}`;
    await writeConfig(fixture.dir, `${opts.tag}-G.json`, {
      west: { nm: G, cp: '127.0.0.1:0', ...opts.gTuning },
      wsts: { sp: this.server },
      proxy: { 'http://127.0.0.1:0': { en: L, '/px': { ou: originUrl('/atL') }, ...opts.gMappings } },
    });
    await writeConfig(fixture.dir, `${opts.tag}-L.json`, {
      west: { nm: L, cp: '127.0.0.1:0', ...opts.lTuning },
      ...(opts.ee ? { wstc: { [this.server]: { ee: opts.ee } } } : {}),
      proxy: { 'http://127.0.0.1:0': { ea: this.server, '/px': { ou: originUrl('/atG') }, ...opts.lMappings } },
    });
  }

  /**
   * Starts G (again, after a kill, on the same tunnel port). Its port is picked before L's config
   * can name it; if it was taken meanwhile and L has not started, both configs move to a new one.
   */
  async startG(): Promise<WestProcess> {
    const start = async (): Promise<WestProcess> => this.started('G', await WestProcess.start(path.join(fixture.dir, `${this.opts.tag}-G.json`)));
    if (this.lStarted) return start(); // L dials this port: G must bind it again
    return retryIfPortTaken(async () => {
      try {
        return await start();
      } catch (err) {
        if (portTaken(err)) await this.write(await freePort());
        throw err;
      }
    });
  }

  async startL(): Promise<WestProcess> {
    this.lStarted = true;
    return this.started('L', await WestProcess.start(path.join(fixture.dir, `${this.opts.tag}-L.json`)));
  }

  private started(node: 'G' | 'L', proc: WestProcess): WestProcess {
    if (node === 'G') [this.gUrl, this.gControl] = [proc.listenerUrl(), proc.controlUrl()];
    else [this.lUrl, this.lControl] = [proc.listenerUrl(), proc.controlUrl()];
    return proc;
  }
}

const originUrl = (path: string): string => `http://127.0.0.1:${origin.port}${path}`;

/**
 * Two nodes: G runs the tunnel server and an `en` listener to L; L dials G and has an `ea`
 * listener. Requests on L's listener are performed at G, requests on G's listener at L.
 * Configs are written; `startG()` and `startL()` start the nodes in the order a test wants.
 */
async function pair(opts: PairOptions): Promise<Pair> {
  const p = new Pair(opts);
  await p.write(await freePort());
  return p;
}

/** Asserts a failure answer: status, Proxy-Status naming `node` with `error`, body naming `node`. */
function assertFailure(r: FetchResult, status: number, error: string, node: string): void {
  const ps = String(r.headers['proxy-status'] ?? '');
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.match(ps, new RegExp(`^"${node}"; error=${error}(;|$)`), `Proxy-Status: ${ps}`);
  assert.ok(r.text.includes(node), `body should name ${node}: ${r.text}`);
  assert.match(String(r.headers['content-type']), /^text\/plain/);
}

async function stateJson(control: string): Promise<any> {
  const r = await fetchText(`${control}/state.json`);
  assert.equal(r.status, 200);
  return JSON.parse(r.text);
}

/** GETs url until it answers 200 (bounded), returning that answer. */
function until200(url: string, timeoutMs = 10_000): Promise<FetchResult> {
  return waitFor(`200 from ${url}`, async () => {
    const r = await fetchText(url, { timeoutMs: 5000 });
    return r.status === 200 ? r : undefined;
  }, timeoutMs, 100);
}


/** How a streamed exchange ended. */
type Ending =
  | { kind: 'complete'; status: number; headers: http.IncomingHttpHeaders; body: Buffer }
  | { kind: 'broken'; status: number | undefined; error: string };

/** A request whose response the test controls. Its promises never reject. */
interface OpenRequest {
  req: http.ClientRequest;
  /** Resolves with the response head. */
  head: Promise<http.IncomingMessage>;
  /** Resolves once the first body bytes have arrived. */
  firstData: Promise<void>;
  /** Resolves with how the exchange ended: complete, or broken off. */
  ending: Promise<Ending>;
}

function openRequest(url: string): OpenRequest {
  const req = http.request(url, { agent: false });
  let resolveHead!: (res: http.IncomingMessage) => void;
  let resolveData!: () => void;
  const head = new Promise<http.IncomingMessage>((resolve) => { resolveHead = resolve; });
  const firstData = new Promise<void>((resolve) => { resolveData = resolve; });
  const ending = new Promise<Ending>((resolve) => {
    let status: number | undefined;
    req.on('error', (err) => resolve({ kind: 'broken', status, error: err.message }));
    req.on('response', (res) => {
      status = res.statusCode;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => { chunks.push(c); resolveData(); });
      res.on('end', () => resolve(res.complete
        ? { kind: 'complete', status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }
        : { kind: 'broken', status, error: 'response incomplete' }));
      res.on('error', (err) => resolve({ kind: 'broken', status, error: err.message }));
      res.on('close', () => { if (!res.complete) resolve({ kind: 'broken', status, error: 'closed before the end' }); });
      resolveHead(res);
    });
  });
  req.end();
  return { req, head, firstData, ending };
}

/** The origin's record of the request whose URL contains `marker` (bounded wait). */
function seenAtOrigin(marker: string) {
  return waitFor(`origin to receive ${marker}`, () => origin.seen.find((s) => s.url.includes(marker)));
}

describe('peer not connected: 503 with Retry-After, then 200 once it connects', () => {
  test('(a) tunnel server G starts first: its en listener answers 503 until L connects', async () => {
    const p = await pair({ tag: 'order-a', gTuning: { retryAfter: 2 } });
    const g = await p.startG();
    try {
      for (let i = 0; i < 2; i++) {
        const r = await fetchText(`${p.gUrl}/px/order-a/echo`);
        assertFailure(r, 503, 'destination_unavailable', G);
        assert.equal(r.headers['retry-after'], '2');
      }
      assert.ok(!origin.seen.some((s) => s.url.includes('order-a')), 'nothing reaches the origin while L is away');
      const l = await p.startL();
      try {
        const ok = await until200(`${p.gUrl}/px/order-a/echo`);
        assert.equal(JSON.parse(ok.text).url, '/atL/order-a/echo');
      } finally {
        await l.stop();
      }
    } finally {
      await g.stop();
    }
  });

  test('(b) client L starts first: its ea listener answers 503 until G is up, L redials by itself', async () => {
    const p = await pair({ tag: 'order-b', lTuning: { retryAfter: 3 } });
    const l = await p.startL();
    try {
      for (let i = 0; i < 2; i++) {
        const r = await within(5000, '503 while the server is down', fetchText(`${p.lUrl}/px/order-b/echo`));
        assertFailure(r, 503, 'destination_unavailable', L);
        assert.equal(r.headers['retry-after'], '3');
      }
      const g = await p.startG();
      try {
        const ok = await until200(`${p.lUrl}/px/order-b/echo`, 10_000);
        assert.equal(JSON.parse(ok.text).url, '/atG/order-b/echo');
      } finally {
        await g.stop();
      }
    } finally {
      await l.stop();
    }
  });
});

describe('origin and client failures across one connected pair', () => {
  let p: Pair;
  let deadPort: number;

  before(async () => {
    deadPort = await freePort(); // nothing listens here
    p = await pair({
      tag: 'shared',
      lTuning: { responseTimeout: 1 }, // requests performed at L (G's en listener) time out fast
      lMappings: {
        '/refused': { ou: `http://127.0.0.1:${deadPort}/x` },
        '/denied': { ou: originUrl('/denied-marker'), ca: ['10.0.0.0/8'] },
        '/allowed': { ou: originUrl('/allowed-marker'), ca: ['127.0.0.0/8'] },
      },
      gMappings: { '/slow': { ou: originUrl('/slow-at-L') } },
    });
    const g = await p.startG();
    const l = await p.startL();
    await l.waitForEvent('tunnel.connected');
    await g.waitForEvent('tunnel.client_connected');
    await until200(`${p.lUrl}/px/warmup/echo`);
  });

  test('502 when the origin refuses: Proxy-Status connection_refused, body names the far end', async () => {
    const r = await fetchText(`${p.lUrl}/refused`);
    assertFailure(r, 502, 'connection_refused', G);
  });

  test('504 when the origin never answers, after west.responseTimeout of the far end (not before)', async (t) => {
    const started = Date.now();
    // The deadline only keeps a broken node from hanging the test. It is half the default
    // responseTimeout (30 s), so a 504 within it comes from the configured 1 s.
    const r = await within(15_000, '504 from /hang', fetchText(`${p.gUrl}/slow/t504/hang`, { timeoutMs: 20_000 }));
    const ms = Date.now() - started;
    assertFailure(r, 504, 'http_response_timeout', L);
    // L's timer starts after this request was sent, so the 504 cannot come sooner (less a
    // little for clocks read in two processes); how much later it comes depends on the load.
    assert.ok(ms >= 1000 - CLOCK_SLACK_MS, `answered after ${ms} ms, before the 1 s responseTimeout`);
    t.diagnostic(`504 ${ms} ms after the request (responseTimeout 1 s)`);
    const seen = await seenAtOrigin('/slow-at-L/t504/hang');
    await waitFor('origin request to be cancelled after the timeout', () => seen.aborted);
  });

  test('403 when ca excludes the client (origin sees nothing); 200 when ca includes it', async () => {
    const denied = await fetchText(`${p.lUrl}/denied/echo`);
    assertFailure(denied, 403, 'http_request_denied', L);
    const allowed = await fetchText(`${p.lUrl}/allowed/echo`);
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(JSON.parse(allowed.text).url, '/allowed-marker/echo');
    assert.ok(origin.seen.some((s) => s.url.startsWith('/allowed-marker')));
    assert.ok(!origin.seen.some((s) => s.url.includes('denied')), 'the denied request reached the origin');
  });

  test('a client hanging up before the response head cancels the origin request (/hang)', async () => {
    const { req, ending } = openRequest(`${p.lUrl}/px/hangup-hang/hang`);
    const seen = await seenAtOrigin('/atG/hangup-hang/hang');
    assert.equal(seen.aborted, false);
    req.destroy();
    await ending;
    await waitFor('origin to see the /hang request aborted', () => seen.aborted);
  });

  test('an origin that answers an upload early (413, body unread): the client gets the answer, and no stream is left behind on either node', async () => {
    // Half the body now, the rest never: the answer comes before the upload is done.
    const status = await within(8000, 'the 413', halfUpload(`${p.lUrl}/px/early/early413`, 8 * 1024 * 1024));
    assert.equal(status, 413);
    // The request body will never complete: both ends must let the stream go, not wait for it.
    await waitFor('no stream in flight on G or L', async () => {
      const [g, l] = await Promise.all([stateOf(p.gControl), stateOf(p.lControl)]);
      const streams = [...(g.server?.peers ?? []), ...l.tunnels].reduce((n, t) => n + t.streams, 0);
      const inFlight = l.listeners.reduce((n, x) => n + x.inFlight, 0);
      return streams === 0 && inFlight === 0;
    }, 5000);
  });

  test('a client hanging up mid-body cancels the origin request (/stall)', async () => {
    const { req, head, firstData, ending } = openRequest(`${p.lUrl}/px/hangup-stall/stall`);
    const res = await within(5000, 'head of /stall', head);
    assert.equal(res.statusCode, 200);
    await within(5000, 'first bytes of /stall', firstData);
    const seen = await seenAtOrigin('/atG/hangup-stall/stall');
    assert.equal(seen.aborted, false);
    req.destroy();
    await ending;
    await waitFor('origin to see the /stall request aborted', () => seen.aborted);
  });
});

describe('loops and hop limits', () => {
  test('508 for a mapping that loops back to its own listener through a tunnel to itself', async () => {
    // The mappings name the node's own listeners and tunnel server: ports picked before start.
    let a = 0;
    const n = await retryIfPortTaken(async () => {
      const [sp, b, c] = await Promise.all([freePort(), freePort(), freePort()]);
      a = await freePort();
      const server = `ws://127.0.0.1:${sp}`;
      return WestProcess.start(await writeConfig(fixture.dir, 'loop.json', {
        west: { nm: 'loop-N', maxHops: 2 },
        wsts: { sp: server },
        proxy: {
          [`http://127.0.0.1:${a}`]: {
            ea: server,
            '/loop': { ou: `http://127.0.0.1:${a}/loop` },
            '/chain2': { ou: `http://127.0.0.1:${b}/direct` },
            '/chain3': { ou: `http://127.0.0.1:${b}/next` },
          },
          [`http://127.0.0.1:${b}`]: {
            ea: server,
            '/direct': { ou: originUrl('/loop-origin') },
            '/next': { ou: `http://127.0.0.1:${c}/direct` },
          },
          [`http://127.0.0.1:${c}`]: { ea: server, '/direct': { ou: originUrl('/loop-origin') } },
        },
      }));
    });
    try {
      await n.waitForEvent('tunnel.connected');
      // Caught by counting hops, not by a timer: the answer is 508 (a timeout would be 504),
      // and it comes long before the default 30 s responseTimeout could fire.
      const loop = await within(15_000, 'answer to a looping request', fetchText(`http://127.0.0.1:${a}/loop`));
      assertFailure(loop, 508, 'proxy_loop_detected', 'loop-N');

      // Two west listeners are within maxHops 2; a third is one too many.
      const two = await fetchText(`http://127.0.0.1:${a}/chain2/echo`);
      assert.equal(two.status, 200, two.text);
      assert.equal(JSON.parse(two.text).url, '/loop-origin/echo');
      const three = await within(5000, 'answer past the hop limit', fetchText(`http://127.0.0.1:${a}/chain3/echo`));
      assertFailure(three, 508, 'proxy_loop_detected', 'loop-N');
    } finally {
      await n.stop();
    }
  });
});

describe('lazy tunnel', () => {
  test('ee "no": no tunnel before the first request, the first request dials and succeeds', async () => {
    const p = await pair({ tag: 'lazy', ee: 'no' });
    const g = await p.startG();
    const l = await p.startL();
    try {
      const lState = await stateJson(p.lControl);
      assert.equal(lState.tunnels.length, 1);
      assert.equal(lState.tunnels[0].early, false);
      assert.equal(lState.tunnels[0].connected, false);
      assert.equal(lState.tunnels[0].connects, 0);
      assert.equal(lState.tunnels[0].state, 'idle');
      assert.deepEqual((await stateJson(p.gControl)).server.peers, []);
      assert.ok(!l.events.some((e) => e.event.startsWith('tunnel.')), 'L touched the tunnel before any request');

      const r = await within(8000, 'first request over a lazy tunnel', fetchText(`${p.lUrl}/px/lazy/echo`));
      assert.equal(r.status, 200, r.text);
      assert.equal(JSON.parse(r.text).url, '/atG/lazy/echo');
      const peers = (await stateJson(p.gControl)).server.peers as { name: string }[];
      assert.deepEqual(peers.map((x) => x.name), [L]);
    } finally {
      await l.stop();
      await g.stop();
    }
  });
});

describe('the tunnel server dies or stops with requests in flight', () => {
  test('SIGKILL of the server: in-flight requests end (closed or 502), never hang; L redials after a restart', async () => {
    const p = await pair({ tag: 'kill' });
    let g = await p.startG();
    const l = await p.startL();
    try {
      await l.waitForEvent('tunnel.connected');
      await until200(`${p.lUrl}/px/kill-warm/echo`);

      const stall = openRequest(`${p.lUrl}/px/kill-stall/stall`);
      const res = await within(5000, 'head of /stall', stall.head);
      assert.equal(res.statusCode, 200);
      await within(5000, 'first bytes of /stall', stall.firstData);
      const hang = openRequest(`${p.lUrl}/px/kill-hang/hang`);
      await seenAtOrigin('/atG/kill-hang/hang');

      g.kill('SIGKILL');
      await g.exited;

      const stallEnd = await within(5000, 'the /stall exchange to end after the server died', stall.ending);
      assert.equal(stallEnd.kind, 'broken', 'a body cut short must not look complete');
      // No response head had left yet, so there is still room for a precise answer: 502.
      const hangEnd = await within(5000, 'the /hang exchange to end after the server died', hang.ending);
      assert.equal(hangEnd.kind, 'complete', hangEnd.kind === 'broken' ? `connection broken: ${hangEnd.error}` : '');
      if (hangEnd.kind === 'complete') {
        const body = hangEnd.body.toString();
        assert.equal(hangEnd.status, 502, body);
        assert.match(String(hangEnd.headers['proxy-status']), /error=connection_terminated/);
        assert.ok(body.includes(L) || body.includes(G), `body should name the node: ${body}`);
      }

      await l.waitForEvent('tunnel.disconnected');
      g = await p.startG();
      const ok = await until200(`${p.lUrl}/px/kill-after/echo`, 15_000);
      assert.equal(JSON.parse(ok.text).url, '/atG/kill-after/echo');
    } finally {
      await l.stop();
      await g.stop();
    }
  });

  test('SIGTERM on the listener node waits for a slowly read transfer to finish, then exits 0', async () => {
    const size = 32 * 1024 * 1024; // far more than socket buffers and tunnel windows hold
    const p = await pair({ tag: 'drain-l', lTuning: { drainTimeout: 20 } });
    const g = await p.startG();
    const l = await p.startL();
    try {
      await l.waitForEvent('tunnel.connected');
      const big = openRequest(`${p.lUrl}/px/drain-l/bytes/${size}`);
      const res = await within(5000, 'head of the transfer', big.head);
      assert.equal(res.statusCode, 200);
      res.pause();

      l.kill('SIGTERM');
      await l.waitForEvent('node.stopping');
      assert.equal(l.exitCode, null, 'L exited with a transfer in flight');
      // New work is not taken on while draining.
      const late = await fetchText(`${p.lUrl}/px/drain-late/echo`).catch((err: unknown) => err as Error);
      assert.ok(late instanceof Error || late.status === 503, `a request during drain got ${late instanceof Error ? late.message : late.status}`);

      res.resume();
      const end = await within(20_000, 'the transfer to finish during drain', big.ending);
      assert.equal(end.kind, 'complete', end.kind === 'broken' ? end.error : '');
      if (end.kind === 'complete') {
        assert.equal(end.body.length, size);
        assert.equal(createHash('sha256').update(end.body).digest('hex'), patternSha256(size));
      }
      assert.equal(await within(10_000, 'L to exit after draining', l.exited), 0);
      assert.ok(!l.events.some((e) => e.event === 'node.drain_timeout'), 'drain timed out');
    } finally {
      await l.stop();
      await g.stop();
    }
  });

  test('SIGTERM on the far end waits for a request it performs (504 after responseTimeout), then exits 0', async () => {
    const p = await pair({ tag: 'drain-g', gTuning: { responseTimeout: 1.5, drainTimeout: 10 } });
    const g = await p.startG();
    const l = await p.startL();
    try {
      await l.waitForEvent('tunnel.connected');
      const hang = openRequest(`${p.lUrl}/px/drain-g/hang`);
      await seenAtOrigin('/atG/drain-g/hang');
      g.kill('SIGTERM');
      await g.waitForEvent('node.stopping');
      const end = await within(8000, 'the in-flight request to be answered', hang.ending);
      assert.equal(end.kind, 'complete', JSON.stringify(end));
      if (end.kind === 'complete') {
        assert.equal(end.status, 504, end.body.toString());
        assert.match(String(end.headers['proxy-status']), new RegExp(`^"${G}"; error=http_response_timeout`));
      }
      assert.equal(await within(10_000, 'G to exit after draining', g.exited), 0);
      assert.ok(!g.events.some((e) => e.event === 'node.drain_timeout'), 'drain timed out');
    } finally {
      await l.stop();
      await g.stop();
    }
  });

  test('SIGTERM with a request outlasting west.drainTimeout: exits 0 at the bound, the request ends', async () => {
    const p = await pair({ tag: 'drain-bound', lTuning: { drainTimeout: 1 } });
    const g = await p.startG();
    const l = await p.startL();
    try {
      await l.waitForEvent('tunnel.connected');
      const hang = openRequest(`${p.lUrl}/px/drain-bound/hang`);
      const seen = await seenAtOrigin('/atG/drain-bound/hang');
      const started = Date.now();
      l.kill('SIGTERM');
      assert.equal(await within(8000, 'L to exit at the drain bound', l.exited), 0);
      const ms = Date.now() - started;
      assert.ok(ms >= 900, `exited after ${ms} ms, before the 1 s drain bound`);
      assert.ok(l.events.some((e) => e.event === 'node.drain_timeout'), 'no node.drain_timeout logged');
      const end = await within(5000, 'the cut request to end', hang.ending);
      assert.ok(end.kind === 'broken' || end.status >= 500, JSON.stringify(end));
      await waitFor('origin request to be cancelled', () => seen.aborted);
    } finally {
      await l.stop();
      await g.stop();
    }
  });
});
