/**
 * Connection pools (issue 15, item 6): a site that keeps four tunnel connections to its hub
 * (`wstc[url].connections: 4`) is one peer there. Streams are spread over the connections,
 * a lost connection costs only its own streams (the others complete, hash-checked) and redials
 * into the pool, a rival instance of the same name is judged by the claim rules against the
 * whole pool, a pool id is no credential, and a hub that cannot pool (held at west.v2, as the
 * release before) gets one connection that works. The site dials through a relay that keeps
 * each connection apart, so the test can cut one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import type { NodeState } from '../../src/control/state.js';
import { SHORT_TIMERS, watchExchange, within } from '../helpers/chain.js';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { Origin, patternByte, patternSha256 } from '../helpers/origin.js';
import { Mesh } from '../helpers/mesh.js';
import { PoolRelay } from '../helpers/pool-relay.js';
import { retryIfPortTaken, runCli, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const HUB = 'pool-hub';
const SITE = 'pool-site';
const TOKEN = 'pool-token-0123456789';
const MEMBERS = 4;

/** An origin whose `/gate/<n>` sends 64 KiB, then the rest of n pattern bytes once released. */
class GatedOrigin {
  private readonly server = http.createServer((req, res) => this.route(req, res));
  private waiting: (() => void)[] = [];
  private open = false;

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** Holds every download after its first 64 KiB until release(). */
  hold(): void {
    this.open = false;
  }

  release(): void {
    this.open = true;
    for (const w of this.waiting.splice(0)) w();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    const n = Number(/\/(\d+)$/.exec(req.url ?? '')?.[1] ?? 0);
    const body = Buffer.alloc(n);
    for (let i = 0; i < n; i++) body[i] = patternByte(i);
    const first = Math.min(n, 64 * 1024);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
    res.write(body.subarray(0, first));
    const rest = (): void => { res.end(body.subarray(first)); };
    if (this.open) rest();
    else this.waiting.push(rest);
  }
}

interface Fixture {
  dir: string;
  origin: Origin;
  gated: GatedOrigin;
  gatedPort: number;
  cleanup(): Promise<void>;
}

const fx = {} as Fixture;
before(async () => {
  const t = await tempDir('west-pool-');
  fx.dir = t.dir;
  fx.origin = new Origin();
  await fx.origin.listen();
  fx.gated = new GatedOrigin();
  fx.gatedPort = await fx.gated.listen();
  fx.cleanup = t.cleanup;
});
after(async () => {
  await fx.origin?.close();
  await fx.gated?.close();
  await fx.cleanup?.();
});

async function stateOf(p: WestProcess): Promise<NodeState> {
  const r = await fetchText(`${p.controlUrl()}/state.json`, { timeoutMs: 5000 });
  return JSON.parse(r.text) as NodeState;
}

/** A hub and a site dialing it through a PoolRelay with `connections` connections. */
async function launch(tag: string, hubWest: Record<string, unknown> = {}, connections = MEMBERS): Promise<{ hub: WestProcess; site: WestProcess; relay: PoolRelay; hubUrl: string; siteUrl: string; hubFile: string; hubConfig: Record<string, unknown> }> {
  return retryIfPortTaken(async () => {
    const serverPort = await freePort();
    const relay = await PoolRelay.listen(serverPort);
    const dial = `ws://127.0.0.1:${relay.port}`;
    const origin = `http://127.0.0.1:${fx.origin.port}`;
    const hubConfig = {
      west: { nm: HUB, cp: '127.0.0.1:0', ...SHORT_TIMERS, ...hubWest },
      wsts: { sp: `ws://127.0.0.1:${serverPort}`, tokens: { [SITE]: TOKEN } },
      proxy: { 'http://127.0.0.1:0': { en: SITE, '/px': { ou: `${origin}/atSite` }, '/gate': { ou: `http://127.0.0.1:${fx.gatedPort}/gate` } } },
    };
    const siteConfig = {
      west: { nm: SITE, cp: '127.0.0.1:0', ...SHORT_TIMERS },
      wstc: { [dial]: { connections, token: TOKEN } },
      proxy: { 'http://127.0.0.1:0': { ea: dial, '/px': { ou: `${origin}/atHub` } } },
    };
    const hubFile = await writeConfig(fx.dir, `${tag}-hub`, hubConfig);
    const hub = await WestProcess.start(hubFile).catch(async (err: unknown) => { await relay.close(); throw err; });
    let site: WestProcess;
    try {
      site = await WestProcess.start(await writeConfig(fx.dir, `${tag}-site`, siteConfig));
    } catch (err) {
      await hub.stop();
      await relay.close();
      throw err;
    }
    return {
      hub, site, relay, hubFile, hubConfig,
      hubUrl: `${hub.listenerUrl('http://127.0.0.1:0')}/px`, siteUrl: `${site.listenerUrl('http://127.0.0.1:0')}/px`,
    };
  });
}

