/**
 * Fault injection with real processes on 127.0.0.1 and short timers (heartbeat 0.5 s in the
 * chain, 1 s elsewhere; redials 0.1-1 s): the middle node of the three-hop chain killed
 * mid-transfer and restarted, peers paused until heartbeats drop them and resumed, a tunnel
 * server restarted under its clients, start order reversed, two clients racing for one name
 * under both claim policies, requests waiting for a missing peer (west.peerWait), the stream
 * limit (west.maxStreams), the idle timeout (west.idleTimeout), and a tunnel server killed
 * under a burst of uploads. Every wait is bounded; nothing may hang.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { at } from '../helpers/at.js';
import { Chain, CHAIN_TIMERS, Link, Pair, SHORT_TIMERS, stateOf, until200, watchExchange, within, type Ending, type WestKeys } from '../helpers/chain.js';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { patternSha256 } from '../helpers/origin.js';
import { patternBody } from '../helpers/stream.js';
import { originAndTempDir, retryIfPortTaken, WestProcess, writeConfig, type LogEvent } from '../helpers/west.js';

const fixture = originAndTempDir('west-resilience-');
const { origin } = fixture;

const HEARTBEAT_MS = CHAIN_TIMERS.heartbeat! * 1000;
/**
 * How long a test waits for a node to drop a silent peer. Nodes drop a peer 1.5 to 2 heartbeat
 * intervals after its last word when their timers run on time; on a loaded machine they run
 * late by an amount no test controls, so the bound asserted is a deadline (20 intervals: TCP
 * itself would notice nothing for minutes, so a drop within it is the heartbeat's doing).
 */
const DETECTION_DEADLINE_MS = 20 * HEARTBEAT_MS;
/**
 * A node arms its timers with the time its event loop read last, which may be a little older
 * than the moment it arms them, so seen from this process a timer of N ms can fire slightly
 * early. Only lower bounds use this; upper bounds are deadlines, not measurements.
 */
const CLOCK_SLACK_MS = 100;
/** Deadline for an answer that a node's own timer of a second or so produces. */
const TIMER_DEADLINE_MS = 15_000;

/** Asserts a west failure answer: status, Proxy-Status naming `node` with `error`, Retry-After on 503. */
function assertFailure(r: { status: number; headers: Record<string, unknown>; text: string }, status: number, error: string, node: string): void {
  const ps = String(r.headers['proxy-status'] ?? ''); // eslint-disable-line @typescript-eslint/no-base-to-string -- a header value: a string, or strings that String() joins
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.ok(ps.startsWith(`"${node}"; error=${error}`), `Proxy-Status ${JSON.stringify(ps)} should name ${node} with error=${error}`);
  assert.ok(r.text.includes(node), `body should name ${node}: ${r.text}`);
  if (status === 503) assert.ok(r.headers['retry-after'] !== undefined, 'a 503 needs Retry-After');
}

/** The origin's record of the request whose URL contains `marker` (bounded wait). */
function seenAtOrigin(marker: string) {
  return waitFor(`origin to receive ${marker}`, () => origin.seen.find((s) => s.url.includes(marker)));
}

/** A node's tunnel events, one line each, for an assertion message. */
function tunnelLog(p: WestProcess): string {
  return p.events.filter((e) => e.event.startsWith('tunnel.')).map((e) => JSON.stringify(e)).join('\n');
}

function count(p: WestProcess, event: string, match: (e: LogEvent) => boolean = () => true): number {
  return p.events.filter((e) => e.event === event && match(e)).length;
}

/** Waits for the n-th occurrence of a log event. */
function nthEvent(p: WestProcess, event: string, n: number, match: (e: LogEvent) => boolean = () => true, timeoutMs = 10_000): Promise<LogEvent> {
  return waitFor(`${n} × ${event}`, () => p.events.filter((e) => e.event === event && match(e))[n - 1], timeoutMs);
}

