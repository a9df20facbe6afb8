/**
 * The lean front's head parser (src/proxy/near/h1/head.ts), case by case: what it serves,
 * what it waits for, and everything it must hand to Node's parser instead (request smuggling
 * material first: bare LF, CR without LF, a space before the colon, obs-fold, duplicate or
 * odd Content-Length, Transfer-Encoding, NUL and high bytes, long heads).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHead, type HeadParse } from '../../src/proxy/near/h1/head.js';

const LIMIT = 1024;

function parse(raw: string, limit = LIMIT): HeadParse {
  const buf = Buffer.from(raw, 'latin1');
  return parseHead(buf, 0, buf.length, limit);
}

const served: [string, string, Partial<{ method: string; url: string; http10: boolean; rawHeaders: string[]; host: string; contentLength: number; keepAlive: boolean }>][] = [
  ['plain GET', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { method: 'GET', url: '/', http10: false, rawHeaders: ['Host', 'x'], host: 'x', contentLength: 0, keepAlive: true }],
  ['query and odd visible bytes', 'GET /a/b?c=d&e="f"|{g}^`\\ HTTP/1.1\r\nHost: x\r\n\r\n', { url: '/a/b?c=d&e="f"|{g}^`\\' }],
  ['POST with a length', 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n', { method: 'POST', contentLength: 12 }],
  ['Content-Length 0', 'PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', { contentLength: 0 }],
  ['values lose their surrounding spaces, keep inner ones', 'GET / HTTP/1.1\r\nHost:x\r\nX-A:   a  b  \r\nX-B:\r\n\r\n', { rawHeaders: ['Host', 'x', 'X-A', 'a  b', 'X-B', ''] }],
  ['names keep their case', 'GET / HTTP/1.1\r\nhOsT: x\r\nX-Request-Id: r1\r\n\r\n', { host: 'x', rawHeaders: ['hOsT', 'x', 'X-Request-Id', 'r1'] }],
  ['Connection: close', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { keepAlive: false }],
  ['Connection: Keep-Alive on 1.1', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n', { keepAlive: true }],
  ['HTTP/1.0 closes', 'GET / HTTP/1.0\r\nHost: x\r\n\r\n', { http10: true, keepAlive: false }],
  ['HTTP/1.0 asking keep-alive', 'GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n', { http10: true, keepAlive: true }],
  ['HEAD', 'HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n', { method: 'HEAD' }],
];

for (const [name, raw, want] of served) {
  test(`served: ${name}`, () => {
    const got = parse(raw);
    assert.equal(got.kind, 'head', JSON.stringify(got));
    if (got.kind !== 'head') return;
    assert.equal(got.head.length, Buffer.byteLength(raw, 'latin1'));
    for (const [key, value] of Object.entries(want)) assert.deepEqual(got.head[key as keyof typeof got.head], value, key);
  });
}

test('served: bytes after the head (a body, a pipelined request) are not part of it', () => {
  const head = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n';
  const got = parse(`${head}abcGET / HTTP/1.1\r\n`);
  assert.equal(got.kind, 'head');
  if (got.kind === 'head') assert.equal(got.head.length, head.length);
});

const incomplete: [string, string][] = [
  ['nothing yet', ''],
  ['part of a method', 'PO'],
  ['a method', 'GET'],
  ['part of a target', 'GET /abc'],
  ['part of the version', 'GET / HTTP/1.'],
  ['a request line without LF yet', 'GET / HTTP/1.1\r'],
  ['part of a header name', 'GET / HTTP/1.1\r\nHo'],
  ['part of a value', 'GET / HTTP/1.1\r\nHost: x'],
  ['the blank line under way', 'GET / HTTP/1.1\r\nHost: x\r\n\r'],
];

for (const [name, raw] of incomplete) {
  test(`incomplete: ${name}`, () => {
    assert.deepEqual(parse(raw), { kind: 'incomplete' });
  });
}

const handedOff: [string, string][] = [
  ['bare LF line ends', 'GET / HTTP/1.1\nHost: x\n\n'],
  ['bare LF after the request line', 'GET / HTTP/1.1\r\nHost: x\n\r\n'],
  ['CR without LF', 'GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n'],
  ['CR without LF, still arriving', 'GET / HTTP/1.1\r\nHost: x\rX'],
  ['space before the colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n'],
  ['space before the colon, still arriving', 'GET / HTTP/1.1\r\nContent-Length :'],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'],
  ['a header line without a colon', 'GET / HTTP/1.1\r\nHost: x\r\nJunk\r\n\r\n'],
  ['an empty header name', 'GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n'],
  ['duplicate Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab'],
  ['Content-Length +1', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na'],
  ['Content-Length 1,1', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\na'],
  ['Content-Length with a leading zero', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 01\r\n\r\na'],
  ['Content-Length with inner space', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n'],
  ['a huge Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n'],
  ['an empty Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n'],
  ['Transfer-Encoding: chunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['Transfer-Encoding and Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['Upgrade', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
  ['Upgrade without Connection: upgrade', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n'],
  ['Expect: 100-continue', 'PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n'],
  ['Connection: upgrade', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n'],
  ['Connection naming a header', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-A\r\n\r\n'],
  ['Connection: close and keep-alive', 'GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n'],
  ['two Connection headers', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: close\r\n\r\n'],
  ['Proxy-Connection', 'GET / HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\n\r\n'],
  ['no Host', 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n'],
  ['no Host on 1.0', 'GET / HTTP/1.0\r\n\r\n'],
  ['two Hosts', 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'],
  ['an empty Host', 'GET / HTTP/1.1\r\nHost:\r\n\r\n'],
  ['TE on HTTP/1.0', 'GET / HTTP/1.0\r\nHost: x\r\nTE: chunked\r\n\r\n'],
  ['CONNECT', 'CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['CONNECT in origin form', 'CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['an unknown method', 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['an unknown method, still arriving', 'FOO'],
  ['a lower-case method', 'get / HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['a WebDAV method', 'PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['absolute-form target', 'GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['asterisk-form target', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['a fragment in the target', 'GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['a byte >= 0x80 in the target', 'GET /caf\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['a tab as separator', 'GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n'],
  ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: x\r\n\r\n'],
  ['lower-case version', 'GET / http/1.1\r\nHost: x\r\n\r\n'],
  ['no version', 'GET /\r\nHost: x\r\n\r\n'],
  ['trailing space after the version', 'GET / HTTP/1.1 \r\nHost: x\r\n\r\n'],
  ['a leading CRLF', '\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n'],
  ['NUL in a name', 'GET / HTTP/1.1\r\nHost: x\r\nX\u0000A: b\r\n\r\n'],
  ['obs-text in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\u00e9\r\n\r\n'],
  ['a tab around a value (llhttp reads it as part of a Connection token)', 'GET / HTTP/1.0\r\nHost: x\r\nConnection:Keep-Alive\t\r\n\r\n'],
  ['a tab inside a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n'],
  ['DEL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u007fb\r\n\r\n'],
  ['a TLS hello', '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003'],
  ['an HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
];

for (const [name, raw] of handedOff) {
  test(`handed off: ${name}`, () => {
    const got = parse(raw);
    assert.equal(got.kind, 'handoff', JSON.stringify(got));
  });
}

test('handed off: a head longer than the limit, whole or still arriving', () => {
  const long = `GET / HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(LIMIT)}\r\n\r\n`;
  assert.equal(parse(long).kind, 'handoff');
  assert.equal(parse(long.slice(0, LIMIT + 10)).kind, 'handoff');
  assert.equal(parse(`GET /${'a'.repeat(LIMIT)}`).kind, 'handoff');
  // Just inside the limit it is served.
  const fits = `GET / HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(LIMIT - 40)}\r\n\r\n`;
  assert.equal(parse(fits).kind, 'head');
});

test('handed off: more header lines than the front keeps', () => {
  const many = `GET / HTTP/1.1\r\nHost: x\r\n${'A: b\r\n'.repeat(250)}\r\n`;
  assert.equal(parse(many, 64 * 1024).kind, 'handoff');
});