/** The hub's one peer, once it has `members` connections. */
async function peerWith(hub: WestProcess, members: number): Promise<NonNullable<NodeState['server']>['peers'][number]> {
  return waitFor(`${SITE} to be one peer of ${members} connections at the hub`, async () => {
    const peers = (await stateOf(hub)).server?.peers ?? [];
    return peers.length === 1 && peers[0]?.members === members ? peers[0] : undefined;
  }, 20_000);
}

describe('a site with four connections to its hub', () => {
  let hub: WestProcess;
  let site: WestProcess;
  let relay: PoolRelay;
  let hubUrl: string;
  let siteUrl: string;
  let hubConfig: Record<string, unknown>;

  before(async () => {
    ({ hub, site, relay, hubUrl, siteUrl, hubConfig } = await launch('pool'));
    await peerWith(hub, MEMBERS);
  });
  after(async () => {
    await site?.stop();
    await hub?.stop();
    await relay?.close();
  });

  test('the hub shows one peer of four connections (state, status page, metrics, dump); the site one tunnel of four', async () => {
    const s = await stateOf(hub);
    assert.equal(s.server?.peers.length, 1);
    assert.equal(s.server?.peers[0]?.name, SITE);
    assert.equal(s.server?.peers[0]?.pool?.length, MEMBERS);
    const t = (await stateOf(site)).tunnels;
    assert.equal(t.length, 1);
    assert.equal(t[0]?.members, MEMBERS);
    assert.equal(t[0]?.connections, MEMBERS);
    const html = { headers: { Accept: 'text/html' } };
    const page = await fetchText(`${hub.controlUrl()}/`, html);
    const peers = /<section id="peers">.*?<\/section>/s.exec(page.text)?.[0] ?? '';
    assert.equal(peers.split('<tbody>')[1]?.split('<tr>').length, 2, `one row for the peer on the status page: ${peers}`);
    assert.match(peers, new RegExp(`<span class="v">${SITE}</span>`));
    assert.match(peers, new RegExp(`${MEMBERS} connections`));
    const tunnels = /<section id="tunnels">.*?<\/section>/s.exec((await fetchText(`${site.controlUrl()}/`, html)).text)?.[0] ?? '';
    assert.match(tunnels, new RegExp(`${MEMBERS} of ${MEMBERS} connections`));
    // The original's dump: one client entry, with its connection count.
    const dump = (await fetchText(`${hub.controlUrl()}/`)).text;
    const clients = /"clients":\[(.*?)\]/s.exec(dump)?.[1] ?? '';
    assert.equal(clients.split('"name":').length - 1, 1, dump);
    assert.match(clients, new RegExp(`"members":${MEMBERS},`));
    const metrics = (await fetchText(`${hub.controlUrl()}/metrics`)).text;
    assert.match(metrics, new RegExp(`^west_tunnel_members\\{side="server",peer="${SITE}"\\} ${MEMBERS}$`, 'm'));
    assert.match(metrics, new RegExp(`^west_tunnel_up\\{side="server",peer="${SITE}"\\} 1$`, 'm'));
    const siteMetrics = (await fetchText(`${site.controlUrl()}/metrics`)).text;
    assert.match(siteMetrics, new RegExp(`^west_tunnel_members\\{side="client",peer="${HUB}",url="[^"]+"\\} ${MEMBERS}$`, 'm'));
    // `west state`: one peer of four connections, one tunnel of four.
    const cli = await runCli(['state', hub.controlUrl()]);
    assert.match(cli.stdout, new RegExp(`^ {2}${SITE} \\(${MEMBERS} connections\\) from `, 'm'), cli.stdout);
    assert.match(cli.stdout, /1 peer connected/);
    const siteCli = await runCli(['state', site.controlUrl()]);
    assert.match(siteCli.stdout, new RegExp(`connected to ${HUB} \\(${MEMBERS} of ${MEMBERS} connections\\)`), siteCli.stdout);
    // One name claim, once: four connections, one peer.
    assert.equal(hub.events.filter((e) => e.event === 'tunnel.name_reclaimed').length, 0);
    assert.equal(hub.events.filter((e) => e.event === 'tunnel.client_connected' && e.peer === SITE).length, MEMBERS);
  });

  test('200 concurrent requests each way all succeed, spread over every connection', async () => {
    for (const [from, url, node] of [['hub', hubUrl, hub], ['site', siteUrl, site]] as const) {
      const before = await stateOf(node);
      const pool = (s: NodeState) => (from === 'hub' ? s.server?.peers[0]?.pool : s.tunnels[0]?.pool) ?? [];
      const key = (m: { port: number; since: string }): string => `${m.port} ${m.since}`;
      const opened = new Map(pool(before).map((m) => [key(m), m.streamsOpened]));
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => fetchText(`${url}/c${i}/echo`, { timeoutMs: 30_000 })));
      assert.deepEqual(results.filter((r) => r.status !== 200).map((r) => r.status), [], `every request from the ${from} succeeds`);
      const carried = pool(await stateOf(node)).map((m) => m.streamsOpened - (opened.get(key(m)) ?? 0));
      assert.equal(carried.length, MEMBERS);
      assert.ok(carried.every((n) => n > 0), `every connection carried some of the ${from}'s streams: ${carried.join(', ')}`);
      assert.equal(carried.reduce((a, b) => a + b, 0), 200);
    }
  });

  test('a lost connection costs only its own streams; the others complete, and it redials into the pool', async () => {
    const SIZE = 1024 * 1024;
    fx.gated.hold();
    const downloads = Array.from({ length: 8 }, (_, i) => watchExchange(`${hubUrl.replace(/\/px$/, '')}/gate/d${i}/${SIZE}`));
    await within(20_000, 'every download to start', Promise.all(downloads.map((d) => d.received(64 * 1024))));
    const peer = at0((await stateOf(hub)).server?.peers);
    const busy = (peer.pool ?? []).find((m) => m.streams > 0);
    assert.ok(busy, 'a connection with downloads on it');
    const conn = relay.live().find((c) => c.upstreamPort === busy.port);
    assert.ok(conn, `the relay carries the connection from port ${busy.port}`);
    conn.cut();
    await waitFor('the hub to see the connection gone', async () => (at0((await stateOf(hub)).server?.peers).members ?? 0) < MEMBERS, 10_000);
    fx.gated.release();
    const endings = await within(30_000, 'every download to end', Promise.all(downloads.map((d) => d.ending)));
    const complete = endings.filter((e) => e.kind === 'complete');
    for (const e of complete) {
      assert.equal(e.status, 200);
      assert.equal(e.sha256, patternSha256(SIZE));
    }
    const failed = endings.filter((e) => e.kind === 'broken');
    assert.equal(failed.length, busy.streams, `the ${busy.streams} streams of the lost connection fail, no other: ${JSON.stringify(failed)}`);
    assert.ok(complete.length >= 8 - busy.streams && complete.length > 0);
    // The lost member redials on its own; the peer was never down.
    await peerWith(hub, MEMBERS);
    assert.equal(hub.events.filter((e) => e.event === 'tunnel.name_reclaimed').length, 0);
    const r = await fetchText(`${hubUrl}/after-cut/echo`);
    assert.equal(r.status, 200);
  });

  test('a pool id is not a credential: without the token a would-be member is refused (401); with it under "refuse", a rival pool is 409', async () => {
    const head = relay.connections[0]?.head() ?? '';
    const poolId = /x-west-pool: (\S+) /i.exec(head)?.[1];
    assert.ok(poolId, `the pool id is on the wire in the clear: ${head.slice(0, 300)}`);
    const dial = (headers: Record<string, string>): Promise<number | 'open'> => new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${hub.serverPort()}`, ['west.v3'], { headers: { 'X-West-Node': SITE, ...headers } });
      ws.on('open', () => { ws.terminate(); resolve('open'); });
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
      ws.on('error', () => { /* settled above */ });
    });
    assert.equal(await dial({ 'X-West-Pool': `${poolId} 1/${MEMBERS}` }), 401);
    assert.equal(await dial({ 'X-West-Pool': `${poolId} 1/${MEMBERS}`, Authorization: 'Bearer wrong' }), 401);
    assert.equal(await dial({ 'X-West-Pool': 'not a pool', Authorization: `Bearer ${TOKEN}` }), 400);
    // Under "refuse", a rival (another pool id) with the right token is refused while the pool is up.
    await writeConfig(fx.dir, 'pool-hub', { ...hubConfig, wsts: { ...(hubConfig.wsts as object), claim: 'refuse' } });
    const reloaded = hub.events.length;
    hub.kill('SIGHUP');
    await waitFor('the hub to reload', () => hub.events.slice(reloaded).some((e) => e.event === 'node.reloaded'), 10_000);
    assert.equal(await dial({ 'X-West-Pool': `${'f'.repeat(32)} 0/2`, Authorization: `Bearer ${TOKEN}` }), 409);
    assert.equal(await dial({ Authorization: `Bearer ${TOKEN}` }), 409);
    await writeConfig(fx.dir, 'pool-hub', hubConfig);
    hub.kill('SIGHUP');
    await waitFor('the hub to reload again', () => hub.events.slice(reloaded).filter((e) => e.event === 'node.reloaded').length === 2, 10_000);
  });

  test('a rival instance (another pool id) under "replace" takes the name from the whole pool: every member is closed with 4409, logged once', async () => {
    const closes = site.events.length;
    const reclaims = hub.events.filter((e) => e.event === 'tunnel.name_reclaimed').length;
    const rival = new WebSocket(`ws://127.0.0.1:${hub.serverPort()}`, ['west.v3'], {
      headers: { 'X-West-Node': SITE, 'X-West-Pool': `${'e'.repeat(32)} 0/1`, Authorization: `Bearer ${TOKEN}` },
    });
    rival.on('error', () => { /* closed by the test */ });
    try {
      await waitFor('every member of the site to be closed with 4409', () => site.events.slice(closes)
        .filter((e) => e.event === 'tunnel.disconnected' && e.code === 4409).length >= MEMBERS, 15_000);
      const logged = hub.events.filter((e) => e.event === 'tunnel.name_reclaimed').slice(reclaims);
      assert.ok(logged.length >= 1);
      assert.equal(logged[0]?.members, MEMBERS, 'one claim for the whole pool');
    } finally {
      rival.terminate();
    }
    await peerWith(hub, MEMBERS);
  });
});

