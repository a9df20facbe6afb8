/**
 * SIGTERM with long-lived connections through a listener (issue 11, item 8): a WebSocket
 * carried through the node must not hold its shutdown past the drain time, nor keep its
 * tunnels redialling.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { freePort } from '../helpers/net.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

let wss: WebSocketServer;
let cleanup: (() => Promise<void>) | undefined;

before(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
});

after(async () => {
  await stopAll();
  for (const c of wss.clients) c.terminate();
  wss.close();
  await cleanup?.();
});

test('SIGTERM with a WebSocket open through the listener exits within the drain time', async () => {
  const [sp, lp] = [await freePort(), await freePort()];
  let dir: string;
  ({ dir, cleanup } = await tempDir('west-shutdown-'));
  const config = await writeConfig(dir, 'self.json', {
    west: { nm: 'self', drainTimeout: 1 },
    wsts: { sp: `ws://127.0.0.1:${sp}` },
    proxy: { [`http://127.0.0.1:${lp}`]: { ea: `ws://127.0.0.1:${sp}`, '/ws': { ou: `http://127.0.0.1:${(wss.address() as AddressInfo).port}/` } } },
  });
  const node = await WestProcess.start(config);
  await node.waitForEvent('tunnel.connected');
  const ws = new WebSocket(`ws://127.0.0.1:${lp}/ws/x`);
  ws.on('error', () => { /* the node going away ends it */ });
  await once(ws, 'open');
  ws.send('hello');
  await once(ws, 'message');

  const started = Date.now();
  node.kill('SIGTERM');
  // Drain is 1 s; the close of what remains is bounded too. Well before a second signal.
  const timer = setTimeout(() => node.kill('SIGKILL'), 15_000);
  const code = await node.exited;
  clearTimeout(timer);
  assert.equal(code, 0, `exit code ${code} after ${Date.now() - started} ms:\n${node.stderr.slice(-1500)}`);
  assert.ok(!node.events.some((e) => e.event === 'tunnel.redial' && Date.parse(String(e.time)) > started + 2000),
    'no redial well after SIGTERM');
});

test('SIGTERM past the drain time: a request still waiting is answered 503 draining, and the access line says so', async () => {
  const { Origin } = await import('../helpers/origin.js');
  const { Pair } = await import('../helpers/chain.js');
  const { fetchText } = await import('../helpers/net.js');
  const origin = new Origin();
  await origin.listen();
  const { dir, cleanup: done } = await tempDir('west-drain-');
  try {
    const { pair, g } = await Pair.launch(() => ({ dir, tag: 'drain', originPort: origin.port, gWest: { drainTimeout: 1 } }));
    await g.waitForEvent('tunnel.client_connected');
    const answer = fetchText(`${pair.gUrl}/hang`, { timeoutMs: 15_000 });
    await g.waitForEvent('proxy.forward', () => true, 10_000).catch(() => undefined);
    // The request is in flight at L's origin (which never answers) when G is told to stop.
    await (await import('../helpers/net.js')).waitFor('the origin holds the request', () => origin.seen.some((r) => r.url.endsWith('/hang')));
    g.kill('SIGTERM');
    const res = await answer;
    assert.equal(res.status, 503, res.text);
    assert.match(String(res.headers['proxy-status']), /error=destination_unavailable/);
    assert.equal(await g.exited, 0);
    const access = g.events.find((e) => e.event === 'access');
    assert.deepEqual([access?.status, access?.completed, access?.error], [503, true, 'draining']);
    const drain = g.events.find((e) => e.event === 'node.drain_timeout');
    assert.equal(drain?.inFlight, 1, 'one request in flight, counted once');
  } finally {
    await stopAll();
    await origin.close();
    await done();
  }
});
