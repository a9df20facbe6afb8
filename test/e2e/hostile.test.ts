/**
 * Hostile input against a live node (issue 4, item 6): garbage and malformed requests on a
 * proxy listener, garbage on the control port, plain HTTP and non-west WebSocket clients on the
 * tunnel server, and a "west" client (the ws package with subprotocol west.v2) that sends bad
 * frames. Each time the node answers or closes that one connection with a reason, logs it once,
 * and keeps serving: a transfer in flight through it completes intact, a new request succeeds,
 * and its process is still running.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';
import {
  decodeMessage, encodeData, encodeEnd, encodeOpen, encodeWindow, FrameType, HEADER_SIZE, SUBPROTOCOL, type Frame, type OpenHead,
} from '../../src/tunnel/frame.js';
import { Pair, SHORT_TIMERS, until200, within } from '../helpers/chain.js';
import { fetchText, waitFor } from '../helpers/net.js';
import { Origin, patternSha256 } from '../helpers/origin.js';
import { hashBody, openRequest } from '../helpers/stream.js';
import { stopAll, tempDir, WestProcess, type LogEvent } from '../helpers/west.js';

const MAX_HEADER = 4096;
const WINDOW = 16 * 1024;

let origin: Origin;
let cleanup: () => Promise<void>;
let p: Pair;
let g: WestProcess;
let l: WestProcess;
/** G's ports: proxy listener, control, tunnel server. */
let proxyPort: number;
let controlPort: number;
let tunnelPort: number;

before(async () => {
  origin = new Origin();
  await origin.listen();
  let dir: string;
  ({ dir, cleanup } = await tempDir('west-hostile-'));
  ({ pair: p, g, l } = await Pair.launch(() => ({
    dir, tag: 'hostile', originPort: origin.port,
    // G is the node under attack: a small head limit and the smallest stream window.
    gWest: { ...SHORT_TIMERS, maxHeaderSize: MAX_HEADER, streamWindow: WINDOW },
  })));
  await until200(`${p.gUrl}/warm/echo`, 10_000);
  await until200(`${p.lUrl}/warm/echo`, 10_000);
  proxyPort = Number(new URL(p.gUrl).port);
  controlPort = Number(new URL(p.control.G).port);
  tunnelPort = Number(new URL(p.server).port);
});

after(async () => {
  await stopAll();
  await origin.close();
  await cleanup();
});

/**
 * Runs an attack on G while a download through G is in flight (its reader paused, so it spans
 * the attack), then checks that the download completes intact, that new requests through G
 * in both directions succeed, and that both processes still run.
 */
async function survives<T>(tag: string, attack: () => Promise<T>): Promise<T> {
  const size = 2 * 1024 * 1024;
  const inFlight = await openRequest(`${p.gUrl}/${tag}-inflight/bytes/${size}`);
  assert.equal(inFlight.res.statusCode, 200);
  const result = await attack();
  const body = await within(15_000, 'the transfer in flight during the attack', hashBody(inFlight.res));
  assert.equal(body.bytes, size);
  assert.equal(body.sha256, patternSha256(size));
  for (const url of [`${p.gUrl}/${tag}-after/echo`, `${p.lUrl}/${tag}-after/echo`]) {
    const r = await fetchText(url);
    assert.equal(r.status, 200, `${url}: ${r.text}`);
  }
  assert.equal(g.exitCode, null, 'G is still running');
  assert.equal(l.exitCode, null, 'L is still running');
  assert.equal(l.events.filter((e) => e.event === 'tunnel.disconnected').length, 0, 'the tunnel L-G was never dropped');
  return result;
}

/** Writes raw bytes to a port and collects what comes back until the server closes (bounded). */
function rawExchange(port: number, bytes: Buffer | string, timeoutMs = 5000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => { text += c; });
    socket.on('error', () => { /* a reset is a close too */ });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  });
}

/** Asserts that a raw exchange got `status` (or, when `orClose`, was closed without an answer). */
function assertAnswered(r: { text: string; closed: boolean }, status: number, orClose = false): void {
  assert.ok(r.closed, `the connection was left open (got ${JSON.stringify(r.text.slice(0, 200))})`);
  if (orClose && r.text === '') return;
  assert.match(r.text, new RegExp(`^HTTP/1\\.[01] ${status} `), `expected ${status}: ${JSON.stringify(r.text.slice(0, 300))}`);
}