describe('a site with four connections to a hub that cannot pool (west.wire 2, as the release before)', () => {
  let hub: WestProcess;
  let site: WestProcess;
  let relay: PoolRelay;
  let siteUrl: string;
  let hubUrl: string;

  before(async () => {
    ({ hub, site, relay, siteUrl, hubUrl } = await launch('nopool', { wire: 2 }));
  });
  after(async () => {
    await site?.stop();
    await hub?.stop();
    await relay?.close();
  });

  test('keeps one connection, says so once, and works both ways', async () => {
    await site.waitForEvent('tunnel.pool_unsupported');
    await peerWith(hub, 1);
    for (const url of [siteUrl, hubUrl]) {
      const r = await fetchText(`${url}/old/echo`);
      assert.equal(r.status, 200, r.text);
    }
    assert.equal(relay.connections.length, 1, 'one connection was ever dialled');
    assert.equal((await stateOf(site)).tunnels[0]?.members, 1);
    assert.equal(hub.events.filter((e) => e.event === 'tunnel.name_reclaimed').length, 0);
  });
});

describe('pools in the mesh: A and D each keep three connections to the hub B; A reaches D by name through B', () => {
  let mesh: Mesh;
  let aUrl: string;

  before(async () => {
    const origin = `http://127.0.0.1:${fx.origin.port}`;
    const pooled = { to: 'B', keys: { connections: 3 } };
    mesh = await Mesh.launch(fx.dir, [
      { name: 'B', server: true, west: { transit: { A: ['D'] } } },
      { name: 'A', dials: [pooled], proxy: { 'http://127.0.0.1:0': { en: 'D', '/d': { ou: `${origin}/d` } } } },
      { name: 'D', dials: [pooled], west: { relays: ['B'], egress: { A: [origin] } } },
    ]);
    aUrl = mesh.proc('A').listenerUrl('http://127.0.0.1:0');
    await mesh.route('A', 'D', { via: 'B', hops: 2 });
    await waitFor('three connections each', async () => {
      const peers = (await mesh.state('B')).server?.peers ?? [];
      return peers.length === 2 && peers.every((p) => p.members === 3);
    }, 20_000);
  });
  after(async () => {
    await mesh?.stopAll();
  });

  test('one route per destination; 90 concurrent requests succeed, spread over every connection on both tunnels', async () => {
    const b = await mesh.state('B');
    assert.deepEqual(b.routes.map((r) => r.name).sort(), ['A', 'D']);
    const results = await Promise.all(Array.from({ length: 90 }, (_, i) => fetchText(`${aUrl}/d/m${i}/echo`, { timeoutMs: 30_000 })));
    assert.deepEqual(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text}`), []);
    const a = await mesh.state('A');
    const out = a.tunnels[0]?.pool?.map((m) => m.streamsOpened) ?? [];
    assert.equal(out.length, 3);
    assert.ok(out.every((n) => n > 0), `A's streams over each of its connections: ${out.join(', ')}`);
    const relayed = (await mesh.state('B')).server?.peers.find((p) => p.name === 'D')?.pool?.map((m) => m.streamsOpened) ?? [];
    assert.equal(relayed.length, 3);
    assert.ok(relayed.every((n) => n > 0), `B's relayed streams over each of D's connections: ${relayed.join(', ')}`);
  });
});

function at0<T>(xs: readonly T[] | undefined): T {
  const x = xs?.[0];
  assert.ok(x !== undefined);
  return x;
}
