/**
 * The lean HTTP/1.1 front of a plain-http listener (src/proxy/near/h1/): two listeners with
 * the same config in front of the same tunnel and origins, one with the lean front and one
 * with Node's server alone, are sent the same bytes. What the lean front serves itself (counted
 * in `frontCounts.served`) and what it hands to Node's server (`handoffs`) must be answered
 * byte for byte alike (Date aside), hostile heads included; a real client (curl) and pipelining
 * go through the lean path.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { DEFAULT_TUNING, type ListenerConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import type { OutgoingContext } from '../../src/proxy/far/attempt.js';
import { OriginPools } from '../../src/proxy/far/origins.js';
import { performRequest } from '../../src/proxy/far/perform.js';
import { ProxyListener } from '../../src/proxy/near/listener.js';
import { findProgram } from '../helpers/daemon.js';
import { waitFor } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { pair as sessionPair, type Pair } from '../helpers/session-pair.js';

const origin = new Origin();
/** Answers the plain origin has no route for: chunked bodies (with and without trailers), 1xx hints. */
const odd = http.createServer((req, res) => {
  req.resume();
  if (req.url === '/chunked') {
    res.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Sum' });
    res.write('part one, ');
    res.addTrailers({ 'X-Sum': '42' });
    res.end('part two');
  } else if (req.url === '/streamed') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('no length, ');
    res.end('no trailers');
  } else if (req.url === '/hints') {
    res.writeEarlyHints({ link: '</a.css>; rel=preload; as=style' });
    res.end('hinted');
  } else {
    res.writeHead(204);
    res.end();
  }
});
let pair: Pair;
let ctx: OutgoingContext;
let lean: ProxyListener;
let plain: ProxyListener;
const TUNING = { ...DEFAULT_TUNING, headerTimeoutMs: 1000 };

function listenerConfig(): ListenerConfig {
  const to = (port: number, p: string): URL => new URL(`http://127.0.0.1:${port}${p}`);
  const oddPort = (odd.address() as AddressInfo).port;
  return {
    key: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0, target: { kind: 'ea', url: 'ws://test' },
    mappings: [
      { path: '/o', outgoing: to(origin.port, '/'), allow: [] },
      { path: '/c', outgoing: to(oddPort, '/'), allow: [] },
      { path: '/denied', outgoing: to(origin.port, '/'), allow: ['10.9.9.9'] },
    ],
  };
}

before(async () => {
  await origin.listen();
  await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
  pair = await sessionPair();
  ctx = { nodeName: 'far', egress: undefined, responseTimeoutMs: 5000, log: silentLogger, origins: new OriginPools(2000) };
  pair.server.on('stream', (s) => {
    s.on('error', () => { /* resets are what some cases provoke */ });
    performRequest(s, 'far', ctx);
  });
  const options = { config: listenerConfig(), nodeName: 'near', tuning: TUNING, log: silentLogger, resolveSession: () => pair.client };
  lean = new ProxyListener(options);
  plain = new ProxyListener({ ...options, leanFront: false });
  await lean.listen();
  await plain.listen();
});

after(async () => {
  await lean.close();
  await plain.close();
  await pair.close();
  ctx.origins.close();
  await origin.close();
  await new Promise<void>((resolve) => {
    odd.close(() => resolve());
    odd.closeAllConnections();
  });
});

/** Writes `pieces` (latin1) one after another and reads until the listener closes the connection (5 s at most). */
async function exchange(port: number, pieces: string[]): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => { /* a reset after the answer is fine */ });
  await once(socket, 'connect');
  let answer = '';
  socket.setEncoding('latin1').on('data', (c: string) => { answer += c; });
  const closed = once(socket, 'close');
  const timer = setTimeout(() => socket.destroy(), 5000);
  for (const piece of pieces) await new Promise<void>((resolve) => socket.write(Buffer.from(piece, 'latin1'), () => resolve()));
  await closed;
  clearTimeout(timer);
  return answer.replace(/^Date: .*\r$/gm, 'Date: -\r');
}

/** The same bytes to both listeners: the answers, and what the lean front did with them. */
async function compare(pieces: string[]): Promise<{ lean: string; plain: string; served: number; handoffs: number }> {
  const counts = { ...lean.frontCounts };
  const leanAnswer = await exchange(lean.port, pieces);
  const plainAnswer = await exchange(plain.port, pieces);
  const now = lean.frontCounts;
  assert.ok(now && counts.served !== undefined && counts.handoffs !== undefined);
  return { lean: leanAnswer, plain: plainAnswer, served: now.served - counts.served, handoffs: now.handoffs - counts.handoffs };
}

