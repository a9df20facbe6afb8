import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { WestError } from '../../src/errors.js';
import { TUNNEL_HIGH_WATER } from '../../src/tunnel/session.js';
import { MAX_DATA_FRAME } from '../../src/tunnel/stream.js';
import { at } from '../helpers/at.js';
import { waitFor } from '../helpers/net.js';
import {
  body, bodyByIterator, closeOf, failure, head, nextStream, pattern, resetCode, WAIT_MS, WINDOW, withPair, within,
} from '../helpers/session-pair.js';

// ---- opening streams ----

const ID_CASES: { name: string; opener: 'client' | 'server'; ids: number[] }[] = [
  { name: 'the initiator opens odd ids', opener: 'client', ids: [1, 3, 5] },
  { name: 'the acceptor opens even ids', opener: 'server', ids: [2, 4, 6] },
];

for (const c of ID_CASES) {
  test(`session: ${c.name}, and the peer sees them with their heads`, () => withPair(async (p) => {
    const opener = c.opener === 'client' ? p.client : p.server;
    const peer = c.opener === 'client' ? p.server : p.client;
    const seen: { id: number; path: string | undefined }[] = [];
    const all = within(new Promise<void>((resolve) => {
      peer.on('stream', (s) => { seen.push({ id: s.id, path: s.head?.url }); if (seen.length === c.ids.length) resolve(); });
    }), 'three streams at the peer');
    const opened = c.ids.map((_, i) => opener.openStream(head(`s${i}`)).id);
    await all;
    assert.deepEqual(
      { opened, seen },
      { opened: c.ids, seen: c.ids.map((id, i) => ({ id, path: `http://127.0.0.1:9/s${i}` })) },
    );
  }));
}

test('session: the peer receives the open head unchanged', () => withPair(async (p) => {
  const incoming = nextStream(p.server);
  const h = head('exact', 'PUT');
  p.client.openStream(h);
  const s = await incoming;
  assert.deepEqual(s.head, h);
}));

// ---- request / response ----

const ROUND_TRIPS: { name: string; opener: 'client' | 'server'; request: number; response: number; reader?: 'iterator' }[] = [
  { name: 'small bodies, opened by the initiator', opener: 'client', request: 11, response: 13 },
  { name: 'small bodies, opened by the acceptor', opener: 'server', request: 11, response: 13 },
  { name: 'empty bodies', opener: 'client', request: 0, response: 0 },
  { name: 'bodies of several windows, opened by the initiator', opener: 'client', request: 5 * WINDOW + 123, response: 7 * WINDOW + 1 },
  { name: 'bodies of several windows, opened by the acceptor', opener: 'server', request: 3 * WINDOW, response: 4 * WINDOW + 99 },
  { name: 'bodies of several windows, far end reads with for await', opener: 'client', request: 4 * WINDOW, response: 100, reader: 'iterator' },
];

for (const c of ROUND_TRIPS) {
  test(`session round trip: ${c.name}`, () => withPair(async (p) => {
    const opener = c.opener === 'client' ? p.client : p.server;
    const peer = c.opener === 'client' ? p.server : p.client;
    const requestBody = pattern(c.request, 1);
    const responseBody = pattern(c.response, 2);
    const responseHead = { status: 201, statusMessage: 'Created', headers: ['Content-Type', 'application/octet-stream'] };

    // The far end: read the whole request, then answer.
    const served = (async () => {
      const s = await nextStream(peer);
      const got = await (c.reader === 'iterator' ? bodyByIterator(s) : body(s));
      s.respond(responseHead);
      s.end(responseBody);
      return got;
    })();

    const stream = opener.openStream(head('rt'));
    const gotHead = within(new Promise((resolve) => stream.once('response', resolve)), 'the response head');
    const gotBody = body(stream);
    stream.end(requestBody);
    const [farEndGot, respHead, respBody] = await Promise.all([served, gotHead, gotBody]);
    assert.deepEqual(
      { request: farEndGot.equals(requestBody), head: respHead, response: respBody.equals(responseBody) },
      { request: true, head: responseHead, response: true },
    );
  }));
}

