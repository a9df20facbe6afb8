/**
 * A stream relayed frame by frame (src/tunnel/relay-leg.ts), at session level: a near session
 * (G) opens a stream to the middle (L), whose takeOpen joins it to a stream L opens toward the
 * far session (L2), over two real WebSocket pairs. Heads, bodies, trailers and END pass both
 * ways; each side keeps its window, so a reader that stops holds the relay to about a window
 * per side; a reset or a lost tunnel on either side ends the other; both legs leave their
 * sessions' maps.
 */
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Feature } from '../../src/tunnel/features.js';
import { OUR_FEATURES } from '../../src/tunnel/features.js';
import { relayStream } from '../../src/mesh/relay.js';
import { encodeData, encodeEnd, encodeReset, encodeResponse, encodeTrailers } from '../../src/tunnel/frame.js';
import { MAX_DATA_FRAME, MAX_INFORMATIONAL, type TunnelStream } from '../../src/tunnel/stream.js';
import { body, failure, head, nextStream, pair, pattern, WINDOW, within, type Pair } from '../helpers/session-pair.js';

interface Chain {
  /** G (client) to L (server). */
  near: Pair;
  /** L (client) to L2 (server). */
  far: Pair;
  /** Streams L took at their OPEN. */
  relayed: number;
}

let chain: Chain | undefined;

/** G -> L -> L2, L relaying every stream G opens; `nearFeatures`: what G announces (none: an older node). */
async function startChain(nearFeatures: readonly Feature[] = OUR_FEATURES, middle: { idleTimeoutMs?: number } = {}, farFeatures: readonly Feature[] = OUR_FEATURES): Promise<Chain> {
  const near = await pair(WINDOW, OUR_FEATURES, { client: { localName: 'G', peerName: 'L', peerFeatures: new Set(OUR_FEATURES) }, server: { localName: 'L', peerName: 'G', peerFeatures: new Set(nearFeatures), ...middle } });
  const far = await pair(WINDOW, OUR_FEATURES, { client: { localName: 'L', peerName: 'L2', wireVersion: 3, peerFeatures: new Set(farFeatures) }, server: { localName: 'L2', peerName: 'L', wireVersion: 3 } });
  const c: Chain = { near, far, relayed: 0 };
  near.server.takeOpen = (id, h) => {
    c.relayed++;
    return relayStream(near.server, id, h, far.client, { ...h, hops: h.hops + 1, from: 'G' });
  };
  chain = c;
  return c;
}

beforeEach(() => { chain = undefined; });
afterEach(async () => {
  if (!chain) return;
  await chain.near.close();
  await chain.far.close();
});

/** Polls (bounded) until `check` holds. */
function until(what: string, check: () => boolean): Promise<void> {
  return within(new Promise<void>((resolve) => {
    const again = (): void => { if (check()) resolve(); else setTimeout(again, 2); };
    again();
  }), what);
}

/** L's two sessions hold no stream (the relay left nothing behind). */
function middleEmpty(c: Chain): Promise<void> {
  return until('the middle to hold no stream', () => c.near.server.streams.size === 0 && c.far.client.streams.size === 0);
}