const close = 'Connection: close\r\n';
const ok = (extra = ''): string => `GET /o/status/200 HTTP/1.1\r\nHost: x\r\n${extra}${close}\r\n`;

/** Heads the lean front serves itself: its answers are Node's, byte for byte. */
const servedCases: [string, string[], number][] = [
  ['a GET', [ok()], 1],
  ['a HEAD', [`HEAD /o/bytes/10 HTTP/1.1\r\nHost: x\r\n${close}\r\n`], 1],
  ['a POST with a body in pieces', ['POST /o/status/201 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n', `${close}\r\nhello`, ' body'], 1],
  ['204 and 304 answers', [`GET /o/status/204 HTTP/1.1\r\nHost: x\r\n\r\nGET /o/status/304 HTTP/1.1\r\nHost: x\r\n${close}\r\n`], 2],
  ['a chunked answer with trailers', [`GET /c/chunked HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n${close}\r\n`], 1],
  ['a 103 before the answer', [`GET /c/hints HTTP/1.1\r\nHost: x\r\n${close}\r\n`], 1],
  ['HTTP/1.0 (an answer without length ends with the connection)', ['GET /c/streamed HTTP/1.0\r\nHost: x\r\n\r\n'], 1],
  ['HTTP/1.0 and an answer that announces trailers (no Trailer header without chunked)', ['GET /c/chunked HTTP/1.0\r\nHost: x\r\n\r\n'], 1],
  ['HTTP/1.0 keep-alive with a length, then close', ['GET /o/bytes/5 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n', 'GET /o/bytes/3 HTTP/1.0\r\nHost: x\r\n\r\n'], 2],
  ['no mapping: 404', [`GET /nothing HTTP/1.1\r\nHost: x\r\n${close}\r\n`], 1],
  ['no mapping for a HEAD: 404 without a body', [`HEAD /nothing HTTP/1.1\r\nHost: x\r\n${close}\r\n`], 1],
  ['a client the mapping refuses: 403', [`GET /denied/x HTTP/1.1\r\nHost: x\r\n${close}\r\n`], 1],
  ['a dot segment: 400, and the pipelined request behind it is not served', ['GET /o/../x HTTP/1.1\r\nHost: x\r\n\r\n', ok()], 1],
  ['a request behind Connection: close is not served', [ok() + ok()], 1],
];

for (const [name, pieces, served] of servedCases) {
  test(`served by the lean front, answered as Node's server answers: ${name}`, async () => {
    const got = await compare(pieces);
    assert.equal(got.lean, got.plain);
    assert.match(got.lean, /^HTTP\/1\.1 \d{3} /);
    assert.deepEqual([got.served, got.handoffs], [served, 0]);
  });
}

/** Heads (hostile ones first) the lean front must hand to Node's server: answered as Node's server answers. */
const handedOffCases: [string, string[]][] = [
  ['bare LF line ends', ['GET /o/status/200 HTTP/1.1\nHost: x\nConnection: close\n\n']],
  ['CR without LF', [`GET /o/status/200 HTTP/1.1\r\nHost: x\rX-A: b\r\n${close}\r\n`]],
  ['a space before the colon', [`GET /o/status/200 HTTP/1.1\r\nHost : x\r\n${close}\r\n`]],
  ['obs-fold', [ok('X-A: a\r\n b\r\n')]],
  ['duplicate Content-Length', [`POST /o/status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n${close}\r\nab`]],
  ['Content-Length +1', [`POST /o/status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n${close}\r\na`]],
  ['Content-Length 1,1', [`POST /o/status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n${close}\r\na`]],
  ['Content-Length with a leading zero', [`POST /o/status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 01\r\n${close}\r\na`]],
  ['a huge Content-Length', [`POST /o/status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n${close}\r\n`]],
  ['Content-Length and Transfer-Encoding', [`POST /o/status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n${close}\r\n0\r\n\r\n`]],
  ['a chunked body', [`POST /o/status/200 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n${close}\r\n5\r\nhello\r\n0\r\n\r\n`]],
  ['NUL in a value', [ok('X-A: a\u0000b\r\n')]],
  ['a byte >= 0x80 in a value', [ok('X-A: caf\u00e9\r\n')]],
  ['a header line longer than west.maxHeaderSize', [ok(`X-A: ${'a'.repeat(DEFAULT_TUNING.maxHeaderSize + 10)}\r\n`)]],
  ['Expect: 100-continue', [`PUT /o/status/200 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n${close}\r\n`, 'ab']],
  ['CONNECT', ['CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n']],
  ['no Host', [`GET /o/status/200 HTTP/1.1\r\n${close}\r\n`]],
  ['HTTP/1.0 without Host', ['GET /o/status/200 HTTP/1.0\r\n\r\n']],
  ['absolute-form target', [`GET http://x/o/status/200 HTTP/1.1\r\nHost: x\r\n${close}\r\n`]],
  ['an unknown method', [`FOO /o/status/200 HTTP/1.1\r\nHost: x\r\n${close}\r\n`]],
  ['a TLS client hello', ['\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003']],
  ['a head in many pieces', ok().match(/.{1,3}/gs) ?? []],
];