test('session: a finished stream is released on both sides', () => withPair(async (p) => {
  const served = (async () => {
    const s = await nextStream(p.server);
    await body(s);
    s.respond({ status: 200, statusMessage: 'OK', headers: [] });
    const closed = within(new Promise((r) => s.once('close', r)), 'the far stream to close');
    s.end('ok');
    await closed;
  })();
  const stream = p.client.openStream(head('rel'));
  const closed = within(new Promise((r) => stream.once('close', r)), 'the stream to close');
  stream.end('hi');
  await body(stream);
  await Promise.all([served, closed]);
  assert.deepEqual({ client: p.client.streams.size, server: p.server.streams.size }, { client: 0, server: 0 });
}));

test('session: 20 concurrent streams with interleaved data each get their own bytes back', () => withPair(async (p) => {
  const N = 20;
  const PIECES = 8;
  // The far end echoes each stream's body, reversed piecewise by prefixing its id, once it ends.
  p.server.on('stream', (s) => {
    void body(s).then((b) => {
      s.respond({ status: 200, statusMessage: 'OK', headers: [] });
      s.end(Buffer.concat([Buffer.from(`${s.head?.url}|`), b]));
    }, () => {});
  });
  const streams = Array.from({ length: N }, (_, i) => p.client.openStream(head(`c${i}`)));
  const replies = streams.map((s) => body(s));
  const sentBodies: Buffer[][] = streams.map(() => []);
  // Interleave: piece k of every stream before piece k+1 of any.
  for (let k = 0; k < PIECES; k++) {
    for (let i = 0; i < N; i++) {
      const piece = pattern(1000 + i * 37 + k, i * PIECES + k);
      at(sentBodies, i).push(piece);
      at(streams, i).write(piece);
    }
  }
  for (const s of streams) s.end();
  const got = await Promise.all(replies);
  const mismatched = got
    .map((b, i) => ({ i, ok: b.equals(Buffer.concat([Buffer.from(`http://127.0.0.1:9/c${i}|`), ...at(sentBodies, i)])) }))
    .filter((r) => !r.ok)
    .map((r) => r.i);
  assert.deepEqual(mismatched, []);
}));

test('session: a slow stream does not block a fast one', () => withPair(async (p) => {
  // The far end never reads the slow stream, so it stalls once its window is full.
  p.server.on('stream', (s) => {
    if (s.head?.url.endsWith('/slow')) return;
    void body(s).then((b) => { s.respond({ status: 200, statusMessage: 'OK', headers: [] }); s.end(b); }, () => {});
  });
  const slow = p.client.openStream(head('slow'));
  slow.on('error', () => {});
  slow.write(pattern(4 * WINDOW, 3));
  const fast = p.client.openStream(head('fast'));
  const reply = body(fast);
  fast.end(pattern(1000, 4));
  const got = await reply;
  assert.ok(got.equals(pattern(1000, 4)));
}));

// ---- closing ----

const CLOSERS: { name: string; closer: 'client' | 'server' }[] = [
  { name: 'the initiator', closer: 'client' },
  { name: 'the acceptor', closer: 'server' },
];

for (const c of CLOSERS) {
  test(`session: closing ${c.name} fails in-flight streams on both sides with tunnel_lost`, () => withPair(async (p) => {
    const closer = c.closer === 'client' ? p.client : p.server;
    const other = c.closer === 'client' ? p.server : p.client;
    const incoming = nextStream(other);
    const mine = closer.openStream(head('inflight'));
    mine.write('part of a body');
    const theirs = await incoming;
    const errors = Promise.all([failure(mine), failure(theirs)]);
    const otherClosed = closeOf(other);
    closer.close();
    const [[mineErr, theirsErr], otherClose] = await Promise.all([errors, otherClosed]);
    assert.deepEqual(
      { mine: resetCode(mineErr), theirs: resetCode(theirsErr), otherCode: otherClose.code, closed: [closer.closed, other.closed] },
      { mine: 'tunnel_lost', theirs: 'tunnel_lost', otherCode: 1000, closed: [true, true] },
    );
  }));
}

test('session: openStream on a closed session throws', () => withPair(async (p) => {
  p.client.close();
  assert.throws(() => p.client.openStream(head('late')), (err: unknown) => {
    assert.ok(err instanceof WestError);
    assert.equal(err.code, 'tunnel_lost');
    assert.match(err.message, /tunnel to node-S is closed/);
    return true;
  });
}));