function warnings(p: WestProcess, match: (e: LogEvent) => boolean): LogEvent[] {
  return p.events.filter((e) => (e.level === 'warn' || e.level === 'error') && match(e));
}

describe('a proxy listener', () => {
  test('garbage bytes (a TLS hello and binary junk): 400 or close', async () => {
    await survives('garbage', async () => {
      const junk = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), Buffer.alloc(512, 0xff), Buffer.from('\r\n\r\n')]);
      assertAnswered(await rawExchange(proxyPort, junk), 400, true);
    });
  });

  test(`a request head over west.maxHeaderSize (${MAX_HEADER}): 431, nothing reaches the origin`, async () => {
    await survives('bighead', async () => {
      const r = await rawExchange(proxyPort, `GET /px/bighead/echo HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2 * MAX_HEADER)}\r\n\r\n`);
      assertAnswered(r, 431);
      assert.match(r.text, /maxHeaderSize/);
    });
    assert.ok(!origin.seen.some((s) => s.url.includes('/bighead/')), 'the oversized request reached the origin');
  });

  test('a head just under west.maxHeaderSize still passes', async () => {
    await survives('nearlybig', async () => {
      const r = await fetchText(`${p.gUrl}/nearlybig/echo`, { headers: { 'X-Big': 'a'.repeat(MAX_HEADER - 512) } });
      assert.equal(r.status, 200, r.text);
    });
  });

  test('Content-Length together with Transfer-Encoding: 400, nothing reaches the origin', async () => {
    await survives('clte', async () => {
      const r = await rawExchange(proxyPort, 'POST /px/clte/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /px/clte-smuggled/echo HTTP/1.1\r\nHost: x\r\n\r\n');
      assertAnswered(r, 400);
    });
    assert.ok(!origin.seen.some((s) => /\/clte(-smuggled)?\//.test(s.url)), 'a request of the conflicting message reached the origin');
  });

  for (const [what, value] of [['a bare CR', 'a\rb'], ['CR LF and a line without a colon', 'a\r\nInjected'], ['an obs-fold continuation', 'a\r\n folded'], ['a NUL', 'a\0b']] as const) {
    test(`a header value with ${what}, sent raw: 400, nothing reaches the origin`, async () => {
      const marker = `crlf-${what.replace(/\W+/g, '-')}`;
      await survives(marker, async () => {
        assertAnswered(await rawExchange(proxyPort, `GET /px/${marker}/echo HTTP/1.1\r\nHost: x\r\nX-Evil: ${value}\r\n\r\n`), 400);
      });
      assert.ok(!origin.seen.some((s) => s.url.includes(`/${marker}/`)), 'the malformed request reached the origin');
    });
  }
});

describe('the control port', () => {
  test('garbage bytes: 400 or close; the control port still answers', async () => {
    await survives('control', async () => {
      assertAnswered(await rawExchange(controlPort, Buffer.concat([Buffer.alloc(300, 0), Buffer.from('\r\n\r\n')])), 400, true);
      assertAnswered(await rawExchange(controlPort, 'GET / HTTP/1.1\r\nHost: x\r\nX-Evil: a\rb\r\n\r\n'), 400, true);
    });
    const health = await fetchText(`${p.control.G}/healthz`);
    assert.equal(health.status, 200);
  });
});

describe('the tunnel server, with clients that are not west', () => {
  test('a plain HTTP GET: 426 Upgrade Required', async () => {
    await survives('plain', async () => {
      const r = await fetchText(`http://127.0.0.1:${tunnelPort}/`);
      assert.equal(r.status, 426, r.text);
      assert.match(String(r.headers.upgrade), /websocket/i);
    });
  });

  test('garbage bytes: 400 or close', async () => {
    await survives('tunnel-garbage', async () => {
      assertAnswered(await rawExchange(tunnelPort, Buffer.alloc(300, 0xfe)), 400, true);
    });
  });

  for (const [what, protocols, headers] of [
    ['without a subprotocol', undefined, { 'X-West-Node': 'not-west-1' }],
    ['with west.v2 but no X-West-Node', [SUBPROTOCOL], {}],
    ['with only the old west.v1', ['west.v1'], { 'X-West-Node': 'old-west' }],
    ['with another subprotocol', ['chat'], { 'X-West-Node': 'not-west-2' }],
  ] as const) {
    test(`a WebSocket client ${what}: refused 400, logged once`, async () => {
      const refusedBefore = g.events.filter((e) => e.event === 'tunnel.client_refused').length;
      const status = await survives(`ws-${what.replace(/\W+/g, '-')}`, () => new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(p.server, protocols ? [...protocols] : [], { headers: { ...headers }, perMessageDeflate: false });
        ws.on('unexpected-response', (_req, res: IncomingMessage) => {
          res.resume();
          ws.terminate();
          resolve(res.statusCode ?? 0);
        });
        ws.on('open', () => {
          ws.terminate();
          reject(new Error('the tunnel server accepted a client that is not west'));
        });
        ws.on('error', () => { /* after terminate */ });
      }));
      assert.equal(status, 400);
      await waitFor('the refusal to be logged', () => g.events.filter((e) => e.event === 'tunnel.client_refused').length === refusedBefore + 1, 5000);
    });
  }
});

