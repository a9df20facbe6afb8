/**
 * A hostile tunnel client against the bulk reader of a real `west` tunnel server
 * (src/tunnel/ws-reader.ts): it writes WebSocket frames by hand on the upgraded socket. A 2^63
 * length and a length just over maxPayload close the tunnel with 1009, as ws alone does; a DATA
 * frame longer than its stream's window, split over many reads, costs that stream (a RESET) and
 * not the tunnel; a bulk frame sent one byte per write arrives intact. After each survivable
 * attack the tunnel still answers a ping.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type net from 'node:net';
import WebSocket from 'ws';
import { decodeMessage, encodeData, encodeEnd, encodeOpen, SUBPROTOCOL, type Frame } from '../../src/tunnel/frame.js';
import { MAX_MESSAGE } from '../../src/tunnel/handshake.js';
import { waitFor } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';
import { wsFrame } from '../helpers/ws-frames.js';

const WAIT_MS = 20_000;
/** The server's stream window (its smallest): one 64 KiB DATA frame overruns it. */
const WINDOW = 16 * 1024;

let cleanup: () => Promise<void>;
let origin: Origin;
let g: WestProcess;
let server = '';

before(async () => {
  origin = new Origin();
  await origin.listen();
  let dir: string;
  ({ dir, cleanup } = await tempDir('west-bulk-hostile-'));
  // A long heartbeat: the attacker answers no ping (its raw writes must not be cut by a pong).
  const file = await writeConfig(dir, 'g.json', {
    west: { nm: 'bulk-hostile-G', heartbeat: 60, streamWindow: WINDOW, maxStreamWindow: WINDOW },
    wsts: { sp: 'ws://127.0.0.1:0' },
  });
  g = await WestProcess.start(file);
  server = `ws://127.0.0.1:${g.serverPort()}`;
});

after(async () => {
  await stopAll();
  await origin.close();
  await cleanup();
});

interface Attacker {
  ws: WebSocket;
  socket: net.Socket;
  frames: Frame[];
  closed: Promise<number>;
}

/** Dials as a west client (no pongs of its own) and keeps every frame the server sends. */
async function attacker(name: string): Promise<Attacker> {
  const ws = new WebSocket(server, [SUBPROTOCOL], { headers: { 'X-West-Node': name }, perMessageDeflate: false, autoPong: false });
  const frames: Frame[] = [];
  ws.on('message', (data: Buffer) => frames.push(...decodeMessage(data, 2)));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const socket = (ws as unknown as { _socket: net.Socket })._socket;
  return { ws, socket, frames, closed };
}

const masked = (payload: Buffer, extra: { length?: number } = {}): Buffer => wsFrame({ opcode: 2, payload, mask: randomBytes(4), ...extra });

/** Writes `bytes` `step` bytes at a time, each write after the last has been flushed. */
async function trickle(socket: net.Socket, bytes: Buffer, step: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += step) {
    await new Promise<void>((resolve, reject) => socket.write(bytes.subarray(i, i + step), (err) => (err ? reject(err) : resolve())));
  }
}

function openFrame(stream: number, path: string): Buffer {
  return encodeOpen(stream, {
    kind: 'http', method: 'POST', url: `http://127.0.0.1:${origin.port}${path}`, hops: 1, to: '', id: `hostile-${stream}`,
    headers: ['Content-Type', 'application/octet-stream', 'Transfer-Encoding', 'chunked'],
  });
}

async function stillAnswers(a: Attacker): Promise<void> {
  const pong = new Promise<void>((resolve) => a.ws.once('pong', () => resolve()));
  a.ws.ping();
  await waitFor('a pong', async () => { await pong; return true; }, WAIT_MS);
}

test('a 2^63 frame length closes the tunnel with 1009', async () => {
  const a = await attacker('hostile-huge');
  a.socket.write(masked(Buffer.alloc(0), { length: 2 ** 63 }));
  assert.equal(await a.closed, 1009);
});

test('a frame length just over maxPayload closes the tunnel with 1009 before its payload comes', async () => {
  const a = await attacker('hostile-over');
  const frame = masked(Buffer.alloc(64), { length: MAX_MESSAGE + 1 });
  a.socket.write(frame.subarray(0, frame.length - 64));
  assert.equal(await a.closed, 1009);
});

test('a DATA frame longer than its stream\'s window, over many reads, costs the stream only', async () => {
  const a = await attacker('hostile-window');
  a.socket.write(masked(openFrame(1, '/hang')));
  await trickle(a.socket, masked(encodeData(1, randomBytes(64 * 1024))), 1000);
  const reset = await waitFor('a RESET of stream 1', () => a.frames.find((f) => f.type === 'reset' && f.stream === 1), WAIT_MS);
  assert.ok(reset.type === 'reset');
  assert.equal(reset.info.code, 'internal');
  assert.match(reset.info.message, /overran the flow-control window of stream 1/);
  await stillAnswers(a);
  a.ws.terminate();
});

test('a bulk DATA frame sent one byte per write arrives intact', async () => {
  const a = await attacker('hostile-slow');
  const body = randomBytes(WINDOW);
  a.socket.write(masked(openFrame(3, '/echo')));
  await trickle(a.socket, masked(encodeData(3, body)), 1);
  a.socket.write(masked(encodeEnd(3)));
  const data = await waitFor('the echo of stream 3', () => {
    const payload = Buffer.concat(a.frames.flatMap((f) => (f.type === 'data' && f.stream === 3 ? [f.data] : [])));
    return a.frames.some((f) => f.type === 'end' && f.stream === 3) ? payload : undefined;
  }, 60_000);
  const echo = JSON.parse(data.toString()) as { bodyBytes: number; sha256: string };
  assert.equal(echo.bodyBytes, body.length);
  assert.equal(echo.sha256, createHash('sha256').update(body).digest('hex'));
  await stillAnswers(a);
  a.ws.terminate();
});
