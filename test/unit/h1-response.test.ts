/**
 * The lean front's ResponseWriter (src/proxy/near/h1/response.ts) against Node's
 * ServerResponse as acceptRequest drives it (http.ts), byte for byte (Date aside): the same request head, the same response head,
 * body and trailers, written by each, for every method, version and Connection wish a served
 * request can have.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { parseHead } from '../../src/proxy/near/h1/head.js';
import { ResponseWriter } from '../../src/proxy/near/h1/response.js';
import { writeHead } from '../../src/proxy/near/http.js';

interface Answer {
  status: number;
  message: string;
  headers: string[];
  chunks: string[];
  trailers?: string[];
}

/** The answer the next connection gets, by the client's port. */
const answers = new Map<number, Answer>();

const node = http.createServer({ keepAliveTimeout: 5000, requireHostHeader: false }, (req, res) => {
  const a = answers.get(req.socket.remotePort ?? 0);
  assert.ok(a);
  // As acceptRequest writes a far end's head (http.ts).
  writeHead(res, { status: a.status, statusMessage: a.message, headers: a.headers });
  for (const c of a.chunks) res.write(c);
  if (a.trailers) res.addTrailers(pairs(a.trailers));
  res.end();
  res.on('finish', () => res.socket?.end());
});

const lean = net.createServer((socket) => {
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    const parsed = parseHead(buf, 0, buf.length, 8192);
    if (parsed.kind !== 'head') return;
    socket.removeAllListeners('data');
    const a = answers.get(socket.remotePort ?? 0);
    assert.ok(a);
    const { head } = parsed;
    const writer = new ResponseWriter(socket, head.method === 'HEAD', head.http10, head.keepAlive);
    writer.head(a.status, a.message, a.headers);
    for (const c of a.chunks) writer.write(Buffer.from(c));
    writer.end(a.trailers, () => socket.end());
  });
});

before(async () => {
  await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => lean.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  node.closeAllConnections();
  await new Promise<void>((resolve) => node.close(() => resolve()));
  await new Promise<void>((resolve) => lean.close(() => resolve()));
});

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] ?? '', flat[i + 1] ?? '']);
  return out;
}

async function fetchRaw(server: net.Server, request: string, answer: Answer): Promise<string> {
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(socket, 'connect');
  answers.set(socket.localPort ?? 0, answer);
  let got = '';
  socket.setEncoding('latin1').on('data', (c: string) => { got += c; });
  const closed = once(socket, 'close');
  socket.write(request);
  const timer = setTimeout(() => socket.destroy(), 5000);
  await closed;
  clearTimeout(timer);
  return got.replace(/^Date: .*\r$/m, 'Date: -\r');
}

const ANSWERS: [string, Answer][] = [
  ['a length and a body', { status: 200, message: 'OK', headers: ['Content-Type', 'text/plain', 'Content-Length', '11'], chunks: ['hello', ' world'] }],
  ['no length: chunked on 1.1, with trailers', { status: 200, message: 'OK', headers: ['Content-Type', 'text/plain'], chunks: ['one', '', 'two'], trailers: ['X-Sum', '3'] }],
  ['a Trailer header', { status: 200, message: 'Fine', headers: ['Trailer', 'X-Sum', 'X-A', 'b'], chunks: ['x'], trailers: ['X-Sum', '1'] }],
  ['a Trailer header and a length', { status: 200, message: 'OK', headers: ['Trailer', 'X-Sum', 'Content-Length', '1'], chunks: ['x'] }],
  ['204', { status: 204, message: 'No Content', headers: ['X-A', 'b'], chunks: [] }],
  ['304 with a length', { status: 304, message: 'Not Modified', headers: ['ETag', '"e"', 'Content-Length', '10'], chunks: [] }],
  ['the far end sends Date and Connection: close', { status: 404, message: '', headers: ['date', 'Mon, 01 Jan 2024 00:00:00 GMT', 'Connection', 'close', 'Content-Length', '2'], chunks: ['no'] }],
  ['a 500 with a body and no length', { status: 500, message: 'Internal Server Error', headers: [], chunks: ['oops'] }],
];

const REQUESTS: [string, string][] = [
  ['GET 1.1', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['GET 1.1 close', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
  ['HEAD 1.1', 'HEAD / HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['GET 1.0', 'GET / HTTP/1.0\r\nHost: x\r\n\r\n'],
  ['GET 1.0 keep-alive', 'GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n'],
  ['HEAD 1.0 keep-alive', 'HEAD / HTTP/1.0\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n'],
];

for (const [answerName, answer] of ANSWERS) {
  for (const [requestName, request] of REQUESTS) {
    test(`${answerName}, to ${requestName}: the bytes Node's ServerResponse writes`, async () => {
      const want = await fetchRaw(node, request, answer);
      const got = await fetchRaw(lean, request, answer);
      assert.equal(got, want);
    });
  }
}
