/**
 * west as either side of wazigate-tunnel (doc/wazigate.md): a west cloud listener and a west
 * gateway node talk through a real mosquitto (passwords and ACLs on, anonymous off) to a real
 * origin, and each side is checked byte for byte against a reference encoder written in the
 * test from the format's description; then timeouts, limits, upgrades and access rules.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Origin } from '../helpers/origin.js';
import { fetchText, freePort } from '../helpers/net.js';
import { mosquittoMissing } from '../helpers/mosquitto.js';
import { stopDaemons } from '../helpers/daemon.js';
import type { Broker } from '../helpers/mosquitto.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';
import {
  rawHttp, refDecodeRequest, refDecodeResponse, refHeaders, refRequest, refResponse, startWazigateBroker, statusOf, TestClient, USERS,
} from '../helpers/wazigate.js';

const skip = mosquittoMissing();
let broker: Broker;
let origin: Origin;
let cloud: WestProcess;
let gateway: WestProcess;
/** The cloud's listeners: open, `ca` that refuses loopback, a gateway list. */
let open: number;
let fenced: number;
let listed: number;
const clients: TestClient[] = [];
let cleanup: () => Promise<void> = async () => undefined;

async function client(user: keyof typeof USERS, subscribe: string[]): Promise<TestClient> {
  const c = await TestClient.connect(broker, user, subscribe);
  clients.push(c);
  return c;
}

