/**
 * The far end's HTTP/1.1 client, piece by piece: the answer's header pass gives the list
 * stripHopByHop(raw, false) gives (and reads the Keep-Alive hint), and the request head is
 * built and framed as the OPEN says, refusing what would smuggle; which bodies the connection
 * counts out itself, past llhttp; and where a head that arrives in pieces ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { headEnd, seenAtEnd } from '../../src/proxy/far/h1/head-end.js';
import { requestHead } from '../../src/proxy/far/h1/request.js';
import { answerHeaders, bodyLength } from '../../src/proxy/far/h1/response-headers.js';
import { stripHopByHop } from '../../src/proxy/shared/passes.js';

const lists: string[][] = [
  [],
  ['Content-Type', 'text/plain', 'Content-Length', '3'],
  ['Connection', 'keep-alive', 'Keep-Alive', 'timeout=5, max=100', 'Date', 'x'],
  ['connection', 'close, X-Private', 'x-private', 'secret', 'X-Public', 'p', 'Transfer-Encoding', 'chunked'],
  ['Connection', 'X-A', 'CONNECTION', 'x-b, , X-C', 'X-A', '1', 'X-B', '2', 'X-C', '3', 'X-D', '4'],
  ['Upgrade', 'h2c', 'TE', 'trailers', 'Trailer', 'X-Sum', 'Proxy-Authenticate', 'Basic', 'HTTP2-Settings', 'AAA', 'Cache-Control', 'no-store'],
  ['Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'Proxy-Connection', 'keep-alive', 'Keep-Alive', 'max=5'],
];

test('answerHeaders drops exactly what stripHopByHop(raw, false) drops, order and case kept', () => {
  for (const raw of lists) assert.deepEqual(answerHeaders(raw).headers, stripHopByHop(raw, false), JSON.stringify(raw));
});

test('answerHeaders reads the Keep-Alive hint, less a two-second margin', () => {
  assert.equal(answerHeaders(['Keep-Alive', 'timeout=5, max=100']).keepAliveMs, 3000);
  assert.equal(answerHeaders(['keep-alive', 'max=100, timeout=75']).keepAliveMs, 73_000);
  assert.equal(answerHeaders(['Keep-Alive', 'timeout=1']).keepAliveMs, -1000);
  assert.equal(answerHeaders(['Keep-Alive', 'max=3']).keepAliveMs, undefined);
  assert.equal(answerHeaders(['X-Keep-Alive', 'timeout=9']).keepAliveMs, undefined);
});

test('bodyLength: a Content-Length or Infinity (until close) for the connection to count; chunked, 0 and unsafe lengths to llhttp', () => {
  assert.equal(bodyLength(['Content-Type', 'x', 'Content-Length', '1048576']), 1_048_576);
  assert.equal(bodyLength(['content-length', '007']), 7);
  assert.equal(bodyLength(['Content-Type', 'x']), Infinity);
  assert.equal(bodyLength([]), Infinity);
  assert.equal(bodyLength(['Content-Length', '0']), undefined);
  assert.equal(bodyLength(['Transfer-Encoding', 'chunked']), undefined);
  assert.equal(bodyLength(['transfer-encoding', 'gzip']), undefined);
  assert.equal(bodyLength(['Content-Length', '3', 'Transfer-Encoding', 'chunked']), undefined);
  assert.equal(bodyLength(['Content-Length', '3', 'Content-Length', '3']), undefined);
  assert.equal(bodyLength(['Content-Length', '9007199254740993']), undefined);
  assert.equal(bodyLength(['Content-Length', '1,1']), undefined);
  // Names that only look alike.
  assert.equal(bodyLength(['X-Content-Length', '5']), Infinity);
  assert.equal(bodyLength(['Content-Lengthy', '5']), Infinity);
});

test('headEnd over reads finds the first CR LF CR LF of all the bytes, however they are split', () => {
  const bytes = fc.array(fc.constantFrom(13, 10, 13, 10, 65), { maxLength: 24 });
  fc.assert(fc.property(bytes, fc.array(fc.nat(24), { maxLength: 8 }), (all, splits) => {
    const whole = Buffer.from(all);
    const at = whole.indexOf('\r\n\r\n');
    const expected = at < 0 ? -1 : at + 4;
    const cuts = [...new Set(splits.filter((n) => n > 0 && n < whole.length))].sort((x, y) => x - y);
    let seen = 0;
    let start = 0;
    let found = -1;
    for (const end of [...cuts, whole.length]) {
      // Each read its own buffer, searched from a random offset into it as the connection does after a body.
      const lead = Buffer.from('xy');
      const read = Buffer.concat([lead, whole.subarray(start, end)]);
      const got = headEnd(read, lead.length, seen);
      if (got >= 0) {
        found = start + got - lead.length;
        break;
      }
      seen = seenAtEnd(read, lead.length, seen);
      start = end;
    }
    assert.equal(found, expected, JSON.stringify({ whole: whole.toString('latin1'), cuts }));
  }), { seed: 15, numRuns: 2000 });
});

test('requestHead: one string, headers as given, Host last; framing from Content-Length or chunked', () => {
  const get = requestHead('GET', '/a?b=c', ['Accept', '*/*', 'Host', 'o:1'], false, false);
  assert.deepEqual(get, { head: 'GET /a?b=c HTTP/1.1\r\nAccept: */*\r\nHost: o:1\r\n\r\n', framing: { kind: 'none' } });
  const put = requestHead('PUT', '/u', ['content-length', '5', 'Host', 'o'], true, false);
  assert.deepEqual(put, { head: 'PUT /u HTTP/1.1\r\ncontent-length: 5\r\nHost: o\r\n\r\n', framing: { kind: 'length', length: 5 } });
  const chunked = requestHead('POST', '/c', ['Transfer-Encoding', 'chunked', 'Host', 'o'], true, true);
  assert.deepEqual(chunked, { head: 'POST /c HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: chunked\r\n\r\n', framing: { kind: 'chunked' } });
  const expect = requestHead('POST', '/e', ['Expect', 'something', 'Content-Length', '0', 'Host', 'o'], false, true);
  assert.deepEqual(expect, { head: 'POST /e HTTP/1.1\r\nContent-Length: 0\r\nHost: o\r\n\r\n', framing: { kind: 'none' } });
  const emptyPost = requestHead('POST', '/p', ['Host', 'o'], false, false);
  assert.deepEqual(emptyPost, { head: 'POST /p HTTP/1.1\r\nHost: o\r\nContent-Length: 0\r\n\r\n', framing: { kind: 'none' } });
  const both = requestHead('POST', '/b', ['Content-Length', '3', 'Transfer-Encoding', 'chunked', 'Host', 'o'], true, true);
  assert.deepEqual(both, { head: 'POST /b HTTP/1.1\r\nContent-Length: 3\r\nHost: o\r\n\r\n', framing: { kind: 'length', length: 3 } });
  const same = requestHead('POST', '/s', ['Content-Length', '3', 'content-length', '3', 'Host', 'o'], true, false);
  assert.deepEqual(same, { head: 'POST /s HTTP/1.1\r\nContent-Length: 3\r\nHost: o\r\n\r\n', framing: { kind: 'length', length: 3 } });
});

test('requestHead refuses what would smuggle: a bad target, CONNECT, odd Content-Lengths', () => {
  for (const target of ['', '/a b', '/a\tb', '/a\r\nX: y', '/\x7f', '/\u0100']) {
    assert.equal(requestHead('GET', target, ['Host', 'o'], false, false), 'invalid request path', JSON.stringify(target));
  }
  assert.equal(requestHead('CONNECT', '/', ['Host', 'o'], false, false), 'CONNECT method is not supported');
  assert.equal(requestHead('POST', '/', ['Content-Length', '3', 'Content-Length', '4', 'Host', 'o'], true, false), 'conflicting content-length headers');
  for (const bad of ['-1', '3 ', '0x10', '1e3', '99999999999999999999']) {
    assert.equal(requestHead('POST', '/', ['Content-Length', bad, 'Host', 'o'], true, false), 'invalid content-length header', bad);
  }
});