test('a request and its answer pass through the relay: head, 1xx, body both ways in whole frames, trailers, END; nothing stays open', async () => {
  const c = await startChain();
  const arriving = nextStream(c.far.server);
  const g = c.near.client.openStream(head('up'));
  const l2 = await arriving;
  assert.equal(c.relayed, 1);
  assert.equal(l2.head?.hops, 2);
  assert.equal(l2.head?.from, 'G');
  assert.equal(l2.head?.url, 'http://127.0.0.1:9/up');

  // A 64 KiB frame (sent raw: a stream paces its frames by its window) leaves as one frame.
  const up = pattern(MAX_DATA_FRAME, 1);
  l2.wholeFrames = true; // so that L2's reader hands each frame whole too, as it came
  const sizes: number[] = [];
  l2.on('data', (chunk: Buffer) => sizes.push(chunk.length));
  const gotUp = body(l2);
  c.near.clientWs.send(Buffer.concat([encodeData(g.id, up), encodeTrailers(g.id, ['X-Up', 'done']), encodeEnd(g.id)]), { binary: true });
  assert.ok((await gotUp).equals(up), 'the request body arrives unchanged');
  assert.deepEqual(sizes, [MAX_DATA_FRAME]);
  assert.deepEqual(l2.trailers, ['X-Up', 'done']);

  const informed = new Promise((resolve) => g.once('information', resolve));
  const answered = new Promise((resolve) => g.once('response', resolve));
  l2.inform({ status: 103, statusMessage: 'Early Hints', headers: ['Link', '</a.css>'] });
  l2.respond({ status: 201, statusMessage: 'Created', headers: ['X-Down', '1'] });
  assert.deepEqual(await within(informed, 'the 1xx'), { status: 103, statusMessage: 'Early Hints', headers: ['Link', '</a.css>'] });
  assert.deepEqual(await within(answered, 'the response'), { status: 201, statusMessage: 'Created', headers: ['X-Down', '1'] });
  const down = pattern(3 * MAX_DATA_FRAME + 7, 2);
  const gotDown = body(g);
  l2.setTrailers(['X-Down-Trailer', 'yes']);
  l2.end(down);
  assert.ok((await gotDown).equals(down), 'the response body arrives unchanged');
  assert.deepEqual(g.trailers, ['X-Down-Trailer', 'yes']);
  await middleEmpty(c);
  // G wrote nothing itself (its frames went raw): its side ends once it ends its writable.
  g.end();
  await until('both ends to close', () => c.near.client.streams.size === 0 && c.far.server.streams.size === 0);
});

test('an older near peer (no features) gets neither 1xx nor trailers, and still its answer', async () => {
  const c = await startChain([]);
  const arriving = nextStream(c.far.server);
  const g = c.near.client.openStream(head('old', 'GET'));
  g.end();
  const l2 = await arriving;
  let informed = false;
  g.on('information', () => { informed = true; });
  const answered = new Promise((resolve) => g.once('response', resolve));
  const got = body(g);
  l2.inform({ status: 100, statusMessage: 'Continue', headers: [] });
  l2.respond({ status: 200, statusMessage: 'OK', headers: [] });
  l2.setTrailers(['X-T', '1']);
  l2.end('hello');
  await within(answered, 'the response');
  assert.equal((await got).toString(), 'hello');
  assert.equal(informed, false);
  assert.equal(g.trailers, undefined);
  await middleEmpty(c);
});

test('an older far peer (no features) gets no trailers from the relay, and still the request body and END', async () => {
  const c = await startChain(OUR_FEATURES, {}, []);
  const arriving = nextStream(c.far.server);
  const g = c.near.client.openStream(head('old-far'));
  const l2 = await arriving;
  const got = body(l2);
  g.setTrailers(['X-T', '1']);
  g.end('upload');
  assert.equal((await got).toString(), 'upload');
  assert.equal(l2.trailers, undefined);
  const answered = body(g);
  l2.respond({ status: 204, statusMessage: 'No Content', headers: [] });
  l2.end();
  assert.equal((await answered).length, 0);
  await middleEmpty(c);
});

/** Opens a relayed stream whose far end answers with `size` bytes; G's end is paused. */
async function download(c: Chain, size: number): Promise<{ g: TunnelStream; l2: TunnelStream; data: Buffer; written: Promise<void> }> {
  const arriving = nextStream(c.far.server);
  const g = c.near.client.openStream(head('down', 'GET'));
  g.pause();
  g.end();
  const l2 = await arriving;
  l2.resume();
  l2.respond({ status: 200, statusMessage: 'OK', headers: [] });
  const data = pattern(size, 3);
  const written = new Promise<void>((resolve) => l2.end(data, resolve));
  return { g, l2, data, written };
}