/** A raw west.v2 peer built on the ws package, speaking frames through src/tunnel/frame.ts. */
interface WestPeer {
  ws: WebSocket;
  /** The per-stream window the node announced in X-West-Window. */
  window: number;
  frames: Frame[];
  /** Resolves when the connection closes, with the close code and reason the node sent. */
  closed: Promise<{ code: number; reason: string }>;
}

async function westPeer(name: string): Promise<WestPeer> {
  const ws = new WebSocket(p.server, [SUBPROTOCOL], { headers: { 'X-West-Node': name }, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
  let window = 0;
  const frames: Frame[] = [];
  ws.on('upgrade', (res: IncomingMessage) => { window = Number(res.headers['x-west-window']); });
  ws.on('message', (data: Buffer) => frames.push(...decodeMessage(data)));
  ws.on('error', () => { /* the close tells */ });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  await within(5000, 'the west peer to connect', new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res: IncomingMessage) => reject(new Error(`refused ${res.statusCode}`)));
  }));
  return { ws, window, frames, closed };
}

function openHead(path: string, method = 'GET'): OpenHead {
  return { kind: 'http', method, url: `http://127.0.0.1:${origin.port}${path}`, headers: [], hops: 1, to: '', id: `hostile-${path}` };
}

/** A frame with a bad payload but a valid header (type, stream id, length). */
function rawFrame(type: number, stream: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const buf = Buffer.alloc(HEADER_SIZE + body.length);
  buf[0] = type;
  buf.writeUInt32BE(stream, 1);
  buf.writeUInt32BE(body.length, 5);
  body.copy(buf, HEADER_SIZE);
  return buf;
}

/** Waits for the node to close a peer's connection; asserts the close code, a reason and one log line. */
async function assertClosedBy(peer: WestPeer, name: string, code: number, logEvent: string): Promise<void> {
  const { code: got, reason } = await within(5000, `G to close ${name}'s connection`, peer.closed);
  assert.equal(got, code, `close code (reason ${JSON.stringify(reason)})`);
  assert.ok(reason.length > 0, 'the close carries a reason');
  await g.waitForEvent('tunnel.client_disconnected', (e) => e.peer === name, 5000);
  const logged = warnings(g, (e) => e.peer === name);
  assert.deepEqual(logged.map((e) => e.event), [logEvent], `logged once: ${JSON.stringify(logged)}`);
}

/** Checks that the peer's connection still works: an OPEN for the origin gets a RESPONSE. */
async function assertStillOpen(peer: WestPeer, stream: number): Promise<void> {
  peer.ws.send(encodeOpen(stream, openHead(`/still-open-${stream}/echo`)));
  peer.ws.send(encodeEnd(stream));
  const response = await waitFor(`a RESPONSE on stream ${stream}`, () => peer.frames.find((f) => f.type === 'response' && f.stream === stream), 5000);
  assert.equal(response.type === 'response' && response.head.status, 200);
  assert.equal(peer.ws.readyState, WebSocket.OPEN);
}

