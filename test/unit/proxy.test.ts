/**
 * The proxy's near and far ends in one process, over a real pair of TunnelSessions: a
 * ProxyListener on a free port whose tunnel is `pair.client`, and performRequest on whatever
 * `pair.server` receives. Every way a request can end leaves exactly one access record.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { DEFAULT_TUNING, type ListenerConfig } from '../../src/config/types.js';
import type { AccessRecord } from '../../src/events.js';
import { silentLogger } from '../../src/log.js';
import type { OutgoingContext } from '../../src/proxy/far/attempt.js';
import { OriginPools } from '../../src/proxy/far/origins.js';
import { performRequest } from '../../src/proxy/far/perform.js';
import { ProxyListener } from '../../src/proxy/near/listener.js';
import type { TunnelStream } from '../../src/tunnel/stream.js';
import { fetchText, waitFor } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { pair as sessionPair, type Pair } from '../helpers/session-pair.js';

const origin = new Origin();
let pair: Pair;
let listener: ProxyListener;
let ctx: OutgoingContext;
const records: AccessRecord[] = [];
/** What the far end does with a stream; by default it performs it. */
let farEnd: (stream: TunnelStream) => void;

function listenerConfig(port: number): ListenerConfig {
  const ou = (p: string): URL => new URL(`http://127.0.0.1:${port}${p}`);
  return {
    key: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0, target: { kind: 'ea', url: 'ws://test' },
    mappings: [
      { path: '/o', outgoing: ou('/'), allow: [] },
      { path: '/local', outgoing: new URL('http://127.0.0.1:1/'), allow: [] },
      { path: '/denied', outgoing: ou('/'), allow: ['10.9.9.9'] },
    ],
  };
}

before(async () => {
  await origin.listen();
  pair = await sessionPair();
  ctx = { nodeName: 'far', egress: undefined, responseTimeoutMs: 5000, log: silentLogger, origins: new OriginPools(2000) };
  pair.server.on('stream', (s) => {
    s.on('error', () => { /* resets are what some tests provoke */ });
    farEnd(s);
  });
  listener = new ProxyListener({
    config: listenerConfig(origin.port), nodeName: 'near', tuning: DEFAULT_TUNING, log: silentLogger,
    resolveSession: () => Promise.resolve(pair.client),
    onAccess: (r) => records.push(r),
  });
  await listener.listen();
});

beforeEach(() => {
  records.length = 0;
  farEnd = (s) => performRequest(s, 'near', ctx);
});

after(async () => {
  await listener.close();
  await pair.close();
  ctx.origins.close();
  await origin.close();
});

const url = (path: string): string => `http://127.0.0.1:${listener.port}${path}`;

function rawUpgrade(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
}

async function record(): Promise<AccessRecord> {
  return waitFor('one access record', () => (records.length === 1 ? records[0] : undefined), 5000);
}

test('a request crosses both ends: origin answer as sent, forwarding headers, one access record', async () => {
  const res = await fetchText(url('/o/echo?q=1'), { method: 'POST', body: 'hello' });
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.text) as { url: string; bodyBytes: number; headers: Record<string, string> };
  assert.equal(seen.url, '/echo?q=1');
  assert.equal(seen.bodyBytes, 5);
  assert.match(seen.headers.via ?? '', /^1\.1 near:\d+ \(west\)$/);
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  const r = await record();
  assert.deepEqual([r.status, r.mapping, r.completed, r.bytesIn, r.failure], [200, '/o', true, 5, undefined]);
  assert.equal(listener.stats.inFlight, 0);
});

test('failures west answers itself are recorded with their code and node', async () => {
  for (const [path, status, code] of [['/none', 404, 'no_mapping'], ['/denied/x', 403, 'client_denied'], ['/local/x', 502, 'origin_refused']] as const) {
    records.length = 0;
    const res = await fetchText(url(path));
    assert.equal(res.status, status, res.text);
    const r = await record();
    assert.equal(r.status, status);
    assert.equal(r.failure?.code, code);
    assert.equal(r.failure?.node, code === 'origin_refused' ? 'far' : 'near');
  }
});