for (const [name, pieces] of handedOffCases) {
  test(`handed to Node's server, answered as it answers: ${name}`, async () => {
    const got = await compare(pieces);
    assert.equal(got.lean, got.plain);
    assert.ok(got.handoffs === 1 || (name === 'a head in many pieces' && got.served === 1), `served ${got.served}, handed off ${got.handoffs}`);
  });
}

test('a request hidden in a body is never performed: the bytes after the body are no request', async () => {
  // The body of the first request is `GET /`; what follows starts with `o/status/207`. Node's
  // server closes the connection without a word when it meets such junk while an answer is
  // still owed, and answers 400 when it meets it after (as the lean front, which reads the
  // next head only once the answer is out, always does): the smuggled request is never served.
  const smuggle = `GET /o/status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /o/status/207 HTTP/1.1\r\nHost: x\r\n${close}\r\n`;
  const seen = origin.seen.length;
  const got = await compare([smuggle]);
  for (const answer of [got.lean, got.plain]) {
    assert.deepEqual([...answer.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => m[1]).filter((s) => s !== '400'), ['200']);
  }
  assert.match(got.lean, /\r\n\r\nHTTP\/1\.1 400 Bad Request\r\n[^]*HPE_INVALID_METHOD/);
  assert.deepEqual(origin.seen.slice(seen).map((r) => r.url), ['/status/200', '/status/200']);
  assert.deepEqual([got.served, got.handoffs], [1, 1]);
});

test('a head that does not come in time: 408, as from Node’s server', async () => {
  const got = await compare(['GET /o/status/200 HT']);
  assert.equal(got.lean, got.plain);
  assert.match(got.lean, /^HTTP\/1\.1 408 /);
});

/** Sends `pieces` with `gapMs` between them; resolves with what came back and how long until the listener closed. */
async function paced(port: number, pieces: string[], gapMs: number, waitMs: number): Promise<{ answer: string; closedAfterMs: number | undefined }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const start = Date.now();
  let answer = '';
  let closedAt: number | undefined;
  socket.setEncoding('latin1').on('data', (c: string) => { answer += c; });
  socket.once('close', () => { closedAt = Date.now(); });
  for (const piece of pieces) {
    if (socket.destroyed) break;
    socket.write(Buffer.from(piece, 'latin1'));
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  await waitFor('the listener to close the connection', () => closedAt !== undefined, waitMs).catch(() => undefined);
  socket.destroy();
  return { answer, closedAfterMs: closedAt === undefined ? undefined : closedAt - start };
}

test('a head trickled in many pieces past west.headerTimeout: 408, also when handed to Node\'s server on the way', async () => {
  const head = `GET /o/status/200 HTTP/1.1\r\nHost: x\r\nX-Slow: ${'s'.repeat(30)}\r\n${close}\r\n`;
  const pieces = head.match(/.{1,3}/gs) ?? [];
  // ~30 pieces 60 ms apart: past the 1 s header timeout before the head is whole.
  const r = await paced(lean.port, pieces, 60, 5000);
  assert.match(r.answer, /^HTTP\/1\.1 408 /, r.answer.slice(0, 120));
});

test('the rest of a body that comes after west answered (404) does not keep the connection open: it closes as an idle one', async () => {
  const r = await paced(lean.port, ['POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n', '0123456789'], 300, 12_000);
  assert.match(r.answer, /^HTTP\/1\.1 404 /);
  assert.ok(r.closedAfterMs !== undefined, 'the connection was closed by the listener');
  // Keep-alive 5 s plus Node's 1 s slack, checked every second.
  assert.ok(r.closedAfterMs < 9000, `closed after ${r.closedAfterMs} ms`);
});

test('a pipelined trio on one connection is answered in order by the lean front', async () => {
  const before = lean.frontCounts?.served ?? 0;
  const answer = await exchange(lean.port, [
    'GET /o/status/201 HTTP/1.1\r\nHost: x\r\n\r\nGET /o/status/202 HTTP/1.1\r\nHost: x\r\n\r\n' + `GET /o/status/203 HTTP/1.1\r\nHost: x\r\n${close}\r\n`,
  ]);
  assert.deepEqual([...answer.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => m[1]), ['201', '202', '203']);
  assert.deepEqual([...answer.matchAll(/status (\d{3})/g)].map((m) => m[1]), ['201', '202', '203']);
  assert.equal((lean.frontCounts?.served ?? 0) - before, 3);
});

