/**
 * Request framing west refuses (issue 11, items 5-7): nothing reaches the origin for a
 * request the listener answers 4xx/5xx itself, and every refusal is an HTTP answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { selfTunnelledNode } from '../helpers/west.js';

const node = selfTunnelledNode('west-framing-');
const origin = { get seen() { return node.origin.seen; } };

/** Writes raw bytes to the listener and reads until it closes the connection (or 5 s pass). */
async function raw(bytes: string): Promise<string> {
  const socket = net.connect(node.port, '127.0.0.1');
  socket.on('error', () => { /* a reset after the answer is fine */ });
  await once(socket, 'connect');
  let answer = '';
  socket.setEncoding('latin1').on('data', (c: string) => { answer += c; });
  socket.write(bytes);
  const timer = setTimeout(() => socket.destroy(), 5000);
  await once(socket, 'close');
  clearTimeout(timer);
  return answer;
}

const cases: { name: string; head: string; status: number }[] = [
  { name: 'Transfer-Encoding: xchunked', head: 'POST /o/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding: gzip alone', head: 'POST /o/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello', status: 400 },
  { name: 'Transfer-Encoding: gzip, chunked', head: 'POST /o/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', status: 501 },
  {
    name: 'an upgrade request with a body',
    head: 'GET /o/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello',
    status: 501,
  },
  { name: 'CONNECT', head: 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', status: 501 },
];

for (const c of cases) {
  test(`${c.name}: answered ${c.status}, and the origin never sees it`, async () => {
    const before = origin.seen.length;
    const answer = await raw(c.head);
    assert.match(answer, new RegExp(`^HTTP/1\\.1 ${c.status} `), answer);
    assert.match(answer, /Proxy-Status: "self"; error=http_request_error/);
    // A good request afterwards reaches the origin; the refused one never did.
    const ok = await raw('GET /o/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(ok, /^HTTP\/1\.1 200 /);
    assert.deepEqual(origin.seen.slice(before).map((r) => r.method), ['GET']);
  });
}
