/**
 * 1xx answers and Expect: 100-continue across both ends (in process, over a real pair of
 * TunnelSessions): the origin's 103 reaches the client, the origin decides whether a body is
 * sent, and a far end that does not announce `informational` gets the old behaviour.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { DEFAULT_TUNING } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import type { OutgoingContext } from '../../src/proxy/far/attempt.js';
import { OriginPools } from '../../src/proxy/far/origins.js';
import { performRequest } from '../../src/proxy/far/perform.js';
import { ProxyListener } from '../../src/proxy/near/listener.js';
import { pair as sessionPair, type Pair } from '../helpers/session-pair.js';

/** Bytes of request body the origin received, per path. */
const bodies = new Map<string, number>();
let origin: http.Server;
const ctx: OutgoingContext = { nodeName: 'far', egress: undefined, responseTimeoutMs: 5000, log: silentLogger, origins: new OriginPools(2000) };
const ends: { pair: Pair; listener: ProxyListener }[] = [];

async function ends2(features: boolean): Promise<ProxyListener> {
  const pair = await sessionPair(undefined, features ? undefined : []);
  pair.server.on('stream', (s) => performRequest(s, 'near', ctx));
  const port = (origin.address() as AddressInfo).port;
  const listener = new ProxyListener({
    config: { key: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0, target: { kind: 'ea', url: 'ws://t' }, mappings: [{ path: '/o', outgoing: new URL(`http://127.0.0.1:${port}/`), allow: [] }] },
    nodeName: 'near', tuning: DEFAULT_TUNING, log: silentLogger, resolveSession: () => Promise.resolve(pair.client),
  });
  await listener.listen();
  ends.push({ pair, listener });
  return listener;
}

let modern: ProxyListener;
let older: ProxyListener;

before(async () => {
  origin = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    if (req.url === '/hints') {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      setTimeout(() => res.end('page'), 20);
    } else if (req.url === '/trailers') {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Checksum' });
      res.write('body ');
      res.addTrailers({ 'X-Checksum': 'sha256=abc' });
      res.end('end');
    } else if (req.url === '/too-large') {
      // Answers at once, without reading: what a server does with an upload it will not take.
      res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end('too large');
    } else {
      req.on('end', () => { bodies.set(req.url ?? '', n); res.end(`got ${n}`); });
    }
  });
  // An origin that judges an Expect itself: the upload it will not take never gets a 100.
  origin.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url !== '/too-large') res.writeContinue();
    origin.emit('request', req, res);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  modern = await ends2(true);
  older = await ends2(false);
});

after(async () => {
  for (const { pair, listener } of ends) {
    await listener.close();
    await pair.close();
  }
  ctx.origins.close();
  origin.closeAllConnections();
  await new Promise<void>((r) => origin.close(() => r()));
});

/** A request as a browser or curl makes it, noting every 1xx it sees. */
async function request(listener: ProxyListener, path: string, opts: { expect?: boolean; body?: Buffer } = {}): Promise<{ status: number; text: string; informational: number[]; continued: boolean; trailers: NodeJS.Dict<string> }> {
  const informational: number[] = [];
  let continued = false;
  const req = http.request({
    host: '127.0.0.1', port: listener.port, path, method: opts.body ? 'PUT' : 'GET', agent: false,
    headers: { ...(opts.expect ? { Expect: '100-continue' } : {}), ...(opts.body ? { 'Content-Length': String(opts.body.length) } : {}) },
  });
  req.on('information', (i) => informational.push(i.statusCode));
  if (opts.expect) req.on('continue', () => { continued = true; req.end(opts.body); });
  else req.end(opts.body);
  const [res] = await once(req, 'response') as [http.IncomingMessage];
  let text = '';
  res.setEncoding('utf8').on('data', (c: string) => { text += c; });
  await once(res, 'end');
  if (opts.expect && !continued) req.destroy();
  return { status: res.statusCode ?? 0, text, informational, continued, trailers: res.trailers };
}

test('103 Early Hints from the origin reaches the client ahead of the answer', async () => {
  const r = await request(modern, '/o/hints');
  assert.deepEqual([r.status, r.text, r.informational], [200, 'page', [103]]);
});

test('Expect: 100-continue is the origin\'s to answer: its 100 lets the body through', async () => {
  const r = await request(modern, '/o/upload', { expect: true, body: Buffer.alloc(100_000, 1) });
  assert.deepEqual([r.status, r.text, r.continued], [200, 'got 100000', true]);
  assert.equal(bodies.get('/upload'), 100_000);
});

test('an origin that refuses an upload at once is heard: 413, and no body is sent', async () => {
  const r = await request(modern, '/o/too-large', { expect: true, body: Buffer.alloc(10 * 1024 * 1024, 1) });
  assert.deepEqual([r.status, r.text, r.continued], [413, 'too large', false]);
});

test('a far end without the informational feature: no 1xx forwarded, the listener answers Expect itself', async () => {
  const hints = await request(older, '/o/hints');
  assert.deepEqual([hints.status, hints.informational], [200, []]);
  const r = await request(older, '/o/upload-old', { expect: true, body: Buffer.alloc(1000, 1) });
  assert.deepEqual([r.status, r.text, r.continued], [200, 'got 1000', true]);
});

test('trailers of a chunked answer reach the client; a far end without the feature sends the body alone', async () => {
  const r = await request(modern, '/o/trailers');
  assert.deepEqual([r.status, r.text, r.trailers], [200, 'body end', { 'x-checksum': 'sha256=abc' }]);
  const old = await request(older, '/o/trailers');
  assert.deepEqual([old.status, old.text, old.trailers], [200, 'body end', {}]);
});
