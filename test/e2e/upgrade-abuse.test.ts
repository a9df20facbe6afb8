/**
 * What a client with access can do to a node with upgrade requests (issue 11, item 1): a
 * declined upgrade must close its stream on both ends like any request, and a client that
 * resets its connection at any stage of an upgrade must never take the node down.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import { at } from '../helpers/at.js';
import { stateOf } from '../helpers/chain.js';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

let declining: http.Server;
let stalling: http.Server;
let wss: WebSocketServer;
/** Upgrade requests the stalling origin holds without answering. */
const held: net.Socket[] = [];
let node: WestProcess;
let lp: number;
let control: string;
let cleanup: () => Promise<void>;

const MAX_STREAMS = 8;

before(async () => {
  // Answers 200 to everything, upgrade requests included (Node hands them to 'request' when
  // nothing listens for 'upgrade').
  declining = http.createServer((req, res) => {
    req.resume();
    res.end('plain answer\n');
  });
  stalling = http.createServer((_req, res) => res.end());
  stalling.on('upgrade', (_req, socket: net.Socket) => {
    socket.on('error', () => { /* the node may cut it */ });
    held.push(socket);
  });
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  await Promise.all([declining, stalling].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  const port = (s: http.Server | WebSocketServer): number => (s.address() as net.AddressInfo).port;

  const [sp, cp] = [await freePort(), await freePort()];
  lp = await freePort();
  let dir: string;
  ({ dir, cleanup } = await tempDir('west-upgrade-abuse-'));
  const config = await writeConfig(dir, 'self.json', {
    west: { nm: 'self', cp: `127.0.0.1:${cp}`, maxStreams: MAX_STREAMS, responseTimeout: 30 },
    wsts: { sp: `ws://127.0.0.1:${sp}` },
    proxy: {
      [`http://127.0.0.1:${lp}`]: {
        ea: `ws://127.0.0.1:${sp}`,
        '/plain': { ou: `http://127.0.0.1:${port(declining)}/` },
        '/stall': { ou: `http://127.0.0.1:${port(stalling)}/` },
        '/ws': { ou: `http://127.0.0.1:${port(wss)}/` },
        '/denied': { ou: `http://127.0.0.1:${port(declining)}/`, ca: ['10.9.9.9'] },
      },
    },
  });
  node = await WestProcess.start(config);
  await node.waitForEvent('tunnel.connected');
  control = `http://127.0.0.1:${cp}`;
});

after(async () => {
  await stopAll();
  for (const s of held) s.destroy();
  for (const c of wss.clients) c.terminate();
  wss.close();
  for (const s of [declining, stalling]) s.closeAllConnections();
  await Promise.all([declining, stalling].map((s) => new Promise<void>((r) => s.close(() => r()))));
  await cleanup();
});

function upgradeHead(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${lp}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
}

/** Opens a raw connection to the listener; resolves once connected. */
async function connect(): Promise<net.Socket> {
  const socket = net.connect(lp, '127.0.0.1');
  socket.on('error', () => { /* resets are the point */ });
  await once(socket, 'connect');
  return socket;
}

/** Sends an upgrade request and reads the whole answer (the node closes after a declined upgrade). */
async function declinedUpgrade(path: string): Promise<string> {
  const socket = await connect();
  let answer = '';
  socket.setEncoding('latin1').on('data', (c: string) => { answer += c; });
  socket.write(upgradeHead(path));
  await once(socket, 'close');
  return answer;
}

/** Streams open on every tunnel of the node, both sides. */
async function openStreams(): Promise<number> {
  const s = await stateOf(control);
  const server = (s as unknown as { server?: { peers: { streams: number }[] } }).server;
  return s.tunnels.reduce((n, t) => n + t.streams, 0) + (server?.peers ?? []).reduce((n, p) => n + p.streams, 0);
}

async function nodeStillServes(): Promise<void> {
  assert.equal(node.exitCode, null, `the node exited:\n${node.stderr.slice(-2000)}`);
  const res = await fetchText(`http://127.0.0.1:${lp}/plain/ok`);
  assert.equal(res.status, 200, res.text);
}

test('declined upgrades close their stream on both ends: more of them than maxStreams leave the tunnel usable', async () => {
  for (let i = 0; i < MAX_STREAMS * 3; i++) {
    const answer = await declinedUpgrade(`/plain/u${i}`);
    assert.match(answer, /^HTTP\/1\.1 200 /, answer);
    assert.match(answer, /plain answer/);
  }
  await waitFor('no stream left open on the tunnel', async () => (await openStreams()) === 0, 5000);
  await nodeStillServes();
});

test('a client that resets at any stage of an upgrade never takes the node down', async () => {
  // 1. Mid-head.
  const midHead = await connect();
  midHead.write(upgradeHead('/stall/a').slice(0, 40));
  midHead.resetAndDestroy();

  // 2. After the head, while the node waits for the origin's answer; then the origin answers
  // 101 into a connection whose client is gone.
  const waiting = await connect();
  waiting.write(upgradeHead('/stall/b'));
  await waitFor('the origin holds the upgrade', () => held.length >= 1);
  waiting.resetAndDestroy();
  await once(waiting, 'close');
  at(held, 0).write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly bytes');

  // 3. While a declined answer is being written.
  const declined = await connect();
  declined.on('data', () => declined.resetAndDestroy());
  declined.write(upgradeHead('/plain/c'));
  await once(declined, 'close');

  // 4. After a 101 from a real WebSocket origin, mid-conversation.
  const switched = await connect();
  switched.on('data', () => switched.resetAndDestroy());
  switched.write(upgradeHead('/ws/d'));
  await once(switched, 'close');

  // 5. While west answers with its own failure (404, 403), and before it does.
  for (const path of ['/none/e', '/denied/f']) {
    const failed = await connect();
    failed.write(upgradeHead(path));
    failed.resetAndDestroy();
    await once(failed, 'close');
  }

  // The node is up, answers, and holds no stream for any of them.
  await nodeStillServes();
  await waitFor('no stream left open on the tunnel', async () => (await openStreams()) === 0, 5000);
  assert.doesNotMatch(node.stderr, /uncaught|unhandled/i);
});
