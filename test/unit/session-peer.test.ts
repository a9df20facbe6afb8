/**
 * A peer that breaks the protocol: what costs the whole tunnel (undecodable frames, text, the
 * wrong stream parity: 1002) and what costs one stream only (a duplicate OPEN, oversized DATA).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WebSocket } from 'ws';
import { decodeMessage, encodeData, encodeOpen, type Frame } from '../../src/tunnel/frame.js';
import { MAX_DATA_FRAME, StreamResetError } from '../../src/tunnel/stream.js';
import { body, closeOf, failure, head, nextStream, resetCode, withPair } from '../helpers/session-pair.js';

// ---- what closes the tunnel ----

const PROTOCOL_ERRORS: { name: string; send: (ws: WebSocket) => void }[] = [
  { name: 'a 3-byte binary message', send: (ws) => ws.send(Buffer.from([1, 0, 0]), { binary: true }) },
  { name: 'a frame with stream id 0', send: (ws) => ws.send(Buffer.from([4, 0, 0, 0, 0]), { binary: true }) },
  { name: 'an unknown frame type', send: (ws) => ws.send(Buffer.from([0x7f, 0, 0, 0, 1]), { binary: true }) },
  { name: 'a text message', send: (ws) => ws.send('hello', { binary: false }) },
  { name: 'an open with the receiver\'s own parity', send: (ws) => ws.send(encodeOpen(2, head('wrong')), { binary: true }) },
];

for (const c of PROTOCOL_ERRORS) {
  test(`session: ${c.name} closes the session with 1002 and fails open streams with tunnel_lost`, () => withPair(async (p) => {
    // The acceptor receives the bad message; it has one stream of its own and one the peer opened.
    const incoming = nextStream(p.server);
    const fromPeer = p.client.openStream(head('peer'));
    fromPeer.on('error', () => {});
    const peerOpened = await incoming;
    const own = p.server.openStream(head('own'));
    const failures = [failure(peerOpened), failure(own)];
    const serverClosed = closeOf(p.server);
    const clientClosed = closeOf(p.client);
    c.send(p.clientWs);
    const [serverClose, clientClose, ...errors] = await Promise.all([serverClosed, clientClosed, ...failures]);
    assert.deepEqual(
      { server: serverClose.code, client: clientClose.code, streams: errors.map(resetCode), left: p.server.streams.size },
      { server: 1002, client: 1002, streams: ['tunnel_lost', 'tunnel_lost'], left: 0 },
    );
  }));
}

test('session: an open with the receiver\'s own parity is refused by the initiator too', () => withPair(async (p) => {
  const closed = closeOf(p.client);
  p.serverWs.send(encodeOpen(1, head('wrong')), { binary: true });
  assert.equal((await closed).code, 1002);
}));

// ---- what costs one stream ----

test('session: a second open for a live stream id resets that stream at both ends, and nothing of it follows the RESET', () => withPair(async (p) => {
  // Every frame the opener receives, in order, to see what follows the RESET on the wire.
  const seen: Frame[] = [];
  p.clientWs.on('message', (data: Buffer) => seen.push(...decodeMessage(data)));
  const incoming = nextStream(p.server);
  const first = p.client.openStream(head('dup'));
  const atOpener = failure(first);
  const original = await incoming;
  const atFarEnd = failure(original);
  let extra = 0;
  p.server.on('stream', (s) => { if (s.id === first.id) extra++; });
  p.clientWs.send(encodeOpen(first.id, head('dup-again')), { binary: true });
  const [openerErr, farEndErr] = await Promise.all([atOpener, atFarEnd]);
  // The far end's handler, unaware, answers anyway: nothing of it may leave.
  original.respond({ status: 200, statusMessage: 'OK', headers: [] });
  original.end('late answer');
  // A round trip on another stream after it: whatever the far end sent for `first` has arrived.
  const after = nextStream(p.server);
  const barrier = p.client.openStream(head('barrier'));
  const farBarrier = await after;
  farBarrier.respond({ status: 204, statusMessage: 'No Content', headers: [] });
  farBarrier.end();
  barrier.end();
  await body(barrier);
  const ofFirst = seen.filter((f) => f.stream === first.id).map((f) => f.type);
  assert.deepEqual(
    { opener: resetCode(openerErr), farEnd: resetCode(farEndErr), farEndLocal: farEndErr instanceof StreamResetError && !farEndErr.remote, extra, ofFirst, open: [p.client.closed, p.server.closed], left: p.server.streams.has(first.id) },
    { opener: 'internal', farEnd: 'internal', farEndLocal: true, extra: 0, ofFirst: ['reset'], open: [false, false], left: false },
  );
}));

// A window far larger than one frame, so only the frame size can be what refuses the DATA.
const BIG_WINDOW = 1024 * 1024;

test('session: a DATA frame over MAX_DATA_FRAME resets its stream at the receiver; the tunnel and its other streams go on', () => withPair(async (p) => {
  const incoming = nextStream(p.server);
  const victim = p.client.openStream(head('oversized'));
  const atClient = failure(victim);
  const atServer = failure(await incoming);
  // Written raw: this side's own encoder never makes a frame this big.
  p.clientWs.send(encodeData(victim.id, Buffer.alloc(70_000, 0x61)), { binary: true });
  const [clientErr, serverErr] = await Promise.all([atClient, atServer]);
  assert.ok(serverErr instanceof StreamResetError && !serverErr.remote, `the receiver resets the stream itself, got ${String(serverErr)}`);
  assert.ok(clientErr instanceof StreamResetError && clientErr.remote, `the sender hears the RESET, got ${String(clientErr)}`);
  assert.match(clientErr.info.message, /70000 bytes.*65536/);

  // The tunnel is still up, and a frame of exactly MAX_DATA_FRAME is fine.
  const next = nextStream(p.server);
  const ok = p.client.openStream(head('full-frame'));
  const farEnd = await next;
  const served = body(farEnd);
  p.clientWs.send(encodeData(ok.id, Buffer.alloc(MAX_DATA_FRAME, 0x62)), { binary: true });
  ok.end();
  const got = await served;
  assert.deepEqual({ got: got.length, closed: [p.client.closed, p.server.closed] }, { got: MAX_DATA_FRAME, closed: [false, false] });
}, BIG_WINDOW));