/** A running chain with short timers, its configs in a directory of their own (they are named after the sample). */
async function launchChain(): Promise<Chain> {
  const chainDir = path.join(fixture.dir, 'chain');
  await mkdir(chainDir);
  return Chain.launch({ dir: chainDir, originPort: origin.port });
}

/**
 * The claim tests are about names, not dead peers: a heartbeat of seconds keeps a node starved
 * for a second on a busy machine from being dropped and its name handed to the other twin.
 */
const TWIN_TIMERS: WestKeys = { ...SHORT_TIMERS, heartbeat: 5 };

/**
 * A running tunnel server with an `en` listener to "twin", and the configs of two client
 * processes both named "twin". Every port is the OS's pick: the server starts first, and the
 * clients' configs name the port it bound.
 */
async function twins(tag: string, claim: 'replace' | 'refuse', aWest: WestKeys) {
  const s = await WestProcess.start(await writeConfig(fixture.dir, `${tag}-S.json`, {
    west: { nm: `${tag}-S`, cp: '127.0.0.1:0', ...TWIN_TIMERS },
    wsts: { sp: 'ws://127.0.0.1:0', claim },
    proxy: { 'http://127.0.0.1:0': { en: 'twin', '/px': { ou: `http://127.0.0.1:${origin.port}/twin` } } },
  }));
  const server = `ws://127.0.0.1:${s.serverPort()}`;
  const client = (west: WestKeys) => ({ west: { nm: `${tag}-client`, cp: '127.0.0.1:0', ...TWIN_TIMERS, ...west }, wstc: { [server]: { nm: 'twin' } } });
  return {
    s,
    aFile: await writeConfig(fixture.dir, `${tag}-A.json`, client(aWest)),
    bFile: await writeConfig(fixture.dir, `${tag}-B.json`, client({})),
    url: `${s.listenerUrl()}/px`,
    sControl: s.controlUrl(),
  };
}

/** Bytes a client node has sent through its one tunnel (responses it performed). */
async function bytesOut(control: string): Promise<number> {
  return at((await stateOf(control)).tunnels, 0).bytesOut;
}

/** Starts a pair for a suite (before) and stops it (after); its tests read the returned object. */
function suitePair(tag: string, opts: { west?: WestKeys; gWest?: WestKeys; lWest?: WestKeys }) {
  const ctx = {} as { p: Pair; g: WestProcess; l: WestProcess };
  before(async () => {
    ({ pair: ctx.p, g: ctx.g, l: ctx.l } = await Pair.launch(() => ({ dir: fixture.dir, tag, originPort: origin.port, ...opts })));
    await until200(`${ctx.p.lUrl}/${tag}-warm/echo`);
    await until200(`${ctx.p.gUrl}/${tag}-warm/echo`);
  });
  after(async () => {
    await ctx.l?.stop();
    await ctx.g?.stop();
  });
  return ctx;
}