test('a reader that stops holds the relay to about a window each side; the far end waits; every byte arrives once it reads', async () => {
  const c = await startChain();
  const size = 40 * WINDOW;
  const { g, l2, data, written } = await download(c, size);
  // G's stream takes a window and reads none of it; L can hold a window more for it.
  await until('the far end to have sent two windows', () => l2.bytesOut >= 2 * WINDOW);
  // Another stream through the same tunnels completes: frames have crossed both since.
  const arriving = nextStream(c.far.server);
  const probe = c.near.client.openStream(head('probe', 'GET'));
  probe.end();
  const p2 = await arriving;
  const probeBody = body(probe);
  p2.respond({ status: 200, statusMessage: 'OK', headers: [] });
  p2.end('ok');
  assert.equal((await probeBody).toString(), 'ok');
  assert.ok(l2.bytesOut <= 2 * WINDOW + MAX_DATA_FRAME, `the far end sent ${l2.bytesOut} bytes to a reader that took none (windows of ${WINDOW})`);
  for (const leg of [...c.near.server.streams.values(), ...c.far.client.streams.values()]) {
    assert.ok(leg.window.unread <= WINDOW, `a leg holds ${leg.window.unread} bytes unsent`);
  }
  const got = body(g);
  g.resume();
  assert.ok((await got).equals(data));
  await within(written, 'the far end to have written everything');
  await middleEmpty(c);
});

test('a reset from the far end reaches the near end with its code and node; one from the near end reaches the far end', async () => {
  const c = await startChain();
  const arriving = nextStream(c.far.server);
  const g = c.near.client.openStream(head('fail'));
  const l2 = await arriving;
  const gFailed = failure(g);
  l2.reset('origin_error', 'the origin hung up');
  const err = await gFailed as { info: { code: string; node: string; message: string } };
  assert.deepEqual(err.info, { code: 'origin_error', node: 'L2', message: 'the origin hung up' });
  await middleEmpty(c);

  const arriving2 = nextStream(c.far.server);
  const g2 = c.near.client.openStream(head('cancel'));
  const l22 = await arriving2;
  const farFailed = failure(l22);
  g2.destroy(); // the client gave up: a cancel
  const err2 = await farFailed as { info: { code: string; node: string } };
  assert.deepEqual([err2.info.code, err2.info.node], ['cancel', 'G']);
  await middleEmpty(c);
});

test('a far end that cancels mid-answer, and a near end that resets mid-upload, end the other side; a code L does not know passes as tunnel_lost', async () => {
  const c = await startChain();
  const { g, l2 } = await download(c, 8 * WINDOW);
  const gFailed = failure(g);
  g.resume();
  l2.destroy();
  const err = await gFailed as { info: { code: string } };
  assert.equal(err.info.code, 'cancel');
  await middleEmpty(c);

  const arriving = nextStream(c.far.server);
  const up = c.near.client.openStream(head('upload'));
  const far = await arriving;
  far.pause();
  up.write(pattern(3 * WINDOW, 4));
  const farFailed = failure(far);
  up.on('error', () => {});
  // A RESET with a code from a newer node, sent raw on G's stream.
  c.near.clientWs.send(encodeReset(up.id, { code: 'from_a_newer_node', message: 'gave up', node: 'G' }), { binary: true });
  const e = await farFailed as { info: { code: string; message: string; node: string } };
  assert.deepEqual(e.info, { code: 'tunnel_lost', message: 'gave up', node: 'G' });
  await middleEmpty(c);
});

test('the far tunnel lost: the near end fails with tunnel_lost named by the middle node; the near tunnel lost: the far end is reset', async () => {
  const c = await startChain();
  const arriving = nextStream(c.far.server);
  const g = c.near.client.openStream(head('lost'));
  const l2 = await arriving;
  const gFailed = failure(g);
  const l2Failed = failure(l2);
  c.far.clientWs.terminate();
  const err = await gFailed as { info: { code: string; node: string } };
  assert.deepEqual([err.info.code, err.info.node], ['tunnel_lost', 'L']);
  await l2Failed;
  await middleEmpty(c);
});