test('a declined upgrade closes its stream on both ends and is recorded', async () => {
  const socket = net.connect(listener.port, '127.0.0.1');
  let answer = '';
  socket.setEncoding('latin1').on('data', (c: string) => { answer += c; });
  socket.write(rawUpgrade('/o/status/404'));
  await once(socket, 'close');
  assert.match(answer, /^HTTP\/1\.1 404 /);
  const r = await record();
  assert.deepEqual([r.status, r.upgrade, r.completed], [404, 'websocket', true]);
  await waitFor('no stream left on either end', () => pair.client.streams.size === 0 && pair.server.streams.size === 0, 5000);
});

test('an upgrade whose far end sends an invalid head is answered 502 and recorded', async () => {
  farEnd = (s) => {
    s.resume();
    s.respond({ status: 101, statusMessage: 'OK\rX-Injected: 1', headers: [] });
  };
  const socket = net.connect(listener.port, '127.0.0.1');
  let answer = '';
  socket.setEncoding('latin1').on('data', (c: string) => { answer += c; });
  socket.write(rawUpgrade('/o/ws'));
  await once(socket, 'close');
  assert.match(answer, /^HTTP\/1\.1 502 /);
  assert.doesNotMatch(answer, /X-Injected/);
  const r = await record();
  assert.deepEqual([r.status, r.failure?.code], [502, 'origin_error']);
});

test('an upgrade abandoned before its head is recorded as 499 and its stream cancelled', async () => {
  let held: TunnelStream | undefined;
  farEnd = (s) => { held = s; s.on('error', () => {}); };
  const socket = net.connect(listener.port, '127.0.0.1');
  socket.on('error', () => { /* reset below */ });
  socket.write(rawUpgrade('/o/ws'));
  await waitFor('the far end holds the stream', () => held);
  // A reset: a FIN alone is a half-close, which HTTP allows while the answer is awaited.
  socket.resetAndDestroy();
  const r = await record();
  assert.deepEqual([r.status, r.completed, r.mapping], [499, false, '/o']);
  await waitFor('the far end sees the cancel', () => held?.destroyed);
  assert.equal(listener.stats.inFlight, 0);
});

test('a middle node hands a request for its own listener to it, with one record there', async () => {
  // The far end's "origin" is the listener itself: relay.ts instead of a socket.
  ctx.localListener = (u) => (u.port === String(listener.port) ? listener : undefined);
  try {
    farEnd = (s) => performRequest(s, 'near', ctx);
    const stream = pair.client.openStream({
      kind: 'http', method: 'GET', url: `http://127.0.0.1:${listener.port}/o/echo`, headers: ['X-Request-Id', 'relay-1'], hops: 1, to: '', id: 'relay-1',
    });
    stream.end();
    const [head] = await once(stream, 'response') as [{ status: number }];
    stream.resume();
    await once(stream, 'end');
    assert.equal(head.status, 200);
    // The relayed request is an exchange of the listener like any other, from the loopback address.
    const r = await record();
    assert.deepEqual([r.status, r.client, r.mapping, r.id], [200, '127.0.0.1', '/o', 'relay-1']);
  } finally {
    delete ctx.localListener;
  }
});

test('HEAD and a plain GET keep the connection for the next request', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const method of ['HEAD', 'GET']) {
      const res = await fetchText(url('/o/echo'), { method, agent });
      assert.equal(res.status, 200);
    }
    await waitFor('two records', () => records.length === 2);
  } finally {
    agent.destroy();
  }
});

test('errorDetail "minimal": outsiders get the status only, and a mapping ca refuses looks unmapped; the record keeps the truth', async () => {
  listener.update(listener.config, { ...DEFAULT_TUNING, errorDetail: 'minimal' });
  try {
    const denied = await fetchText(url('/denied/x'));
    const unmapped = await fetchText(url('/none'));
    const refused = await fetchText(url('/local/x'));
    assert.deepEqual([denied.status, denied.text], [404, '404 Not Found\n']);
    assert.deepEqual([unmapped.status, unmapped.text], [404, '404 Not Found\n']);
    assert.equal(denied.headers['proxy-status'], unmapped.headers['proxy-status']);
    assert.deepEqual([refused.status, refused.text, refused.headers['proxy-status']], [502, '502 Bad Gateway\n', 'west; error=connection_refused']);
    await waitFor('three records', () => records.length === 3);
    assert.deepEqual(records.map((r) => r.failure?.code).sort(), ['client_denied', 'no_mapping', 'origin_refused']);
  } finally {
    listener.update(listener.config, DEFAULT_TUNING);
  }
});