// The suites run side by side (each on its own processes and ports); the tests within a suite
// run one after another.
describe('resilience', { concurrency: true }, () => {
  describe('three-hop chain (sample/case4): G <- L <- L2', { concurrency: 1 }, () => {
    // One chain for the whole suite: each test starts from a healthy chain and leaves one.
    let chain: Chain;
    before(async () => {
      chain = await launchChain();
    });
    after(async () => {
      await chain.stopAll();
    });
    beforeEach(async () => {
      await chain.ensureRunning();
      await chain.until200('/warm/echo', 8000);
    });

    test('kill -9 of the middle node mid-download: the transfer is cut, a request without a head gets 502, 503 meanwhile; after a restart requests succeed within seconds', async (t) => {
      const G = chain.names.G;
      const size = 1024 * 1024 * 1024; // far more than can move before the kill
      const big = watchExchange(`${chain.url}/kill9-big/bytes/${size}`);
      const head = await within(5000, 'head of the big download', big.head);
      assert.equal(head.statusCode, 200);
      assert.equal(head.headers['content-length'], String(size));
      await within(5000, 'the first MiB of the download', big.received(1024 * 1024));
      const bigAtOrigin = await seenAtOrigin('/a/kill9-big/');
      const hang = watchExchange(`${chain.url}/kill9-hang/hang`);
      await seenAtOrigin('/a/kill9-hang/hang');

      await chain.kill('L');

      const cut = await within(5000, 'the download to end after L died', big.ending);
      assert.equal(cut.kind, 'broken', 'a download cut short must not look complete');
      assert.ok(cut.bytes < size, `got ${cut.bytes} of ${size} bytes`);
      const hung = await within(5000, 'the /hang request to be answered after L died', hang.ending);
      assert.equal(hung.kind, 'complete', `no response head had left, so west can answer: ${JSON.stringify(hung)}`);
      if (hung.kind === 'complete') assertFailure(hung, 502, 'connection_terminated', G);
      // L2 lost its tunnel too, so nothing keeps pumping the origin's body.
      await waitFor('the origin to see the big download cancelled', () => bigAtOrigin.aborted, 5000);

      const meanwhile = await within(3000, 'a request while L is down', fetchText(`${chain.url}/kill9-down/echo`));
      assertFailure(meanwhile, 503, 'destination_unavailable', G);

      await chain.start('L');
      const restartedAt = Date.now();
      // The chain heals by redialling (reconnectMax 1 s); the deadline is for a chain that never does.
      const ok = await chain.until200('/kill9-after/echo', 10_000);
      assert.equal(JSON.parse(ok.text).url, '/a/kill9-after/echo');
      t.diagnostic(`first 200 through the chain ${Date.now() - restartedAt} ms after L restarted`);
      const again = await within(10_000, 'a verified download after the restart', watchExchange(`${chain.url}/kill9-again/bytes/${4 * 1024 * 1024}`).ending);
      assert.equal(again.kind, 'complete');
      if (again.kind === 'complete') assert.equal(again.sha256, patternSha256(4 * 1024 * 1024));
    });

    test('SIGSTOP of L2: L drops it by heartbeat (not before 1.5 silent intervals), requests for it get 503 meanwhile; after SIGCONT it reconnects', async (t) => {
      const L = chain.proc('L');
      const L2name = chain.names.L2;
      const connectsBefore = count(L, 'tunnel.client_connected', (e) => e.peer === L2name);
      const timeoutsBefore = count(L, 'tunnel.heartbeat_timeout');

      chain.proc('L2').kill('SIGSTOP');
      const stoppedAt = Date.now();
      const timeout = await nthEvent(L, 'tunnel.heartbeat_timeout', timeoutsBefore + 1, () => true, DETECTION_DEADLINE_MS);
      t.diagnostic(`dropped ${Date.now() - stoppedAt} ms after SIGSTOP, peer silent ${String(timeout.silentMs)} ms (heartbeat ${HEARTBEAT_MS} ms)`);
      assert.equal(timeout.peer, L2name);
      assert.ok(Number(timeout.silentMs) > 1.5 * HEARTBEAT_MS, `dropped after ${String(timeout.silentMs)} ms of silence, before the 1.5 intervals a peer is given`);

      for (const url of [`${chain.url}/stop-l2-g/echo`, `${chain.lUrl}/stop-l2-l/echo`]) {
        const r = await within(3000, `a request for the paused L2 (${url})`, fetchText(url));
        assertFailure(r, 503, 'destination_unavailable', chain.names.L);
      }
      assert.equal(count(L, 'tunnel.heartbeat_timeout'), timeoutsBefore + 1, 'the drop is logged once');

      chain.proc('L2').kill('SIGCONT');
      await nthEvent(L, 'tunnel.client_connected', connectsBefore + 1, (e) => e.peer === L2name, 5000);
      const ok = await chain.until200('/stop-l2-after/echo', 5000);
      assert.equal(JSON.parse(ok.text).url, '/a/stop-l2-after/echo');
    });

    test('SIGSTOP of G: L (its client) drops it by heartbeat (not before 1.5 silent intervals) and keeps serving L2; after SIGCONT L redials', async (t) => {
      const L = chain.proc('L');
      const connectsBefore = count(L, 'tunnel.connected');
      const timeoutsBefore = count(L, 'tunnel.heartbeat_timeout');

      chain.proc('G').kill('SIGSTOP');
      const stoppedAt = Date.now();
      const timeout = await nthEvent(L, 'tunnel.heartbeat_timeout', timeoutsBefore + 1, () => true, DETECTION_DEADLINE_MS);
      t.diagnostic(`dropped ${Date.now() - stoppedAt} ms after SIGSTOP, peer silent ${String(timeout.silentMs)} ms (heartbeat ${HEARTBEAT_MS} ms)`);
      assert.equal(timeout.peer, chain.names.G);
      assert.ok(Number(timeout.silentMs) > 1.5 * HEARTBEAT_MS, `dropped after ${String(timeout.silentMs)} ms of silence, before the 1.5 intervals a peer is given`);
      // The other tunnel of L (to L2) is not affected.
      const direct = await fetchText(`${chain.lUrl}/stop-g-l/echo`);
      assert.equal(direct.status, 200, direct.text);

      chain.proc('G').kill('SIGCONT');
      await nthEvent(L, 'tunnel.connected', connectsBefore + 1, () => true, 8000);
      await chain.until200('/stop-g-after/echo', 5000);
    });

    test('restarting the tunnel server G while L stays up: L redials by itself', async () => {
      const L = chain.proc('L');
      const connectsBefore = count(L, 'tunnel.connected');
      const disconnectsBefore = count(L, 'tunnel.disconnected');
      const stateBefore = await chain.state('L');
      await chain.stop('G');
      await nthEvent(L, 'tunnel.disconnected', disconnectsBefore + 1, () => true, 5000);
      await chain.start('G');
      await nthEvent(L, 'tunnel.connected', connectsBefore + 1, () => true, 5000);
      const ok = await chain.until200('/restart-g-after/echo', 5000);
      assert.equal(JSON.parse(ok.text).url, '/a/restart-g-after/echo');
      const toG = at((await chain.state('L')).tunnels, 0);
      assert.equal(toG.connects, at(stateBefore.tunnels, 0).connects + 1);
      assert.equal(toG.connected, true);
    });

    test('start order does not matter: L2, then L, then G', async () => {
      await chain.stopAll();
      await chain.startAll(['L2', 'L', 'G']);
      const ok = await chain.until200('/reverse/echo', 10_000);
      assert.equal(JSON.parse(ok.text).url, '/a/reverse/echo');
      assert.ok(count(chain.proc('L2'), 'tunnel.redial') >= 1, 'L2 started before its server and had to redial');
      assert.ok(count(chain.proc('L'), 'tunnel.redial') >= 1, 'L started before its server and had to redial');
    });
  });

  describe('name-claim race: two client processes present the same name', { concurrency: 1 }, () => {
    test('claim "replace": the newer connection wins, the older logs 4409 (error) and its stream fails 502, requests go to the newer', async () => {
      // A waits 30 s before redialling once displaced, so the newer connection keeps the name for this test.
      const t = await twins('replace', 'replace', { reconnectMin: 30, reconnectMax: 30 });
      const s = t.s;
      const a = await WestProcess.start(t.aFile);
      try {
        await s.waitForEvent('tunnel.client_connected');
        await until200(`${t.url}/replace-a/echo`, 5000);
        assert.ok(await bytesOut(a.controlUrl()) > 0, 'the first request went through A');
        const inFlight = watchExchange(`${t.url}/replace-hang/hang`);
        await seenAtOrigin('/twin/replace-hang/hang');

        const b = await WestProcess.start(t.bFile);
        await b.waitForEvent('tunnel.connected', () => true, 5000);
        const reclaimed = await s.waitForEvent('tunnel.name_reclaimed', () => true, 5000);
        assert.equal(reclaimed.peer, 'twin');
        const displaced = await a.waitForEvent('tunnel.disconnected', () => true, 5000);
        assert.equal(displaced.code, 4409);
        assert.equal(displaced.level, 'error');

        const cut = await within(5000, 'the stream of the displaced connection to fail', inFlight.ending);
        assert.equal(cut.kind, 'complete', JSON.stringify(cut));
        if (cut.kind === 'complete') assertFailure(cut, 502, 'connection_terminated', 'replace-S');

        const bBefore = await bytesOut(b.controlUrl());
        const aBefore = await bytesOut(a.controlUrl());
        const n = 200_000;
        const r = await fetchText(`${t.url}/replace-b/bytes/${n}`);
        assert.equal(r.status, 200, r.text);
        assert.ok(await bytesOut(b.controlUrl()) - bBefore >= n, `the request after the takeover went through B; the server logged:\n${tunnelLog(s)}`);
        assert.equal(await bytesOut(a.controlUrl()), aBefore, 'A carried nothing after it was displaced');
        assert.deepEqual((await stateOf(t.sControl)).server!.peers.map((p) => p.name), ['twin']);
        assert.equal(at((await stateOf(a.controlUrl())).tunnels, 0).connected, false);
        await b.stop();
      } finally {
        await a.stop();
        await s.stop();
      }
    });

    test('claim "refuse": the second is refused 409 while the first is connected (its redial is logged at error with the reason), and gets the name once it is free', async () => {
      const t = await twins('refuse', 'refuse', {});
      const s = t.s;
      const a = await WestProcess.start(t.aFile);
      try {
        await s.waitForEvent('tunnel.client_connected');
        const b = await WestProcess.start(t.bFile);
        const redial = await b.waitForEvent('tunnel.redial', () => true, 5000);
        assert.equal(redial.level, 'error');
        assert.match(String(redial.reason), /409/);
        assert.match(String(redial.reason), /already connected/);
        await s.waitForEvent('tunnel.client_refused', () => true, 5000);
        assert.equal(count(a, 'tunnel.disconnected'), 0, 'the holder of the name was not disturbed');

        const aBefore = await bytesOut(a.controlUrl());
        const n = 200_000;
        const r = await fetchText(`${t.url}/refuse-a/bytes/${n}`);
        assert.equal(r.status, 200, r.text);
        assert.ok(await bytesOut(a.controlUrl()) - aBefore >= n, `requests go to the holder, A; the server logged:\n${tunnelLog(s)}`);
        assert.equal(at((await stateOf(b.controlUrl())).tunnels, 0).connected, false);

        await a.stop();
        await b.waitForEvent('tunnel.connected', () => true, 5000);
        const bBefore = await bytesOut(b.controlUrl());
        await until200(`${t.url}/refuse-b/bytes/${n}`, 5000);
        assert.ok(await bytesOut(b.controlUrl()) - bBefore >= n, 'once A left, requests go to B');
        await b.stop();
      } finally {
        await a.stop();
        await s.stop();
      }
    });
  });

  describe('west.peerWait: requests for a missing peer wait for it, boundedly', { concurrency: 1 }, () => {
    // Long enough that a peer slow to come back on a loaded machine still comes within it: a
    // request that outwaited it would be answered 503, and the tests want the 200.
    const PEER_WAIT_S = 30;
    // L dials G through a Link the test opens and cuts, so "the peer comes back" takes one
    // redial delay (≤ reconnectMax 1 s) instead of a process start.
    let link: Link;
    let p: Pair;
    let g: WestProcess;
    let l: WestProcess;
    before(async () => {
      ({ pair: p, g, l } = await Pair.launch(async () => {
        await link?.close();
        const serverPort = await freePort();
        link = await Link.listen(serverPort);
        return { dir: fixture.dir, tag: 'wait', originPort: origin.port, serverPort, lDials: `ws://127.0.0.1:${link.port}`, gWest: { peerWait: PEER_WAIT_S }, lWest: { peerWait: PEER_WAIT_S } };
      }));
      await l.waitForEvent('tunnel.redial');
    });
    after(async () => {
      await l?.stop();
      await g?.stop();
      await link?.close();
    });

    /** Starts a request while the link is cut, checks it waits, opens the link: it must succeed. */
    async function waitsThenSucceeds(url: string, waitingAt: string, performedAt: string): Promise<void> {
      link.cut();
      await waitFor('the tunnel to be down', async () => !at((await stateOf(p.control.L)).tunnels, 0).connected, 5000);
      const waiting = watchExchange(url);
      await waitFor(`the request to wait at ${waitingAt}`, async () => at((await stateOf(waitingAt)).listeners, 0).inFlight === 1, 5000);
      link.open();
      // Served by the returning peer: a request whose wait ran out would get 503, not this 200.
      const end = await within(TIMER_DEADLINE_MS, 'the waiting request to finish', waiting.ending);
      assert.equal(end.kind, 'complete');
      if (end.kind === 'complete') {
        assert.equal(end.status, 200, end.text);
        assert.equal(JSON.parse(end.text).url, performedAt);
      }
    }

    test('peerWait 30, en listener: a request made while L is away waits and succeeds once L connects', async () => {
      await waitsThenSucceeds(`${p.gUrl}/wait-en/echo`, p.control.G, '/atL/wait-en/echo');
    });

    test('peerWait 30, ea listener: a request made while the tunnel to G is down waits and succeeds once it is up', async () => {
      await waitsThenSucceeds(`${p.lUrl}/wait-ea/echo`, p.control.L, '/atG/wait-ea/echo');
    });

    test('peerWait 1 and the peer never comes: 503 once the second is over, not before', async (t) => {
      const { p, g } = await retryIfPortTaken(async () => {
        const p = await Pair.create({ dir: fixture.dir, tag: 'wait-none', originPort: origin.port, gWest: { peerWait: 1 } });
        return { p, g: await p.start('G') };
      });
      try {
        const started = Date.now();
        const r = await within(TIMER_DEADLINE_MS, 'the answer after peerWait', fetchText(`${p.gUrl}/wait-none/echo`, { timeoutMs: 20_000 }));
        const ms = Date.now() - started;
        assertFailure(r, 503, 'destination_unavailable', p.names.G);
        assert.ok(ms >= 1000 - CLOCK_SLACK_MS, `answered after ${ms} ms, before peerWait 1 s was over`);
        t.diagnostic(`503 ${ms} ms after the request (peerWait 1 s)`);
      } finally {
        await g.stop();
      }
    });

    test('peerWait 0: 503 at once', async () => {
      const { p, g } = await retryIfPortTaken(async () => {
        const p = await Pair.create({ dir: fixture.dir, tag: 'wait-zero', originPort: origin.port, gWest: { peerWait: 0 } });
        return { p, g: await p.start('G') };
      });
      try {
        const id = `wait-zero-${Date.now()}`;
        const r = await fetchText(`${p.gUrl}/wait-zero/echo`, { headers: { 'X-Request-Id': id } });
        assertFailure(r, 503, 'destination_unavailable', p.names.G);
        // G's own account of the request (this process's clock would also count connecting and
        // its own turns on a busy machine): no wait, where the shortest one here is a second.
        const access = await g.waitForEvent('access', (e) => e.id === id);
        assert.equal(access.status, 503);
        assert.ok(Number(access.ms) < 1000, `G took ${String(access.ms)} ms to answer: it waited`);
      } finally {
        await g.stop();
      }
    });
  });

  describe('a node paused for less than two heartbeats', { concurrency: 1 }, () => {
    const ctx = suitePair('pause', {});

    test('does not blame its live peer for its own silence when it resumes', async () => {
      const { p, l } = ctx;
      const heartbeatMs = SHORT_TIMERS.heartbeat! * 1000;
      const before = count(l, 'tunnel.heartbeat_timeout');
      // Paused past 1.5 intervals (G may drop L: from G's side L was silent), but under two.
      // G kept pinging the whole time; its pings wait in L's socket buffer.
      l.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 1.7 * heartbeatMs));
      l.kill('SIGCONT');
      // A request through L after the resume: its access line follows, on the same ordered
      // stderr pipe, anything L logged when it woke up.
      const id = `after-pause-${Date.now()}`;
      await fetchText(`${p.lUrl}/pause/echo`, { headers: { 'X-Request-Id': id } });
      await l.waitForEvent('access', (e) => e.id === id, 5000);
      const blamed = l.events.filter((e) => e.event === 'tunnel.heartbeat_timeout').slice(before);
      assert.deepEqual(blamed, [], 'L dropped G for a silence that was its own pause (G pinged throughout)');
      await until200(`${p.lUrl}/pause-after/echo`);
    });
  });

  describe('west.maxStreams 5 (on L): the limit answers 503 and the tunnel stays up', { concurrency: 1 }, () => {
    const ctx = suitePair('streams', { west: { ...SHORT_TIMERS, responseTimeout: 20 }, lWest: { maxStreams: 5 } });

    for (const where of ['listener side', 'far end'] as const) {
      test(`on the ${where}: of 10 parallel /hang requests 5 get 503 connection_limit_reached at once; later requests succeed`, async () => {
        const { p, l } = ctx;
        // Listener side: L's own ea listener opens the streams. Far end: G's en listener opens
        // them towards L, which refuses the OPENs beyond its limit.
        const url = where === 'listener side' ? p.lUrl : p.gUrl;
        const marker = `hang-${where.replace(' ', '-')}-`;
        const connectsBefore = at((await stateOf(p.control.L)).tunnels, 0).connects;
        const burst = Array.from({ length: 10 }, (_, i) => watchExchange(`${url}/${marker}${i}/hang`));
        const answered: Ending[] = [];
        for (const x of burst) void x.ending.then((e) => answered.push(e));
        // "At once" means before any timer could answer: the deadline is under the 20 s
        // responseTimeout, and below each answer must be the limit's 503, not a timeout's 504.
        await waitFor('5 answers before any timeout', () => answered.length >= 5, TIMER_DEADLINE_MS);
        for (const e of answered) {
          assert.equal(e.kind, 'complete', JSON.stringify(e));
          if (e.kind === 'complete') assertFailure(e, 503, 'connection_limit_reached', p.names.L);
        }
        await waitFor('5 requests at the origin', () => origin.seen.filter((s) => s.url.includes(marker)).length === 5);
        assert.equal(answered.length, 5, 'the 5 requests within the limit are still waiting for the origin');

        for (const x of burst) x.req.destroy();
        await Promise.all(burst.map((x) => x.ending));
        await waitFor('streams to be released', async () => at((await stateOf(p.control.L)).tunnels, 0).streams === 0 &&
          at((await stateOf(p.control.G)).server!.peers, 0).streams === 0, 5000);
        for (const u of [p.lUrl, p.gUrl]) {
          const ok = await fetchText(`${u}/streams-after/echo`);
          assert.equal(ok.status, 200, ok.text);
        }
        assert.equal(at((await stateOf(p.control.L)).tunnels, 0).connects, connectsBefore, 'the tunnel was never dropped');
        assert.equal(count(l, 'tunnel.disconnected'), 0);
      });
    }
  });

  describe('west.idleTimeout 1: streams that move no bytes are cut', { concurrency: 1 }, () => {
    const ctx = suitePair('idle', { west: { ...SHORT_TIMERS, idleTimeout: 1 } });

    test('a /stall download that stops moving bytes is cut once idleTimeout is over (not before); the origin request is cancelled', async (t) => {
      const { p, l } = ctx;
      const id = `idle-stall-${Date.now()}`;
      const started = Date.now();
      const stall = watchExchange(`${p.lUrl}/idle-stall/stall`, { headers: { 'X-Request-Id': id } });
      const head = await within(5000, 'head of /stall', stall.head);
      assert.equal(head.statusCode, 200);
      await within(5000, 'the first KiB of /stall', stall.received(1024));
      const seen = await seenAtOrigin('/atG/idle-stall/stall');
      // The deadline is far below the default idleTimeout (300 s): a cut within it is the 1 s one.
      const end = await within(TIMER_DEADLINE_MS, 'the stalled download to be cut', stall.ending);
      const ms = Date.now() - started;
      assert.equal(end.kind, 'broken', 'a cut download must not look complete');
      // The stream was last active after this request was sent, so it cannot be cut sooner.
      assert.ok(ms >= 1000 - CLOCK_SLACK_MS, `cut ${ms} ms after the request, before the 1 s idleTimeout`);
      t.diagnostic(`cut ${ms} ms after the request (idleTimeout 1 s)`);
      const access = await l.waitForEvent('access', (e) => e.id === id);
      assert.equal(access.error, 'idle_timeout', `L's access line: ${JSON.stringify(access)}`);
      await waitFor('the origin request to be cancelled', () => seen.aborted, 5000);
      const ok = await fetchText(`${p.lUrl}/idle-after/echo`);
      assert.equal(ok.status, 200, ok.text);
      assert.equal(count(l, 'tunnel.disconnected'), 0, 'the tunnel stays up');
    });

    test('a request whose origin never answers gets 504 connection_read_timeout once idleTimeout is over (not before)', async (t) => {
      const { p } = ctx;
      const started = Date.now();
      // The deadline is far below the default idleTimeout (300 s): a 504 within it is the 1 s one
      // (responseTimeout, 30 s by default, would also answer 504 but with another Proxy-Status).
      const r = await within(TIMER_DEADLINE_MS, 'the idle request to be answered', fetchText(`${p.lUrl}/idle-hang/hang`, { timeoutMs: 20_000 }));
      const ms = Date.now() - started;
      // Either end's idle sweep may fire first; the answer names the node that cut the stream.
      const node = String(r.headers['proxy-status']).startsWith(`"${p.names.G}"`) ? p.names.G : p.names.L;
      assertFailure(r, 504, 'connection_read_timeout', node);
      assert.ok(ms >= 1000 - CLOCK_SLACK_MS, `answered after ${ms} ms, before the 1 s idleTimeout`);
      t.diagnostic(`504 ${ms} ms after the request (idleTimeout 1 s), from ${node}`);
    });
  });
});