test('session: close() is idempotent and emits "close" once', () => withPair(async (p) => {
  let closes = 0;
  p.client.on('close', () => { closes++; });
  const otherClosed = closeOf(p.server);
  p.client.close();
  p.client.close();
  await otherClosed;
  assert.equal(closes, 1);
}));

test('session: the tunnel_lost message names the peer', () => withPair(async (p) => {
  const s = p.client.openStream(head('named'));
  const err = failure(s);
  p.client.close(1000, 'shutting down');
  const e = await err;
  assert.match(e instanceof Error ? e.message : String(e), /node-C: tunnel to node-S closed \(shutting down\)/);
}));

test('session: frames queued in the same turn as close() still reach the peer, before the close', () => withPair(async (p) => {
  const incoming = nextStream(p.server);
  const s = p.client.openStream(head('last-words'));
  const atServer = await incoming;
  const reset = failure(atServer);
  const serverClosed = closeOf(p.server);
  // A RESET queued and the tunnel closed in one turn, as a draining node does when its last
  // request times out: the peer must learn why the stream ended, not just that the tunnel went.
  s.on('error', () => {});
  s.reset('origin_timeout', 'no answer in time');
  p.client.close(1001, 'shutting down');
  assert.equal(resetCode(await reset), 'origin_timeout');
  assert.equal((await serverClosed).code, 1001);
}));

test('session: the frames of one turn leave as one WebSocket message', () => withPair(async (p) => {
  let messages = 0;
  p.serverWs.on('message', () => { messages++; });
  const arrived = within(new Promise<void>((resolve) => {
    let n = 0;
    p.server.on('stream', (st) => { st.resume(); st.on('end', () => { if (++n === 3) resolve(); }); });
  }), 'three streams to end at the server');
  for (let i = 0; i < 3; i++) {
    p.client.openStream(head(`batch-${i}`)).end(Buffer.from(`body ${i}`));
  }
  await arrived;
  assert.equal(messages, 1, 'three OPEN, DATA and END frames in one message');
}));

test('session: the peer\'s address comes from the socket the upgrade handed over, and that socket is corked while a turn is written', () => withPair(async (p) => {
  let corks = 0;
  let uncorks = 0;
  const socket = p.clientSocket;
  const { cork, uncork } = socket;
  socket.cork = function (this: Socket) { corks++; cork.call(this); };
  socket.uncork = function (this: Socket) { uncorks++; uncork.call(this); };
  const arrived = nextStream(p.server);
  p.client.openStream(head('corked')).end('x');
  await arrived;
  assert.deepEqual(
    { corks, uncorks, server: [p.server.remoteAddress, p.server.remotePort], client: [p.client.remoteAddress, p.client.remotePort] },
    { corks: 1, uncorks: 1, server: ['127.0.0.1', socket.localPort], client: ['127.0.0.1', p.serverSocket.localPort] },
  );
}));

test('session: however many streams write, the tunnel queues at most TUNNEL_HIGH_WATER plus one frame', () => withPair(async (p) => {
  // The peer stops reading, so everything written piles up at this end once the kernel's
  // buffers are full: 200 streams with a window each (12.5 MiB) is far more than they hold.
  // (A peer of the previous release: no tunnel window, which would stop the writers sooner.)
  const peerSocket = p.serverSocket;
  peerSocket.pause();
  const clientWs = p.clientWs;
  let most = 0;
  const sampler = setInterval(() => { most = Math.max(most, clientWs.bufferedAmount); }, 1);
  try {
    const streams = Array.from({ length: 200 }, (_, i) => p.client.openStream(head(`flood-${i}`)));
    for (const s of streams) {
      s.on('error', () => {});
      s.write(Buffer.alloc(WINDOW, 0x61));
    }
    // Wait until the writers are parked: the queue holds the same bytes on two polls in a row.
    let last = -1;
    await waitFor('the writers to park', () => {
      const now = clientWs.bufferedAmount;
      const settled = now > 0 && now === last;
      last = now;
      return settled;
    }, WAIT_MS, 20);
    most = Math.max(most, clientWs.bufferedAmount);
  } finally {
    clearInterval(sampler);
    peerSocket.resume();
  }
  assert.ok(most <= TUNNEL_HIGH_WATER + MAX_DATA_FRAME + 1024, `the tunnel queued ${most} bytes (bound ${TUNNEL_HIGH_WATER} + one frame)`);
}, WINDOW, []));