test('a failure a middle node answers for its own listener keeps its reason phrase through the chain', async () => {
  ctx.localListener = (u) => (u.port === String(listener.port) ? listener : undefined);
  try {
    const stream = pair.client.openStream({
      kind: 'http', method: 'GET', url: `http://127.0.0.1:${listener.port}/none`, headers: [], hops: 1, to: '', id: 'relay-404',
    });
    stream.end();
    const [head] = await once(stream, 'response') as [{ status: number; statusMessage: string }];
    stream.resume();
    assert.deepEqual([head.status, head.statusMessage], [404, 'Not Found']);
  } finally {
    delete ctx.localListener;
  }
});

test('a failure answered further along the chain is recorded at the entry with the node it names', async () => {
  farEnd = (s) => {
    s.resume();
    const body = '502 Bad Gateway: west node L2: origin refused\n';
    s.respond({
      status: 502, statusMessage: 'Bad Gateway',
      headers: ['Content-Length', String(body.length), 'Proxy-Status', '"L2"; error=connection_refused; details="origin refused"'],
    });
    s.end(body);
  };
  const res = await fetchText(url('/o/x'));
  assert.equal(res.status, 502);
  const r = await record();
  assert.deepEqual(r.failure, { code: 'origin_refused', node: 'L2', message: 'origin refused' });
});

test('the origin sees the remainder and query as the client sent them, not re-encoded', async () => {
  for (const [sent, seen] of [
    ['/o/echo/a//b/{x}"`', '/echo/a//b/{x}"`'],
    ["/o/echo?q='a'&r={1}", "/echo?q='a'&r={1}"],
    ['/o/echo?', '/echo?'],
    ['/o/echo/%7Bx%7D', '/echo/%7Bx%7D'],
  ] as const) {
    // http.request with `path` sends it as written (a URL string would be re-encoded first).
    const req = http.request({ host: '127.0.0.1', port: listener.port, path: sent, agent: false });
    req.end();
    const [res] = await once(req, 'response') as [http.IncomingMessage];
    let text = '';
    res.setEncoding('utf8').on('data', (c: string) => { text += c; });
    await once(res, 'end');
    assert.equal(res.statusCode, 200, `${sent}: ${text}`);
    assert.equal((JSON.parse(text) as { url: string }).url, seen, sent);
  }
});

test('trailers a far end sends that HTTP would not allow are dropped, and the answer is whole', async () => {
  farEnd = (s) => {
    s.resume();
    s.respond({ status: 200, statusMessage: 'OK', headers: [] });
    s.setTrailers(['X-Bad', 'a\rInjected: 1']);
    s.end('body');
  };
  const req = http.request({ host: '127.0.0.1', port: listener.port, path: '/o/x', agent: false });
  req.end();
  const [res] = await once(req, 'response') as [http.IncomingMessage];
  let text = '';
  res.setEncoding('utf8').on('data', (c: string) => { text += c; });
  await once(res, 'end');
  assert.deepEqual([res.statusCode, text, res.trailers], [200, 'body', {}]);
});

test('a client pipelining 30 requests gets 30 answers and adds no listener per request to its socket', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => { warnings.push(w.name); };
  process.on('warning', onWarning);
  try {
    const socket = net.connect(listener.port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('latin1').on('data', (c: string) => { answer += c; });
    const heads = Array.from({ length: 30 }, (_, i) => `GET /o/echo/${i} HTTP/1.1\r\nHost: x\r\n${i === 29 ? 'Connection: close\r\n' : ''}\r\n`);
    socket.write(heads.join(''));
    await once(socket, 'close');
    assert.equal(answer.match(/HTTP\/1\.1 200 /g)?.length, 30);
    await waitFor('30 records', () => records.length === 30);
    // Warnings are emitted on the next tick.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
  } finally {
    process.off('warning', onWarning);
  }
});
