/**
 * The lean front's head parser (src/proxy/near/h1/head.ts) against Node's own (llhttp), on
 * random and mutated heads: whatever the lean parser serves, Node's parser must read the same
 * way (method, target, version, every header as sent, the body's length, keep-alive), or
 * request smuggling would open between the two. Handing off is always allowed: Node then
 * answers. Also: no input makes it throw, and no prefix of a head it serves is served as
 * something else (a head split over packets reads the same).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { parseHead, type LeanHead } from '../../src/proxy/near/h1/head.js';
import { connectRaw, fuzzParameters, fuzzTimeout, FUZZ_RUNS, showBytes } from '../helpers/fuzz.js';
import { mutate, SOME_MUTATIONS, type Part } from './mutate.js';

const MAX_HEADER = 8192;
const LIMIT = Math.floor((MAX_HEADER * 3) / 4);

/** What Node's parser made of a head: the request it emitted, or its parse error. */
interface NodeRead {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
  contentLength: string | undefined;
  keepAlive: boolean;
}

let server: http.Server;
const waiting = new Map<number, (read: NodeRead | string) => void>();

before(async () => {
  // The listener's options (src/proxy/near/listener.ts).
  server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 5000, maxHeaderSize: MAX_HEADER, requireHostHeader: false }, (req, res) => {
    waiting.get(req.socket.remotePort ?? 0)?.({
      method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders,
      contentLength: req.headers['content-length'], keepAlive: res.shouldKeepAlive,
    });
    res.destroy();
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: import('node:stream').Duplex) => {
    waiting.get(req.socket.remotePort ?? 0)?.('upgrade');
    socket.destroy();
  });
  server.on('connect', (req: http.IncomingMessage, socket: import('node:stream').Duplex) => {
    waiting.get(req.socket.remotePort ?? 0)?.('connect');
    socket.destroy();
  });
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    waiting.get(req.socket.remotePort ?? 0)?.('checkContinue');
    res.destroy();
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: import('node:stream').Duplex) => {
    waiting.get((socket as import('node:net').Socket).remotePort ?? 0)?.(`error ${err.code ?? err.message}`);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
});

/** Sends a head to Node's server and says what its parser made of it. */
async function nodeRead(raw: string): Promise<NodeRead | string> {
  const conn = await connectRaw((server.address() as AddressInfo).port);
  const read = new Promise<NodeRead | string>((resolve) => {
    waiting.set(conn.socket.localPort ?? 0, resolve);
    void conn.closed.then(() => resolve('closed without a request'));
  });
  conn.socket.write(Buffer.from(raw, 'latin1'));
  const timer = setTimeout(() => conn.socket.destroy(), 2000);
  const got = await read;
  clearTimeout(timer);
  waiting.delete(conn.socket.localPort ?? 0);
  conn.socket.destroy();
  await conn.closed;
  return got;
}

function lean(raw: string, end = raw.length): ReturnType<typeof parseHead> {
  const buf = Buffer.from(raw, 'latin1');
  return parseHead(buf, 0, end, LIMIT);
}

function assertSameRead(head: LeanHead, read: NodeRead | string, raw: string): void {
  const show = showBytes(raw);
  assert.equal(typeof read, 'object', `Node read ${show} as ${JSON.stringify(read)} where the lean parser served it`);
  if (typeof read !== 'object') return;
  assert.equal(head.method, read.method, show);
  assert.equal(head.url, read.url, show);
  assert.equal(head.http10 ? '1.0' : '1.1', read.httpVersion, show);
  assert.deepEqual(head.rawHeaders, read.rawHeaders, show);
  assert.equal(head.contentLength, Number(read.contentLength ?? 0), show);
  assert.equal(head.keepAlive, read.keepAlive, show);
}

// ---- heads: mostly plausible, with the parts parsers disagree on ----

