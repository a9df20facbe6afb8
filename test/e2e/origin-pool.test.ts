/**
 * The far end's own HTTP/1.1 client to plain-HTTP origins (src/proxy/far/h1/): connections
 * kept alive and reused, given up when the origin says so or closes them, one per concurrent
 * request, never reused after a cancel; bodies framed as they came; 1xx heads, HEAD and
 * trailers as HTTP has them. The origin here is a raw socket the test scripts byte by byte.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../helpers/at.js';
import { waitFor } from '../helpers/net.js';
import { ScriptedOrigin, send, startFarEnd, type FarEnd, type OriginRequest } from '../helpers/far-end.js';

let far: FarEnd;
let origin: ScriptedOrigin;

before(async () => {
  far = await startFarEnd();
});

beforeEach(async () => {
  await origin?.close();
  origin = new ScriptedOrigin();
  await origin.listen();
});

after(async () => {
  await origin.close();
  await far.close();
});

const ok = (req: OriginRequest, body = 'ok', extra = ''): void => {
  req.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`);
};

test('sequential requests share one kept-alive connection', async () => {
  for (let i = 0; i < 5; i++) {
    const r = await send(far, origin.url(`/seq/${i}`));
    assert.equal(r.response?.status, 200);
    assert.equal(r.body.toString(), 'ok');
  }
  assert.equal(origin.connections, 1);
  assert.deepEqual(origin.requests.map((r) => r.head.split(' ')[1]), [0, 1, 2, 3, 4].map((i) => `/seq/${i}`));
  assert.equal(far.ctx.origins.h1.idleConnections, 1);
});

test('an origin that closed an idle connection between requests: the next request still succeeds, on a new one', async () => {
  origin.answer = (req) => {
    ok(req);
    // Closed once the answer is out, as a server whose keep-alive timeout has run does.
    setImmediate(() => req.socket.end());
  };
  assert.equal((await send(far, origin.url('/a'))).response?.status, 200);
  await waitFor('the origin to close its side', () => origin.open === 0);
  const r = await send(far, origin.url('/b'));
  assert.equal(r.response?.status, 200, JSON.stringify(r.reset));
  assert.equal(origin.connections, 2);
});

test('a request whose body starts late, on a kept-alive connection the origin closes meanwhile: sent on a new one when the body comes (any method)', async () => {
  assert.equal((await send(far, origin.url('/warm'))).response?.status, 200);
  assert.equal(far.ctx.origins.h1.idleConnections, 1);
  // The head waits for the body's first bytes; the connection is taken at once.
  const stream = far.pair.client.openStream({
    kind: 'http', method: 'POST', url: origin.url('/late'), headers: ['Content-Length', '5'], hops: 1, to: '', id: 'late-body',
  });
  const answered = new Promise<{ status: number | undefined; body: string; error: string | undefined }>((resolve) => {
    const chunks: Buffer[] = [];
    let status: number | undefined;
    let error: string | undefined;
    stream.once('response', (h: { status: number }) => { status = h.status; stream.on('data', (c: Buffer) => chunks.push(c)); });
    stream.on('error', (err) => { error = err.message; });
    stream.once('close', () => resolve({ status, body: Buffer.concat(chunks).toString(), error }));
  });
  await waitFor('the kept-alive connection to be taken', () => far.ctx.origins.h1.idleConnections === 0);
  // The origin's keep-alive timeout runs out before the body comes.
  origin.sockets[0]?.end();
  // The far end, with nothing of the request sent yet, takes a new connection for it.
  await waitFor('a new connection', () => origin.connections === 2 && origin.sockets[0]?.destroyed === true);
  stream.end('hello');
  const r = await answered;
  assert.deepEqual(r, { status: 200, body: 'ok', error: undefined });
  assert.equal(origin.connections, 2);
  const late = origin.requests.filter((q) => q.head.startsWith('POST /late '));
  assert.equal(late.length, 1, 'the origin saw the POST once');
  assert.equal(late[0]?.body.toString(), 'hello');
});

test('an origin that closes a kept-alive connection as the next request arrives: a GET is sent again on a new connection', async () => {
  assert.equal((await send(far, origin.url('/first'))).response?.status, 200);
  let dropped = 0;
  origin.answer = (req) => {
    if (req.connection === 0) {
      dropped++;
      req.socket.destroy();
      return;
    }
    ok(req, 'again');
  };
  const r = await send(far, origin.url('/second'));
  assert.equal(r.response?.status, 200, JSON.stringify(r.reset));
  assert.equal(r.body.toString(), 'again');
  assert.equal(dropped, 1);
  assert.equal(origin.connections, 2);
});

test('a POST whose kept-alive connection is closed under it is not sent twice: it fails as origin_reset', async () => {
  assert.equal((await send(far, origin.url('/first'))).response?.status, 200);
  origin.answer = (req) => req.socket.destroy();
  const r = await send(far, origin.url('/post'), { method: 'POST', headers: ['Content-Length', '4'], body: ['data'] });
  assert.equal(r.reset?.code, 'origin_reset');
  assert.match(r.reset?.message ?? '', /^origin http:\/\/127\.0\.0\.1:\d+ failed \(/);
  assert.equal(origin.requests.length, 2, 'the POST reached the origin once');
});

test('Connection: close from the origin: that connection is not reused', async () => {
  origin.answer = (req) => ok(req, 'ok', 'Connection: close\r\n');
  for (let i = 0; i < 3; i++) assert.equal((await send(far, origin.url(`/c/${i}`))).response?.status, 200);
  assert.equal(origin.connections, 3);
  const r = await send(far, origin.url('/c/3'));
  assert.ok(!r.response?.headers.some((h) => h.toLowerCase() === 'connection'), 'hop-by-hop Connection is not passed on');
});

test('a Keep-Alive hint too short to trust (timeout=1): the connection is not kept', async () => {
  origin.answer = (req) => ok(req, 'ok', 'Keep-Alive: timeout=1\r\n');
  for (let i = 0; i < 2; i++) assert.equal((await send(far, origin.url(`/k/${i}`))).response?.status, 200);
  assert.equal(origin.connections, 2);
});

test('concurrent requests each get a connection of their own', async () => {
  const held: OriginRequest[] = [];
  origin.answer = (req) => {
    held.push(req);
    if (held.length === 4) for (const r of held) ok(r, r.head.split(' ')[1]);
  };
  const answers = await Promise.all([0, 1, 2, 3].map((i) => send(far, origin.url(`/p/${i}`))));
  assert.deepEqual(answers.map((r) => r.body.toString()), ['/p/0', '/p/1', '/p/2', '/p/3']);
  assert.equal(origin.connections, 4);
  assert.equal(far.ctx.origins.h1.idleConnections, 4);
  // The next ones reuse them.
  origin.answer = (req) => ok(req);
  await Promise.all([0, 1].map((i) => send(far, origin.url(`/again/${i}`))));
  assert.equal(origin.connections, 4);
});

test('a request cancelled mid-response destroys its origin connection; the next request gets a new one', async () => {
  origin.answer = (req) => req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nfirst bytes');
  const r = await send(far, origin.url('/cancel'), { onResponse: (stream) => stream.destroy() });
  assert.equal(r.response?.status, 200);
  await waitFor('the origin connection to be closed', () => origin.open === 0);
  origin.answer = (req) => ok(req);
  assert.equal((await send(far, origin.url('/after'))).response?.status, 200);
  assert.equal(origin.connections, 2);
});

test('bodies: Content-Length sent as given, a chunked body re-chunked, none without framing; POST without a body says Content-Length: 0', async () => {
  origin.answer = (req) => ok(req, req.body.toString());
  const big = 'x'.repeat(300_000);
  const cl = await send(far, origin.url('/cl'), { method: 'PUT', headers: ['content-length', String(big.length)], body: [big.slice(0, 1000), big.slice(1000)] });
  assert.equal(cl.body.toString(), big);
  assert.match(at(origin.requests, origin.requests.length - 1).head, /\r\ncontent-length: 300000(\r\n|$)/);
  const chunked = await send(far, origin.url('/te'), { method: 'POST', headers: ['Transfer-Encoding', 'chunked'], body: ['abc', 'defg'] });
  assert.equal(chunked.body.toString(), 'abcdefg');
  assert.match(at(origin.requests, origin.requests.length - 1).head, /\r\nTransfer-Encoding: chunked(\r\n|$)/);
  assert.doesNotMatch(at(origin.requests, origin.requests.length - 1).head, /content-length/i);
  const none = await send(far, origin.url('/none'));
  assert.doesNotMatch(at(origin.requests, origin.requests.length - 1).head, /content-length|transfer-encoding/i);
  assert.equal(none.body.toString(), '');
  await send(far, origin.url('/empty-post'), { method: 'POST' });
  assert.match(at(origin.requests, origin.requests.length - 1).head, /\r\nContent-Length: 0(\r\n|$)/);
  assert.equal(origin.connections, 1, 'all on one connection');
});

test('a body longer than its Content-Length: bad_request, and nothing past it reaches the origin', async () => {
  const r = await send(far, origin.url('/long'), { method: 'POST', headers: ['Content-Length', '3'], body: ['abcdef'] });
  assert.equal(r.reset?.code, 'bad_request');
  assert.ok(!origin.requests.some((q) => q.body.toString().includes('def')));
});

test('HEAD: the answer\'s Content-Length frames no body, and the connection serves the next request', async () => {
  origin.answer = (req) => {
    if (req.head.startsWith('HEAD')) req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n');
    else ok(req, 'after head');
  };
  const head = await send(far, origin.url('/h'), { method: 'HEAD' });
  assert.equal(head.response?.status, 200);
  assert.equal(head.body.length, 0);
  assert.ok(head.response?.headers.includes('12345'));
  const next = await send(far, origin.url('/g'));
  assert.equal(next.body.toString(), 'after head');
  assert.equal(origin.connections, 1);
});

test('1xx heads go ahead of the answer; 204 and 304 carry no body; trailers of a chunked answer arrive', async () => {
  origin.answer = (req) => {
    const path = req.head.split(' ')[1];
    if (path === '/hints') req.socket.write('HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone');
    else if (path === '/204') req.socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    else if (path === '/304') req.socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n');
    else req.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n');
  };
  const hints = await send(far, origin.url('/hints'));
  assert.deepEqual(hints.informs.map((h) => h.status), [103, 102]);
  assert.deepEqual(hints.informs[0]?.headers, ['Link', '</s.css>; rel=preload']);
  assert.equal(hints.body.toString(), 'done');
  assert.equal((await send(far, origin.url('/204'))).response?.status, 204);
  const notModified = await send(far, origin.url('/304'));
  assert.equal(notModified.response?.status, 304);
  assert.equal(notModified.body.length, 0);
  const trailers = await send(far, origin.url('/trailers'));
  assert.equal(trailers.body.toString(), 'abc');
  assert.deepEqual(trailers.trailers, ['X-Sum', '42']);
  assert.equal(origin.connections, 1);
});

test('an origin that answers an upload before reading it: the answer arrives, the connection is not reused', async () => {
  origin.onHead = (req) => {
    if (!req.head.startsWith('POST')) return false;
    req.socket.write('HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big!');
    return true;
  };
  const r = await send(far, origin.url('/upload'), { method: 'POST', headers: ['Content-Length', '2000000'], body: [Buffer.alloc(2_000_000)] });
  assert.equal(r.response?.status, 413);
  assert.equal(r.body.toString(), 'too big!');
  origin.onHead = undefined;
  assert.equal((await send(far, origin.url('/next'))).response?.status, 200);
  assert.equal(origin.connections, 2);
});

test('the idle pool is bounded: a connection beyond the bound is closed, not kept', async () => {
  const { MAX_IDLE_PER_ORIGIN } = await import('../../src/proxy/far/h1/pool.js');
  const held: OriginRequest[] = [];
  const n = MAX_IDLE_PER_ORIGIN + 4;
  origin.answer = (req) => {
    held.push(req);
    if (held.length === n) for (const r of held) ok(r);
  };
  await Promise.all(Array.from({ length: n }, (_, i) => send(far, origin.url(`/many/${i}`))));
  assert.equal(origin.connections, n);
  await waitFor('the connections beyond the bound to close', () => origin.open === MAX_IDLE_PER_ORIGIN);
  assert.ok(far.ctx.origins.h1.idleConnections <= MAX_IDLE_PER_ORIGIN, `${far.ctx.origins.h1.idleConnections} idle`);
});
