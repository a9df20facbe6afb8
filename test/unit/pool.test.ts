/**
 * Pools (src/tunnel/pool.ts) in one process: the X-West-Pool header read case by case, a
 * client of three connections as one peer of the server, streams spread by fewest open, and
 * the cap of members per pool.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { silentLogger } from '../../src/log.js';
import { TunnelClient } from '../../src/tunnel/client.js';
import type { OpenHead } from '../../src/tunnel/frame.js';
import { MAX_POOL_MEMBERS, poolClaimOf } from '../../src/tunnel/pool.js';
import { TunnelServer } from '../../src/tunnel/server.js';
import type { TunnelStream } from '../../src/tunnel/stream.js';
import { waitFor } from '../helpers/net.js';

const TUNING = { recvWindow: 64 * 1024, heartbeatMs: 5000, maxStreams: 100, idleTimeoutMs: 0 };
const ID = '0123456789abcdef0123456789abcdef';

const closing: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of closing.reverse()) await c();
});

async function tunnelServer(): Promise<TunnelServer> {
  const server = new TunnelServer({
    ...TUNING,
    config: { url: 'ws://127.0.0.1:0', host: '127.0.0.1', port: 0, tls: false, claim: 'refuse', allowAddresses: [], allowNames: [] },
    localName: 'node-S',
    log: silentLogger,
  });
  await server.listen();
  closing.push(() => server.close());
  return server;
}

const cases: [string, string | undefined, string | { id: string; index: number; size: number } | undefined][] = [
  ['absent: a client of one connection', undefined, undefined],
  ['member 0 of 4', `${ID} 0/4`, { id: ID, index: 0, size: 4 }],
  ['member 15 of 16', `${ID} 15/16`, { id: ID, index: 15, size: 16 }],
  ['an index past the size', `${ID} 4/4`, 'error'],
  ['a size above the cap', `${ID} 0/17`, 'error'],
  ['a size of 0', `${ID} 0/0`, 'error'],
  ['an id too short', 'abc 0/2', 'error'],
  ['an id with a space', `${ID} x 0/2`, 'error'],
  ['no place', ID, 'error'],
  ['empty', '', 'error'],
];
for (const [what, value, expected] of cases) {
  test(`X-West-Pool ${what}`, () => {
    const got = poolClaimOf(value === undefined ? {} : { 'x-west-pool': value });
    if (expected === 'error') assert.ok(got instanceof Error, JSON.stringify(got));
    else assert.deepEqual(got, expected);
  });
}

function head(i: number): OpenHead {
  return { kind: 'http', method: 'GET', url: `http://127.0.0.1:1/${i}`, headers: [], hops: 1, to: '', id: `pool-${i}` };
}

test('a client of three connections is one peer of the server (even under claim "refuse"); streams go to the member with the fewest open', async () => {
  const server = await tunnelServer();
  const client = new TunnelClient({
    ...TUNING,
    config: { url: `ws://127.0.0.1:${server.port}`, name: 'node-C', early: true, connections: 3 },
    connectTimeoutMs: 5000, reconnectMinMs: 100, reconnectMaxMs: 1000, log: silentLogger,
  });
  closing.push(() => client.close());
  // Streams are opened and dropped here, never answered: their errors are expected.
  const quiet = (st: TunnelStream): void => { st.on('error', () => { /* reset or closed: expected */ }); };
  server.on('session', (s) => s.on('stream', quiet));
  client.on('session', (s) => s.on('stream', quiet));
  client.start();
  const pool = await waitFor('three members at the server', () => (server.get('node-C')?.size === 3 ? server.get('node-C') : undefined), 5000);
  await waitFor('three members at the client', () => client.members === 3, 5000);
  assert.equal(server.pools.size, 1);
  for (let i = 0; i < 6; i++) quiet(pool.openStream(head(i)));
  assert.deepEqual(pool.members.map((m) => m.streams.size), [2, 2, 2]);
  // Two streams end on the first member: the next two go there.
  const first = pool.members[0];
  assert.ok(first);
  for (const s of [...first.streams.values()]) s.reset('cancel', 'test: the stream ends');
  await waitFor('the first member to have none open', () => first.streams.size === 0, 5000);
  quiet(pool.openStream(head(6)));
  quiet(pool.openStream(head(7)));
  assert.deepEqual(pool.members.map((m) => m.streams.size), [2, 2, 2]);
  // From the client's side too.
  const opener = client.opener;
  assert.ok(opener);
  for (let i = 0; i < 3; i++) quiet(opener.openStream(head(10 + i)));
  assert.deepEqual(client.pool?.members.map((m) => m.streams.size), [1, 1, 1]);
});

test(`a pool takes at most ${MAX_POOL_MEMBERS} connections; more are answered 409`, async () => {
  const server = await tunnelServer();
  const dial = (index: number): Promise<WebSocket | number> => new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}`, ['west.v3'], { headers: { 'X-West-Node': 'node-P', 'X-West-Pool': `${ID} ${index % 16}/16` } });
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('error', () => { /* settled above */ });
  });
  const open: WebSocket[] = [];
  closing.push(() => { for (const ws of open) ws.terminate(); });
  for (let i = 0; i < MAX_POOL_MEMBERS; i++) {
    const ws = await dial(i);
    assert.ok(ws instanceof WebSocket, `member ${i} is admitted`);
    open.push(ws);
  }
  await waitFor('every member in the pool', () => server.get('node-P')?.size === MAX_POOL_MEMBERS, 5000);
  assert.equal(await dial(16), 409);
  assert.equal(server.get('node-P')?.size, MAX_POOL_MEMBERS);
});