const curl = findProgram('curl');

/** Runs curl; resolves with its stdout and stderr. */
function runCurl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(curl ?? 'curl', ['-sS', '--http1.1', '--max-time', '10', ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`curl failed: ${err.message} ${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

test('curl through the lean front: GET, POST with a body, and keep-alive reuse', { skip: curl ? false : 'curl is not installed' }, async () => {
  const url = (p: string): string => `http://127.0.0.1:${lean.port}${p}`;
  const before = { ...lean.frontCounts };
  const get = await runCurl(['-i', url('/o/status/200')]);
  assert.match(get.stdout, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(get.stdout, /\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n/);
  assert.match(get.stdout, /\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
  assert.match(get.stdout, /status 200$/);

  const dir = await mkdtemp(path.join(tmpdir(), 'west-lean-'));
  const file = path.join(dir, 'body');
  const body = Buffer.alloc(3_000_000, 'west ');
  await writeFile(file, body);
  try {
    // Without `Expect: 100-continue` (curl sends it for large bodies, and the lean front hands it off).
    const post = await runCurl(['--data-binary', `@${file}`, '-H', 'Content-Type: text/plain', '-H', 'Expect:', url('/o/echo')]);
    const echoed = JSON.parse(post.stdout) as { method: string; bodyBytes: number; sha256: string };
    assert.deepEqual([echoed.method, echoed.bodyBytes, echoed.sha256], ['POST', body.length, createHash('sha256').update(body).digest('hex')]);
    // With it, the connection goes to Node's server, and the answer is the same.
    const expecting = await runCurl(['--data-binary', `@${file}`, '-H', 'Content-Type: text/plain', url('/o/echo')]);
    assert.equal((JSON.parse(expecting.stdout) as { bodyBytes: number }).bodyBytes, body.length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const twice = await runCurl(['-v', url('/o/status/201'), url('/o/status/202')]);
  assert.equal(twice.stdout, 'status 201status 202');
  assert.match(twice.stderr, /Re-using existing connection/);
  const now = lean.frontCounts;
  assert.deepEqual([(now?.served ?? 0) - (before.served ?? 0), (now?.handoffs ?? 0) - (before.handoffs ?? 0)], [4, 1]);
});

test('a client that pipelines without reading is not buffered without bound: the front stops reading', async () => {
  const socket = net.connect(lean.port, '127.0.0.1');
  socket.on('error', () => { /* destroyed below */ });
  await once(socket, 'connect');
  // The first request is never answered (/hang); what follows waits behind it, and once more
  // than a head's worth waits the front stops reading: the client's writes back up.
  socket.write('GET /o/hang HTTP/1.1\r\nHost: x\r\n\r\n');
  const block = Buffer.from('GET /o/status/200 HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(25_000), 'latin1');
  let written = 0;
  while (socket.writableLength < 8 * 1024 * 1024 && written < 256 * 1024 * 1024) {
    socket.write(block);
    written += block.length;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  socket.destroy();
  assert.ok(socket.writableLength >= 8 * 1024 * 1024, `the front read all ${written} bytes a client pipelined behind an unanswered request`);
});

test('stopAccepting closes idle lean connections; one in flight gets its answer with Connection: close', async () => {
  const options = { config: listenerConfig(), nodeName: 'near', tuning: TUNING, log: silentLogger, resolveSession: () => pair.client };
  const draining = new ProxyListener(options);
  await draining.listen();
  try {
    const idle = net.connect(draining.port, '127.0.0.1');
    const busy = net.connect(draining.port, '127.0.0.1');
    let idleAnswer = '';
    let busyAnswer = '';
    idle.setEncoding('latin1').on('data', (c: string) => { idleAnswer += c; });
    busy.setEncoding('latin1').on('data', (c: string) => { busyAnswer += c; });
    const idleClosed = once(idle, 'close');
    const busyClosed = once(busy, 'close');
    idle.write('GET /o/status/200 HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor('the idle connection’s answer', () => idleAnswer.includes('status 200'));
    // The busy one asks for a body that arrives only once the listener drains.
    busy.write('POST /o/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab');
    await waitFor('the busy request to be in flight', () => draining.stats.inFlight === 1);
    draining.stopAccepting();
    await idleClosed;
    busy.write('cd');
    await busyClosed;
    assert.match(busyAnswer, /^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n[^]*"bodyBytes":4/);
    assert.doesNotMatch(busyAnswer.split('\r\n\r\n')[0] ?? '', /keep-alive/i);
  } finally {
    await draining.close();
  }
});
