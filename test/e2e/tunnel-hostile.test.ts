/**
 * Clients that hang up on the tunnel server at the worst moment. Node's HTTP server takes its
 * own 'error' listener off a socket before it emits 'upgrade', so a reset that lands while the
 * tunnel server judges or refuses an upgrade must find a listener of ours, or it is an
 * uncaught exception that ends the process. A real `west` process is attacked with raw TCP
 * upgrade requests (accepted and refused kinds) reset at every stage; it must stay up and
 * still take a good client.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';
import { at } from '../helpers/at.js';
import { SUBPROTOCOL } from '../../src/tunnel/frame.js';
import { freePort, waitFor } from '../helpers/net.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const WAIT_MS = 10_000;
const TOKEN = `good-${randomBytes(12).toString('hex')}`;
const HOLDER_TOKEN = `holder-${randomBytes(12).toString('hex')}`;

let cleanup: () => Promise<void>;
let dir: string;
let g: WestProcess;
let port: number;
/** Holds the name "holder-L", so a second claim of it is refused 409 (claim: "refuse"). */
let holder: WebSocket;

/** Dials the tunnel server as a west client would; resolves once the upgrade is accepted. */
function dial(name: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, [SUBPROTOCOL], {
      headers: { 'X-West-Node': name, Authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      handshakeTimeout: WAIT_MS,
    });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      reject(new Error(`upgrade answered ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}

function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.terminate();
  });
}

before(async () => {
  ({ dir, cleanup } = await tempDir('west-tunnel-hostile-'));
  port = await freePort();
  const file = await writeConfig(dir, 'g.json', {
    west: { nm: 'hostile-G', egress: {}, heartbeat: 1 },
    wsts: {
      sp: `ws://127.0.0.1:${port}`,
      claim: 'refuse',
      ca: ['127.0.0.0/8', 'good-L', 'holder-L', 'no-token-L'],
      tokens: { 'good-L': TOKEN, 'holder-L': HOLDER_TOKEN, 'stranger-L': TOKEN },
    },
  });
  g = await WestProcess.start(file);
  holder = await dial('holder-L', HOLDER_TOKEN);
});

after(async () => {
  if (holder) await closeWs(holder);
  await stopAll();
  await cleanup();
});

function upgradeHead(headers: Record<string, string>): string {
  const lines = [
    'GET / HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Connection: Upgrade', 'Upgrade: websocket',
    'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

const west = (name: string, token?: string): Record<string, string> => ({
  'Sec-WebSocket-Protocol': SUBPROTOCOL, 'X-West-Node': name, ...(token ? { Authorization: `Bearer ${token}` } : {}),
});

/** Upgrade requests the server accepts (good) or refuses for every reason it has. */
const REQUESTS: { what: string; headers: Record<string, string> }[] = [
  { what: 'a good client', headers: west('good-L', TOKEN) },
  { what: 'no subprotocol', headers: { 'X-West-Node': 'good-L', Authorization: `Bearer ${TOKEN}` } },
  { what: 'another subprotocol', headers: { ...west('good-L', TOKEN), 'Sec-WebSocket-Protocol': 'chat' } },
  { what: 'no name', headers: { 'Sec-WebSocket-Protocol': SUBPROTOCOL, Authorization: `Bearer ${TOKEN}` } },
  { what: 'a wrong token', headers: west('good-L', 'wrong') },
  { what: 'no token', headers: west('good-L') },
  { what: 'a name without a token', headers: west('no-token-L', TOKEN) },
  { what: 'a name outside wsts.ca', headers: west('stranger-L', TOKEN) },
  { what: 'a name already connected', headers: west('holder-L', HOLDER_TOKEN) },
];

type Stage = 'mid-head' | 'right after the head' | 'once the answer starts';
const STAGES: Stage[] = ['mid-head', 'right after the head', 'once the answer starts'];

/**
 * Sends `head` on a raw TCP connection and resets it (RST, not FIN) at `stage`; resolves when
 * the socket has closed. Bounded: a server that never answers is reset at the deadline.
 */
function resetAt(head: string, stage: Stage): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => socket.resetAndDestroy(), WAIT_MS);
    socket.on('error', () => { /* our own reset, or the server's */ });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('connect', () => {
      if (stage === 'mid-head') {
        socket.write(head.slice(0, Math.floor(head.length / 2)), () => socket.resetAndDestroy());
      } else if (stage === 'right after the head') {
        socket.write(head, () => socket.resetAndDestroy());
      } else {
        socket.once('data', () => socket.resetAndDestroy());
        socket.write(head);
      }
    });
  });
}