test('the near tunnel lost: the stream onward is reset and leaves the middle', async () => {
  const c = await startChain();
  const arriving = nextStream(c.far.server);
  c.near.client.openStream(head('lost-near')).on('error', () => {});
  const l2 = await arriving;
  const l2Failed = failure(l2);
  c.near.clientWs.terminate();
  const err = await l2Failed as { info: { code: string; node: string } };
  assert.deepEqual([err.info.code, err.info.node], ['tunnel_lost', 'L']);
  await middleEmpty(c);
});

test('a relayed stream that moves nothing is cut by the middle node\'s idle timeout, both ways', async () => {
  const c = await startChain(OUR_FEATURES, { idleTimeoutMs: 200 });
  const arriving = nextStream(c.far.server);
  const g = c.near.client.openStream(head('idle'));
  const l2 = await arriving;
  const [gErr, l2Err] = await Promise.all([failure(g), failure(l2)]) as { info: { code: string; node: string } }[];
  assert.deepEqual([gErr?.info.code, gErr?.info.node, l2Err?.info.code, l2Err?.info.node], ['idle_timeout', 'L', 'idle_timeout', 'L']);
  await middleEmpty(c);
});

test('a hostile near peer: a RESPONSE on its own stream goes nowhere; DATA past the window resets the relayed stream both ways, not the tunnels', async () => {
  const c = await startChain();
  const arriving = nextStream(c.far.server);
  const g = c.near.client.openStream(head('hostile'));
  g.on('error', () => {});
  const l2 = await arriving;
  l2.pause(); // L's leg toward L2 runs out of window after one frame
  let answered = false;
  l2.on('response', () => { answered = true; });
  const l2Failed = failure(l2);
  const gFailed = failure(g);
  const frame = Buffer.alloc(MAX_DATA_FRAME, 1);
  // A RESPONSE the stream's opener sends, then three windows' worth of DATA at once.
  c.near.clientWs.send(Buffer.concat([encodeResponse(g.id, { status: 200, statusMessage: 'OK', headers: [] }),
    encodeData(g.id, frame), encodeData(g.id, frame), encodeData(g.id, frame)]), { binary: true });
  const [gErr, l2Err] = await Promise.all([gFailed, l2Failed]) as { info: { code: string; node: string } }[];
  assert.deepEqual([gErr?.info.code, gErr?.info.node, l2Err?.info.code, l2Err?.info.node], ['internal', 'L', 'internal', 'L']);
  assert.equal(answered, false, 'no RESPONSE reaches the far end');
  await middleEmpty(c);
  assert.deepEqual([c.near.server.closed, c.far.client.closed], [false, false]);
  // The tunnels still relay.
  const next = nextStream(c.far.server);
  const g2 = c.near.client.openStream(head('after', 'GET'));
  g2.end();
  const l22 = await next;
  const got = body(g2);
  l22.respond({ status: 200, statusMessage: 'OK', headers: [] });
  l22.end('still up');
  assert.equal((await got).toString(), 'still up');
  await middleEmpty(c);
});

test('an origin that sends 1xx heads without end: the relay passes MAX_INFORMATIONAL of them, then its answer', async () => {
  const c = await startChain();
  const arriving = nextStream(c.far.server);
  const g = c.near.client.openStream(head('hints', 'GET'));
  g.end();
  const l2 = await arriving;
  const informed: number[] = [];
  g.on('information', (h: { status: number }) => informed.push(h.status));
  const answered = new Promise((resolve) => g.once('response', resolve));
  // Sent raw by the far peer (its own TunnelStream would stop at the same number).
  const hints = Array.from({ length: 3 * MAX_INFORMATIONAL }, () => encodeResponse(l2.id, { status: 103, statusMessage: 'Early Hints', headers: ['Link', '</a.css>'] }));
  c.far.serverWs.send(Buffer.concat([...hints, encodeResponse(l2.id, { status: 200, statusMessage: 'OK', headers: [] }), encodeEnd(l2.id)]), { binary: true });
  g.resume();
  await within(answered, 'the answer after the 1xx heads');
  await until('G\'s stream to end', () => g.readableEnded);
  assert.equal(informed.length, MAX_INFORMATIONAL);
  await middleEmpty(c);
});
