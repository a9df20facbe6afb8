/**
 * WebSocket upgrades carried through a tunnel (SPEC §2): a real WebSocket client talks to a
 * real WebSocket origin through a west node that tunnels to itself.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import WebSocket, { WebSocketServer } from 'ws';
import { at } from '../helpers/at.js';
import { freePort } from '../helpers/net.js';
import { retryIfPortTaken, stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

let wss: WebSocketServer;
let plain: http.Server;
let listenerUrl: string;
let cleanup: () => Promise<void>;

before(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    ws.send(`hello ${req.url} via ${req.headers.via}`);
    ws.on('message', (m, binary) => ws.send(m, { binary }));
  });
  // An origin that declines to switch protocols.
  plain = http.createServer((_req, res) => { res.writeHead(404, { 'X-Origin': 'yes' }); res.end('no websocket here'); });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));

  const wsPort = (wss.address() as { port: number }).port;
  const plainPort = (plain.address() as { port: number }).port;
  let dir: string;
  ({ dir, cleanup } = await tempDir('west-upgrade-'));
  // The node tunnels to itself, so its config names its tunnel port; the listener is the OS's pick.
  const node = await retryIfPortTaken(async () => {
    const sp = await freePort();
    return WestProcess.start(await writeConfig(dir, 'self.json', {
      west: { nm: 'self' },
      wsts: { sp: `ws://127.0.0.1:${sp}` },
      proxy: {
        'http://127.0.0.1:0': {
          ea: `ws://127.0.0.1:${sp}`,
          '/ws': { ou: `http://127.0.0.1:${wsPort}/socket` },
          '/plain': { ou: `http://127.0.0.1:${plainPort}/` },
        },
      },
    }));
  });
  await node.waitForEvent('tunnel.connected');
  listenerUrl = node.listenerUrl().replace(/^http:/, 'ws:');
});

after(async () => {
  await stopAll();
  wss.close();
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((r) => plain.close(() => r()));
  await cleanup();
});

test('a WebSocket crosses the tunnel: text and binary messages both ways', async () => {
  const ws = new WebSocket(`${listenerUrl}/ws/room?x=1`);
  const messages: { data: Buffer; binary: boolean }[] = [];
  ws.on('message', (data: Buffer, binary) => messages.push({ data, binary }));
  await once(ws, 'open');
  const binary = Buffer.from([0, 1, 2, 253, 254, 255]);
  ws.send('ping');
  ws.send(binary);
  const deadline = Date.now() + 5000;
  while (messages.length < 3 && Date.now() < deadline) await once(ws, 'message');
  ws.close();
  await once(ws, 'close');
  assert.equal(messages.length, 3);
  assert.match(at(messages, 0).data.toString(), /^hello \/socket\/room\?x=1 via 1\.1 self:\d+ \(west\)$/);
  assert.deepEqual(messages[1], { data: Buffer.from('ping'), binary: false });
  assert.deepEqual(messages[2], { data: binary, binary: true });
});

test('an origin that declines the upgrade: its answer comes back as sent', async () => {
  const ws = new WebSocket(`${listenerUrl}/plain/`);
  ws.on('error', () => { /* terminate() below, before any open, reports an error */ });
  const [, res] = await once(ws, 'unexpected-response') as [http.ClientRequest, http.IncomingMessage];
  let body = '';
  res.setEncoding('utf8');
  for await (const c of res) body += c as string;
  ws.terminate();
  assert.equal(res.statusCode, 404);
  assert.equal(res.headers['x-origin'], 'yes');
  assert.equal(body, 'no websocket here');
});

test('an upgrade for an unmapped path gets 404 with Proxy-Status', async () => {
  const ws = new WebSocket(`${listenerUrl}/nowhere`);
  ws.on('error', () => { /* terminate() below, before any open, reports an error */ });
  const [, res] = await once(ws, 'unexpected-response') as [http.ClientRequest, http.IncomingMessage];
  res.resume();
  ws.terminate();
  assert.equal(res.statusCode, 404);
  assert.match(String(res.headers['proxy-status']), /error=destination_not_found/);
});