before(async () => {
  if (skip) return;
  const t = await tempDir('west-wazigate-');
  cleanup = t.cleanup;
  broker = await startWazigateBroker(t.dir);
  origin = new Origin();
  await origin.listen();
  [open, fenced, listed] = [await freePort(), await freePort(), await freePort()];
  const side = { broker: broker.url, user: 'cloud', password: { env: 'TEST_WAZIUP_PASSWORD' }, timeout: 1.5 };
  const cloudFile = await writeConfig(t.dir, 'cloud.json', {
    west: { nm: 'cloud', cp: '127.0.0.1:0', reconnectMin: 0.05, reconnectMax: 0.5 },
    proxy: {
      [`http://127.0.0.1:${open}`]: { wazigate: side },
      [`http://127.0.0.1:${fenced}`]: { wazigate: { ...side, ca: ['10.0.0.0/8'] } },
      [`http://127.0.0.1:${listed}`]: { wazigate: { ...side, gateways: ['gw-a'] } },
    },
  });
  const gatewayFile = await writeConfig(t.dir, 'gateway.json', {
    west: {
      nm: 'site-a', reconnectMin: 0.05, reconnectMax: 0.5,
      wazigate: { broker: broker.url, gateway: 'gw-a', user: 'gw-a', password: USERS['gw-a'], origin: `http://127.0.0.1:${origin.port}` },
      egress: { wazigate: [`http://127.0.0.1:${origin.port}/ok`] },
    },
  });
  cloud = await WestProcess.start(cloudFile, [], { ...process.env, TEST_WAZIUP_PASSWORD: USERS.cloud });
  gateway = await WestProcess.start(gatewayFile);
  await cloud.waitForEvent('wazigate.connected', (e) => String(e.side).includes(String(open)));
  await gateway.waitForEvent('wazigate.connected');
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stopAll();
  await origin?.close();
  await stopDaemons();
  await cleanup();
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Echo { method: string; url: string; headers: Record<string, string>; bodyBytes: number; sha256: string }

test('curl -> west cloud -> mosquitto -> west gateway -> origin and back: methods, query, headers, bodies, statuses', { skip }, async () => {
  const url = `http://127.0.0.1:${open}/gw-a/ok`;
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const body = method === 'GET' || method === 'DELETE' || method === 'OPTIONS' ? undefined : randomBytes(70_000);
    const r = await fetchText(`${url}/echo?q=${method}&x=%20y`, {
      method, body, headers: { 'X-Multi': ['one', 'two'], 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(r.status, 200, `${method}: ${r.text}`);
    const echo = JSON.parse(r.text) as Echo;
    assert.equal(echo.method, method);
    assert.equal(echo.url, `/ok/echo?q=${method}&x=%20y`);
    assert.equal(echo.headers['x-multi'], 'one, two');
    assert.equal(echo.bodyBytes, body?.length ?? 0);
    if (body) assert.equal(echo.sha256, sha(body));
  }
  const expecting = await fetchText(`${url}/echo`, { method: 'POST', body: Buffer.alloc(2_000_000, 1), headers: { Expect: '100-continue' } });
  assert.equal(expecting.status, 200, expecting.text);
  assert.equal((JSON.parse(expecting.text) as Echo).bodyBytes, 2_000_000);
  const empty = JSON.parse((await fetchText(`${url}/echo`, { method: 'POST', body: Buffer.alloc(0) })).text) as Echo;
  assert.equal(empty.bodyBytes, 0);
  for (const code of [201, 204, 302, 404, 418, 500, 503]) {
    const r = await fetchText(`${url}/status/${code}`);
    assert.equal(r.status, code);
    if (code !== 204) assert.equal(r.text, `status ${code}`);
    assert.equal(r.headers['x-origin'], 'yes');
  }
  const big = await fetchText(`${url}/bytes/3000000`);
  assert.equal(big.body.length, 3_000_000);
  // One access record per request on each side, with the same id.
  const last = await cloud.waitForEvent('access', (e) => e.path === '/gw-a/ok/bytes/3000000');
  assert.equal(last.status, 200);
  await gateway.waitForEvent('access', (e) => e.id === last.id && e.listener === 'wazigate:gw-a' && e.status === 200 && e.out === 3_000_000);
});

test('west cloud <-> reference gateway: exact topic and payload bytes both ways', { skip }, async () => {
  const gw = await client('gw-t', ['devices/gw-t/tunnel-down/+']);
  const body = Buffer.from([0, 1, 2, 255, 254, 13, 10]);
  const pending = rawHttp(open, [
    'POST /gw-t/rest/things?a=1&b=%2F HTTP/1.1', 'Host: cloud.example', 'X-Request-Id: ref-test-1', 'x-multi: a', 'X-MULTI: b<&>',
    'Content-Type: application/octet-stream', `Content-Length: ${body.length}`, 'Connection: close', '', '',
  ].join('\r\n'), body);
  const msg = await gw.next(() => true);
  assert.match(msg.topic, /^devices\/gw-t\/tunnel-down\/[1-9][0-9]*$/);
  const expected = refRequest('POST', '/rest/things?a=1&b=%2F', {
    'Content-Length': [String(body.length)], 'Content-Type': ['application/octet-stream'], 'X-Multi': ['a', 'b<&>'], 'X-Request-Id': ['ref-test-1'],
  }, body);
  assert.deepEqual(msg.payload, expected, `got ${JSON.stringify(refDecodeRequest(msg.payload))}`);
  const ref = msg.topic.split('/')[3]!;
  const answerBody = randomBytes(1000);
  await gw.publish(`devices/gw-t/tunnel-up/${ref}`, refResponse(207, { 'Set-Cookie': ['a=1', 'b=2'], 'X-Thing': ['v'] }, answerBody));
  const raw = await pending;
  assert.equal(statusOf(raw), 207);
  assert.match(raw, /\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n/);
  assert.match(raw, new RegExp(`\r\nContent-Length: ${answerBody.length}\r\n`));
  assert.ok(raw.endsWith(answerBody.toString('latin1')));
});

test('reference cloud <-> west gateway: exact topic and payload bytes both ways', { skip }, async () => {
  const cl = await client('cloud', ['devices/gw-a/tunnel-up/+']);
  const body = randomBytes(4096);
  await cl.publish('devices/gw-a/tunnel-down/77', refRequest('PUT', '/ok/echo?q=1', { 'X-Multi': ['a', 'b'], 'Content-Type': ['x/y'] }, body));
  const msg = await cl.next((t) => t === 'devices/gw-a/tunnel-up/77');
  const res = refDecodeResponse(msg.payload);
  assert.equal(res.status, 200);
  const echo = JSON.parse(res.body.toString()) as Echo;
  assert.deepEqual([echo.method, echo.url, echo.headers['x-multi'], echo.sha256], ['PUT', '/ok/echo?q=1', 'a, b', sha(body)]);
  assert.equal(echo.headers['content-length'], '4096');
  // The header JSON is Go's: canonical names, sorted; re-encoding it gives the same bytes.
  assert.ok(Object.keys(res.headers).every((k) => /^[A-Z][a-z0-9]*(-[A-Z0-9][a-z0-9]*)*$/.test(k)), Object.keys(res.headers).join());
  assert.deepEqual(res.headersJson, refHeaders(res.headers));
  assert.deepEqual(msg.payload, refResponse(res.status, res.headers, res.body));
});

test('the gateway applies west.egress: a URI outside it is 403 and the origin sees nothing', { skip }, async () => {
  const before = origin.seen.length;
  const r = await fetchText(`http://127.0.0.1:${open}/gw-a/private/echo`);
  assert.equal(r.status, 403);
  assert.match(String(r.headers['proxy-status']), /error=http_request_denied/);
  assert.equal(origin.seen.length, before);
  await gateway.waitForEvent('outgoing.egress_denied', (e) => e.url === '/private/echo');
});

test('no answer in time: 504 Gateway timeout. (configurable; 1.5 s here, 10 s by default)', { skip }, async () => {
  const started = Date.now();
  const r = await fetchText(`http://127.0.0.1:${open}/gw-nobody/rest/x`);
  assert.equal(r.status, 504);
  assert.match(r.text, /Gateway timeout\./);
  assert.ok(Date.now() - started >= 1400, `answered after ${Date.now() - started} ms`);
});

test('refused before anything is published: ca (403), unlisted gateway (404), bad ID (404), over 16 MiB (413), upgrade (501), head too large (431)', { skip }, async () => {
  const spy = await client('spy', ['devices/+/tunnel-down/+']);
  assert.equal((await fetchText(`http://127.0.0.1:${fenced}/gw-a/ok/echo`)).status, 403);
  assert.equal((await fetchText(`http://127.0.0.1:${listed}/gw-z/ok/echo`)).status, 404);
  assert.equal((await fetchText(`http://127.0.0.1:${open}/gw+a/ok/echo`)).status, 404);
  assert.equal((await fetchText(`http://127.0.0.1:${open}/gw-a`)).status, 404);
  const declared = await rawHttp(open, `POST /gw-a/ok/echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${16 * 1024 * 1024}\r\n\r\n`);
  assert.equal(statusOf(declared), 413);
  const upgrade = await rawHttp(open, 'GET /gw-a/ok/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  assert.equal(statusOf(upgrade), 501);
  assert.equal(statusOf(await rawHttp(open, `GET /gw-a/ok/echo HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)), 431);
  // The sentinel: the listed listener's own gateway is reached, and it is the first thing the spy sees.
  assert.equal((await fetchText(`http://127.0.0.1:${listed}/gw-a/ok/echo`)).status, 200);
  const first = await spy.next(() => true);
  assert.deepEqual(refDecodeRequest(first.payload).uri, '/ok/echo');
  assert.equal(spy.got.length, 0);
});

test('a streamed (chunked) body is buffered up to 16 MiB; beyond, 413', { skip }, async () => {
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const send = (n: number): Promise<{ status: number; text: string }> => new Promise((resolve, reject) => {
    const req = http.request(`http://127.0.0.1:${open}/gw-a/ok/echo`, { method: 'POST', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    let i = 0;
    const pump = (): void => {
      while (i < n) {
        i++;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
  const small = await send(3);
  assert.equal(small.status, 200);
  assert.equal((JSON.parse(small.text) as Echo).bodyBytes, 3 * chunk.length);
  const large = await send(17).catch(() => ({ status: -1, text: '' }));
  // The answer is written when the 16 MiB mark is passed, then the connection closes.
  assert.ok(large.status === 413 || large.status === -1, `status ${large.status}`);
  await cloud.waitForEvent('access', (e) => e.status === 413 && e.error === 'body_too_large' && Number(e.in) > 16 * 1024 * 1024 - 1);
});

test('state.json shows the wazigate sides, /metrics counts their requests like any listener\'s', { skip }, async () => {
  assert.equal((await fetchText(`http://127.0.0.1:${open}/gw-a/ok/echo`)).status, 200);
  const state = JSON.parse((await fetchText(`${cloud.controlUrl()}/state.json`)).text) as { wazigate: { side: string; key: string; connected: boolean; requests: number }[] };
  const side = state.wazigate.find((w) => w.key === `http://127.0.0.1:${open}`);
  assert.ok(side?.side === 'cloud' && side.connected && side.requests > 0, JSON.stringify(state.wazigate));
  const metrics = (await fetchText(`${cloud.controlUrl()}/metrics`)).text;
  assert.match(metrics, new RegExp(`\\nwest_requests_total\\{listener="http://127.0.0.1:${open}",mapping="/\\{gatewayID\\}",status="200"\\} [1-9]`));
});

test('two cloud listeners of one node share the refs: each takes only its own answers, no stray alarms', { skip }, async () => {
  const strays = (): number => cloud.events.filter((e) => e.event === 'wazigate.stray_answer' && e.level === 'warn').length;
  const before = strays();
  const both = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    fetchText(`http://127.0.0.1:${i % 2 ? open : listed}/gw-a/ok/echo?n=${i}`).then((r) => (JSON.parse(r.text) as Echo).url)));
  assert.deepEqual(both, Array.from({ length: 20 }, (_, i) => `/ok/echo?n=${i}`));
  // Answers reach every listener in order: once the last request's access line is out, every earlier answer was seen.
  assert.equal((await fetchText(`http://127.0.0.1:${open}/gw-a/ok/echo?last`)).status, 200);
  await cloud.waitForEvent('access', (e) => e.path === '/gw-a/ok/echo?last');
  assert.equal(strays(), before);
});
