/**
 * Origins that break HTTP, as the far end's own HTTP/1.1 client (src/proxy/far/h1/) meets
 * them: a malformed head, framing that contradicts itself, a head too large, an answer dribbled
 * a byte at a time, an answer before the body was read, none at all, a reset mid-answer, bytes
 * nobody asked for. Each fails its own request with the code the undici client gave it (or is
 * read correctly), and no connection that carried one is used again. Also a hostile peer: an
 * OPEN whose target or framing would smuggle a second request to the origin is refused.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { missingPrograms } from '../helpers/daemon.js';
import { waitFor } from '../helpers/net.js';
import { ScriptedOrigin, send, startFarEnd, type FarEnd } from '../helpers/far-end.js';

let far: FarEnd;
let origin: ScriptedOrigin;

before(async () => {
  far = await startFarEnd({ responseTimeoutMs: 1500, connectTimeoutMs: 500 });
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

/** Writes `text` one byte per packet. */
async function dribble(socket: net.Socket, text: string): Promise<void> {
  socket.setNoDelay(true);
  for (const byte of Buffer.from(text, 'latin1')) {
    if (socket.destroyed) return;
    await new Promise<void>((resolve) => socket.write(Buffer.of(byte), () => resolve()));
  }
}

const malformed: [string, string][] = [
  ['a status line that is not HTTP', 'HTP/1.1 200 OK\r\n\r\n'],
  ['a status code that is not a number', 'HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n'],
  ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc'],
  ['two equal Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc'],
  ['Content-Length with chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
  ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
  ['a header with a bare LF in its value', 'HTTP/1.1 200 OK\r\nX: a\nb\r\nContent-Length: 0\r\n\r\n'],
  [`a head over Node's limit (${32 * 1024} bytes of header)`, `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(32 * 1024)}\r\nContent-Length: 0\r\n\r\n`],
  // llhttp takes any three digits; a RESPONSE frame with status 0 would close the whole tunnel at the near end.
  ['status 000', 'HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n'],
  ['status 099 (below the 1xx range)', 'HTTP/1.1 099 Low\r\n\r\n'],
  ['101 Switching Protocols to a plain GET', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade\r\n\r\n'],
];

for (const [what, answer] of malformed) {
  test(`${what}: origin_error, and the connection is not reused`, async () => {
    origin.answer = (req) => req.socket.write(answer);
    const r = await send(far, origin.url('/bad'));
    assert.equal(r.reset?.code, 'origin_error', JSON.stringify(r));
    assert.match(r.reset?.message ?? '', /^origin http:\/\/127\.0\.0\.1:\d+ (failed|broke off mid-response) \(/);
    await waitFor('the bad connection to be closed', () => origin.open === 0);
    origin.answer = (req) => req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    assert.equal((await send(far, origin.url('/next'))).body.toString(), 'ok');
  });
}

test('an answer split into one-byte packets (head, chunked body, trailers) arrives whole', async () => {
  const headers = Array.from({ length: 40 }, (_, i) => `X-H${i}: v${i}\r\n`).join('');
  origin.answer = (req) => void dribble(req.socket, `HTTP/1.1 200 OK\r\n${headers}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n`);
  const r = await send(far, origin.url('/dribble'), { timeoutMs: 30_000 });
  assert.equal(r.response?.status, 200, JSON.stringify(r.reset));
  assert.equal(r.body.toString(), 'hello world');
  assert.equal(r.response?.headers.filter((h) => /^X-H\d+$/.test(h)).length, 40);
  assert.deepEqual(r.trailers, ['X-Trailer', 't']);
  // The connection is sound: the next request uses it.
  origin.answer = (req) => req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  assert.equal((await send(far, origin.url('/next'))).body.toString(), 'ok');
  assert.equal(origin.connections, 1);
});

test('a 100 Continue nobody asked for is ignored: the answer after it arrives', async () => {
  origin.answer = (req) => req.socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal');
  const r = await send(far, origin.url('/unasked'));
  assert.deepEqual(r.informs, []);
  assert.equal(r.body.toString(), 'final');
});

test('a close-delimited answer (no length, no chunks) ends where the origin closes', async () => {
  origin.answer = (req) => req.socket.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
  const r = await send(far, origin.url('/eof'));
  assert.equal(r.reset, undefined);
  assert.equal(r.body.toString(), 'until the end');
});

test('an origin that closes mid-body: origin_reset, "broke off mid-response"', async () => {
  origin.answer = (req) => req.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this');
  const r = await send(far, origin.url('/short'));
  assert.equal(r.response?.status, 200);
  assert.equal(r.reset?.code, 'origin_reset');
  assert.match(r.reset?.message ?? '', /broke off mid-response/);
});

test('an origin that resets the connection mid-body: origin_reset', async () => {
  origin.answer = (req) => {
    req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart', () => req.socket.resetAndDestroy());
  };
  const r = await send(far, origin.url('/reset'));
  assert.equal(r.reset?.code, 'origin_reset');
});

test('an origin that closes before answering: origin_reset (a fresh connection is not tried again)', async () => {
  origin.answer = (req) => req.socket.destroy();
  const r = await send(far, origin.url('/hangup'));
  assert.equal(r.reset?.code, 'origin_reset');
  assert.equal(origin.requests.length, 1);
});

test('an origin that never answers: origin_timeout after west.responseTimeout, and its connection is closed', async () => {
  origin.answer = () => {};
  const r = await send(far, origin.url('/never'));
  assert.equal(r.reset?.code, 'origin_timeout');
  await waitFor('the silent connection to be closed', () => origin.open === 0);
});

test('an origin that answers before reading the body and keeps the connection: the answer arrives, the rest of the body is dropped', async () => {
  origin.onHead = (req) => {
    req.socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope');
    return true;
  };
  const r = await send(far, origin.url('/auth'), { method: 'PUT', headers: ['Content-Length', String(4_000_000)], body: [Buffer.alloc(4_000_000)] });
  assert.equal(r.response?.status, 401);
  assert.equal(r.body.toString(), 'nope');
  assert.equal(r.reset, undefined);
  await waitFor('the connection to be given up', () => origin.open === 0);
});

test('a request whose body never starts never reaches the origin (its head waits for the body): origin_timeout', async () => {
  let heads = 0;
  origin.onHead = () => { heads++; return false; };
  const r = await send(far, origin.url('/stuck'), { method: 'POST', headers: ['Transfer-Encoding', 'chunked'], end: false });
  assert.equal(r.reset?.code, 'origin_timeout');
  assert.equal(heads, 0);
});

test('bytes after the answer (more than its Content-Length) and bytes while idle: that connection is dropped, answers stay right', async () => {
  origin.answer = (req) => req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nforged');
  const r = await send(far, origin.url('/extra'));
  assert.equal(r.body.toString(), 'ok');
  await waitFor('the connection with stray bytes to be closed', () => origin.open === 0);
  origin.answer = (req) => {
    req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    setTimeout(() => req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged'), 50);
  };
  assert.equal((await send(far, origin.url('/idle-bytes'))).body.toString(), 'ok');
  await waitFor('the connection with bytes while idle to be closed', () => origin.open === 0);
  origin.answer = (req) => req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal');
  assert.equal((await send(far, origin.url('/after'))).body.toString(), 'real');
});

test('port 0 in the URL is dialled as port 0 (refused), not as the default port 80', async () => {
  const r = await send(far, 'http://127.0.0.1:0/zero');
  assert.ok(r.reset, 'the request fails');
  assert.doesNotMatch(r.reset.message, /:80\b/, r.reset.message);
});

test('a refused connection: origin_refused', async () => {
  const port = origin.port;
  await origin.close();
  const r = await send(far, `http://127.0.0.1:${port}/`);
  assert.equal(r.reset?.code, 'origin_refused');
  origin = new ScriptedOrigin();
  await origin.listen();
});

test('an origin whose listen queue is full (the connection never completes): connect_timeout after west.connectTimeout', { skip: missingPrograms('python3') }, async () => {
  // A socket that listens with a backlog of 0 and never accepts: one connection fills its
  // queue, and the kernel drops the SYNs of the next.
  const py = spawn('python3', ['-c', "import socket,time\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(0); print(s.getsockname()[1], flush=True); time.sleep(60)"]);
  const filler: net.Socket[] = [];
  try {
    const port = await new Promise<number>((resolve) => py.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const first = net.connect(port, '127.0.0.1');
    filler.push(first);
    await new Promise((resolve) => first.once('connect', resolve));
    const r = await send(far, `http://127.0.0.1:${port}/`);
    assert.equal(r.reset?.code, 'connect_timeout', JSON.stringify(r.reset));
    assert.equal(r.reset?.message, `connection to origin 127.0.0.1:${port} timed out after 0.5 s`);
  } finally {
    for (const s of filler) s.destroy();
    py.kill();
  }
});

// A hostile peer: what it puts in an OPEN must not turn into a second request at the origin.
const smuggling: [string, string, string[]][] = [
  ['a target with a space', '/a HTTP/1.1', []],
  ['a target with a tab', '/a\tHTTP/1.1', []],
  ['a target with a control character', '/a\x01', []],
  ['two different Content-Lengths', '/cl', ['Content-Length', '3', 'Content-Length', '30']],
  ['a Content-Length that is not a number', '/cl', ['Content-Length', '3x']],
];

for (const [what, path, headers] of smuggling) {
  test(`an OPEN with ${what}: bad_request, nothing reaches the origin`, async () => {
    const r = await send(far, `http://127.0.0.1:${origin.port}${path}`, { method: 'POST', headers, body: ['abc'] });
    assert.equal(r.reset?.code, 'bad_request', JSON.stringify(r));
    assert.equal(origin.requests.length, 0);
  });
}

test('an OPEN with Content-Length and chunked: the origin sees Content-Length only', async () => {
  origin.answer = (req) => req.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${req.body.length}\r\n\r\n${req.body.toString()}`);
  const r = await send(far, origin.url('/clte'), { method: 'POST', headers: ['Content-Length', '3', 'Transfer-Encoding', 'chunked'], body: ['abc'] });
  assert.equal(r.body.toString(), 'abc');
  assert.doesNotMatch(origin.requests[0]?.head ?? '', /transfer-encoding/i);
});