test('upgrade requests reset mid-head, right after the head or once the answer starts do not bring the tunnel server down', async () => {
  const ROUNDS = 5;
  for (let round = 0; round < ROUNDS; round++) {
    for (const stage of STAGES) {
      // All kinds at once, so resets land while the server is busy with the others.
      await Promise.all(REQUESTS.map((r) => resetAt(upgradeHead(r.headers), stage)));
      assert.equal(g.exitCode, null, `the tunnel server exited (round ${round}, ${stage}):\n${g.stderr.slice(-2000)}`);
    }
  }
  assert.ok(!/uncaught|ECONNRESET.*\n\s+at /i.test(g.stderr), `the tunnel server reported an uncaught error:\n${g.stderr.slice(-2000)}`);
  // Still serving: a good client gets in, and the holder of a name was never disturbed.
  // The last good client reset may not have been noticed gone yet (claim: "refuse" answers 409
  // until it is), so the good client dials until it gets in, within a bound.
  const good = await waitFor('a good client to connect', () => dial('good-L', TOKEN), WAIT_MS, 50);
  await closeWs(good);
  assert.equal(holder.readyState, holder.OPEN, 'the connected client kept its tunnel');
  assert.equal(g.exitCode, null, 'the tunnel server is still running');
});

interface Answer {
  status: number;
  authenticate: string | undefined;
  body: string;
}

/** Sends a west upgrade request by hand; the server's answer (101 when accepted). */
function upgradeAnswer(to: number, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`http://127.0.0.1:${to}/`, {
      agent: false,
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'), ...headers,
      },
    });
    req.setTimeout(WAIT_MS, () => req.destroy(new Error('the upgrade was not answered in time')));
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, authenticate: undefined, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => {
        resolve({ status: res.statusCode ?? 0, authenticate: res.headers['www-authenticate'], body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

test('every admission refusal (address, name, token) gets the same answer; only the server\'s log says which rule refused', async () => {
  // A second server that admits no address this test connects from.
  const farPort = await freePort();
  const far = await WestProcess.start(await writeConfig(dir, 'far.json', {
    west: { nm: 'hostile-far', egress: {} },
    wsts: { sp: `ws://127.0.0.1:${farPort}`, ca: ['10.0.0.0/8'], tokens: { 'good-L': TOKEN } },
  }));
  try {
    const cases: { what: string; at: WestProcess; port: number; headers: Record<string, string>; reason: RegExp }[] = [
      { what: 'an address outside wsts.ca', at: far, port: farPort, headers: west('good-L', TOKEN), reason: /address 127\.0\.0\.1 .*wsts\.ca/ },
      { what: 'a name outside wsts.ca', at: g, port, headers: west('stranger-L', TOKEN), reason: /name stranger-L .*wsts\.ca/ },
      { what: 'a name without a token', at: g, port, headers: west('no-token-L', TOKEN), reason: /no-token-L has no token/ },
      { what: 'no token', at: g, port, headers: west('good-L'), reason: /missing token for good-L/ },
      { what: 'a token of another name', at: g, port, headers: west('good-L', HOLDER_TOKEN), reason: /wrong token for good-L/ },
      { what: 'Basic instead of Bearer', at: g, port, headers: { ...west('good-L'), Authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }, reason: /missing token for good-L/ },
    ];
    const answers: Answer[] = [];
    for (const c of cases) {
      const before = c.at.events.length;
      answers.push(await upgradeAnswer(c.port, c.headers));
      const logged = await c.at.waitForEvent('tunnel.client_refused', (e) => c.at.events.indexOf(e) >= before, WAIT_MS);
      assert.match(String(logged.reason), c.reason, `${c.what}: the log names the rule`);
    }
    const first = at(answers, 0, 'answer');
    assert.deepEqual(
      { status: first.status, authenticate: first.authenticate },
      { status: 401, authenticate: 'Bearer realm="west tunnel"' },
    );
    answers.forEach((a, i) => assert.deepEqual(a, first, `${at(cases, i).what} is answered like ${at(cases, 0).what}`));
    for (const word of ['stranger', 'no-token', 'good-L', 'token', 'wsts', '127.0.0.1', TOKEN]) {
      assert.ok(!first.body.includes(word), `the answer names no rule or party (${JSON.stringify(word)}): ${first.body}`);
    }
  } finally {
    await far.stop();
  }
});