// Alone, after the others: a burst of uploads saturates the CPU, which would starve their timers.
describe('kill -9 of a tunnel server with uploads in flight', { concurrency: 1 }, () => {
  const ctx = suitePair('kill-up', {});

  test('each upload through the lost tunnel is answered 502 connection_terminated (or cut), never 500', async () => {
    // Which answer an upload gets depends on where its writes are when the socket dies, so the
    // kill is repeated over a few rounds of uploads.
    const { p } = ctx;
    const n = 16;
    const answers: string[] = [];
    for (let round = 0; round < 3; round++) {
      if (round > 0) {
        ctx.g = await p.start('G');
        await until200(`${p.lUrl}/kill-up-${round}/echo`);
      }
      const marker = `/kill-upload-${round}-`;
      const uploads = Array.from({ length: n }, (_, i) => watchExchange(`${p.lUrl}${marker}${i}/echo`, {
        method: 'POST', body: patternBody(256 * 1024 * 1024), headers: { 'Content-Type': 'application/octet-stream' },
      }));
      await waitFor('every upload to reach the origin', () => origin.seen.filter((s) => s.url.includes(marker)).length === n, 10_000);
      ctx.g.kill('SIGKILL');
      await ctx.g.exited;
      const endings = await within(10_000, 'every upload to end after G died', Promise.all(uploads.map((u) => u.ending)));
      answers.push(...endings.map((e) => (e.kind === 'broken' ? `cut (${e.error})` : `${e.status} ${String(e.headers['proxy-status'])}`)));
    }
    const wrong = answers.filter((a) => !a.startsWith('cut') && !/^502 "[^"]+"; error=connection_terminated/.test(a));
    assert.deepEqual(wrong, [], `${wrong.length} of ${answers.length} uploads got another answer than 502 connection_terminated`);
  });
});