describe('a west.v2 client that sends bad frames', () => {
  const closing: [what: string, frame: () => Buffer | string][] = [
    ['a 3-byte message', () => Buffer.from([FrameType.data, 0, 0])],
    ['an empty message', () => Buffer.alloc(0)],
    ['a text message', () => 'hello, west'],
    ['an unknown frame type', () => rawFrame(0x7f, 1, '')],
    ['an OPEN with too few lines', () => rawFrame(FrameType.open, 1, 'http\nGET\n/')],
    ['an OPEN in protocol v1\'s JSON', () => rawFrame(FrameType.open, 1, '{"kind":"http","method":"GET","url":"/","headers":[],"hops":1,"to":"","id":"x"}')],
    ['a frame whose length runs past its message', () => encodeEnd(1).fill(0xff, 5, 9)],
    ['a valid END followed by half a frame header', () => Buffer.concat([encodeEnd(1), Buffer.from([FrameType.end, 0, 0])])],
    ['an OPEN with the wrong parity (an even id from the dialing side)', () => encodeOpen(2, openHead('/parity/echo'))],
    ['a frame for stream id 0', () => encodeEnd(0)],
    ['a WINDOW of 0', () => rawFrame(FrameType.window, 1, Buffer.alloc(4))],
  ];
  for (const [i, [what, frame]] of closing.entries()) {
    test(`${what}: closed with 1002 and a reason, logged once`, async () => {
      const name = `hostile-frame-${i}`;
      await survives(name, async () => {
        const peer = await westPeer(name);
        peer.ws.send(frame());
        await assertClosedBy(peer, name, 1002, 'tunnel.protocol_error');
      });
    });
  }

  test('DATA, END and WINDOW for stream ids never opened: dropped (they may have crossed a RESET), the connection stays', async () => {
    const name = 'hostile-unknown-stream';
    await survives(name, async () => {
      const peer = await westPeer(name);
      peer.ws.send(encodeData(77, Buffer.from('who am I')));
      peer.ws.send(encodeEnd(79));
      peer.ws.send(encodeWindow(81, 1000));
      await assertStillOpen(peer, 1);
      assert.deepEqual(warnings(g, (e) => e.peer === name), []);
      peer.ws.close(1000);
      await peer.closed;
    });
  });

  test('a DATA burst larger than the announced window: that stream is reset, the tunnel stays', async () => {
    const name = 'hostile-overrun';
    await survives(name, async () => {
      const peer = await westPeer(name);
      assert.equal(peer.window, WINDOW, 'X-West-Window announces G\'s west.streamWindow');
      // A POST whose body the peer pushes without waiting for WINDOW grants: 64 KiB frames,
      // window + 64 KiB in all, sent back to back.
      peer.ws.send(encodeOpen(1, openHead('/overrun/echo', 'POST')));
      const frame = Buffer.alloc(64 * 1024, 0x61);
      for (let sent = 0; sent <= peer.window + frame.length; sent += frame.length) peer.ws.send(encodeData(1, frame));
      const reset = await waitFor('a RESET for the overrunning stream', () => peer.frames.find((f) => f.type === 'reset' && f.stream === 1), 5000);
      assert.ok(reset.type === 'reset');
      assert.match(reset.info.message, /window/);
      assert.ok(!peer.frames.some((f) => f.type === 'response' && f.stream === 1), 'the overrunning request was answered');
      await assertStillOpen(peer, 3);
      peer.ws.close(1000);
      await peer.closed;
    });
  });

  test('an oversized message (over 1.1 MiB): closed with 1009, logged once', async () => {
    const name = 'hostile-oversized';
    await survives(name, async () => {
      const peer = await westPeer(name);
      peer.ws.send(encodeData(1, Buffer.alloc(1200 * 1024, 0x62)));
      const { code } = await within(5000, 'G to close the connection', peer.closed);
      assert.equal(code, 1009);
      await g.waitForEvent('tunnel.client_disconnected', (e) => e.peer === name, 5000);
      assert.equal(warnings(g, (e) => e.peer === name).length, 1, `logged once: ${JSON.stringify(warnings(g, (e) => e.peer === name))}`);
    });
  });

  test('an OPEN for a URL that is not http(s): that stream is reset with bad_request, the tunnel stays', async () => {
    const name = 'hostile-file-url';
    await survives(name, async () => {
      const peer = await westPeer(name);
      peer.ws.send(encodeOpen(1, { ...openHead('/x'), url: 'file:///etc/passwd' }));
      const reset = await waitFor('a RESET for the file: URL', () => peer.frames.find((f) => f.type === 'reset' && f.stream === 1), 5000);
      assert.ok(reset.type === 'reset' && reset.info.code === 'bad_request', JSON.stringify(reset));
      await assertStillOpen(peer, 3);
      peer.ws.close(1000);
      await peer.closed;
    });
  });
});