/** Each part is mostly one the lean parser serves, so that enough whole heads are served and compared. */
const METHOD = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH') },
  { weight: 1, arbitrary: fc.constantFrom('get', 'FOO', 'CONNECT', 'PROPFIND', 'G\u00c9T') },
);
const TARGET_CHAR = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom(...'abcXYZ019/-._~?&=%'.split('')) },
  { weight: 6, arbitrary: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constantFrom(' ', '\t', '#', '\u0000', '\u007f', '\u0080', '\u00ff', '\r', '\n') },
);
const TARGET = fc.oneof(
  { weight: 12, arbitrary: fc.array(TARGET_CHAR, { maxLength: 24 }).map((cs) => `/${cs.join('')}`) },
  { weight: 1, arbitrary: fc.constantFrom('*', 'http://x/a', 'x:443', '', '//a') },
);
const VERSION = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0') },
  { weight: 1, arbitrary: fc.constantFrom('HTTP/2.0', 'HTTP/1.2', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1') },
);
const NAME = fc.oneof(
  { weight: 20, arbitrary: fc.constantFrom('Host', 'host', 'Content-Length', 'content-length', 'Connection', 'X-A', 'Accept', 'Via', 'X-Request-Id', 'Cookie') },
  { weight: 2, arbitrary: fc.constantFrom('Transfer-Encoding', 'Upgrade', 'Expect', 'Proxy-Connection', 'TE', 'Keep-Alive', 'Trailer') },
  { weight: 1, arbitrary: fc.constantFrom('Host ', ' Host', 'X A', 'X\u0000A', '', 'Content-Length\t', 'X\u00e9') },
);
const VALUE_CHAR = fc.oneof(
  { weight: 40, arbitrary: fc.constantFrom(...'abc019 ,;=:/-'.split('')) },
  { weight: 1, arbitrary: fc.constantFrom('\t', '\u0000', '\u0001', '\u007f', '\u0080', '\u00e9', '\r', '\n', '"', '+') },
);
const VALUE = fc.oneof(
  { weight: 6, arbitrary: fc.array(VALUE_CHAR, { maxLength: 16 }).map((cs) => cs.join('')) },
  { weight: 2, arbitrary: fc.constantFrom('0', '5', '12', '01', '+1', '1,1', '1 2', '-1', ' 7 ', '99999999999999999999', '') },
  { weight: 2, arbitrary: fc.constantFrom('close', 'keep-alive', 'Keep-Alive', 'close, keep-alive', 'upgrade', 'chunked', '100-continue', 'x', 'websocket') },
);
const HEADER = fc.tuple(
  NAME,
  fc.oneof({ weight: 12, arbitrary: fc.constantFrom(':', ': ', ':  ') }, { weight: 1, arbitrary: fc.constantFrom(':\t', ' : ') }),
  VALUE,
  fc.oneof({ weight: 12, arbitrary: fc.constantFrom('', ' ') }, { weight: 1, arbitrary: fc.constant('\t') }),
);

const HEAD = fc.record({
  method: METHOD,
  target: TARGET,
  version: VERSION,
  host: fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom('Host: x\r\n', 'host:x\r\n', 'HOST: a.b:80\r\n') },
    { weight: 1, arbitrary: fc.constantFrom('', 'Host: x\r\nHost: y\r\n') },
  ),
  headers: fc.array(HEADER, { maxLength: 5 }),
  mutations: SOME_MUTATIONS,
}).map(({ method, target, version, host, headers, mutations }) => {
  const lines = headers.map(([n, sep, v, trail]) => `${n}${sep}${v}${trail}\r\n`).join('');
  const parts: Part[] = [{ text: `${method} ${target} ${version}\r\n${host}${lines}\r\n`, fixed: false }];
  return mutate(parts, mutations);
});

test('no input makes the parser throw, and it never serves a head longer than the bytes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
    const buf = Buffer.from(bytes);
    const got = parseHead(buf, 0, buf.length, LIMIT);
    if (got.kind === 'head') assert.ok(got.head.length <= buf.length);
  }), fuzzParameters(10));
});

test('every head the lean parser serves, Node reads the same way; no prefix of it is served', { timeout: fuzzTimeout(FUZZ_RUNS * 5, 50) }, async (t) => {
  let served = 0;
  await fc.assert(fc.asyncProperty(HEAD, async (raw) => {
    const got = lean(raw);
    if (got.kind !== 'head') return;
    served++;
    for (let end = 0; end < got.head.length; end++) assert.notEqual(lean(raw, end).kind, 'head', `prefix ${end} of ${showBytes(raw)}`);
    assertSameRead(got.head, await nodeRead(raw.slice(0, got.head.length)), raw);
  }), fuzzParameters(5));
  t.diagnostic(`${served} heads served and compared with Node's reading`);
  // The generator must reach the served path, or the property says nothing.
  assert.ok(served > 0, 'no generated head was served');
});
