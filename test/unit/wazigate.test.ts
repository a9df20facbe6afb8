/** The wazigate codec and config keys, case by case (the wire itself is checked end to end in test/e2e/wazigate*.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import {
  canonicalHeaderName, decodeRequest, decodeResponse, encodeRequest, encodeResponse, headersJson, MalformedPayload, MAX_FIELD,
} from '../../src/wazigate/codec.js';
import { parseTopic } from '../../src/wazigate/topics.js';
import { planReload } from '../../src/reload.js';

test('header names take Go\'s canonical form; names with other bytes stay as they are', () => {
  const cases: [string, string][] = [
    ['content-type', 'Content-Type'], ['X-REQUEST-ID', 'X-Request-Id'], ['www-authenticate', 'Www-Authenticate'],
    ['x-1a', 'X-1a'], ['a--b', 'A--B'], ['has space', 'has space'],
  ];
  for (const [name, canonical] of cases) assert.equal(canonicalHeaderName(name), canonical, name);
});

test('headers JSON: grouped by canonical name, sorted, values in order, HTML characters and non-ASCII as Go writes them', () => {
  const json = headersJson(['x-b', '1', 'X-A', '<&>', 'X-B', '2', 'X-U', Buffer.from('é', 'utf8').toString('latin1')]).toString('utf8');
  assert.equal(json, '{"X-A":["\\u003c\\u0026\\u003e"],"X-B":["1","2"],"X-U":["é"]}');
});

test('a request and a response survive encoding; lengths are 3 bytes big-endian', () => {
  const body = Buffer.from([0, 255, 10, 13]);
  const req = encodeRequest({ method: 'POST', uri: '/x?y', headers: ['A', 'b'], body });
  assert.deepEqual(req.subarray(0, 7), Buffer.from([0, 0, 4, 0x50, 0x4f, 0x53, 0x54]));
  assert.deepEqual(decodeRequest(req), { method: 'POST', uri: '/x?y', headers: ['A', 'b'], body });
  const res = encodeResponse({ status: 418, headers: [], body });
  assert.deepEqual(res.subarray(0, 2), Buffer.from([1, 162]));
  assert.deepEqual(decodeResponse(res), { status: 418, headers: [], body });
  assert.throws(() => encodeResponse({ status: 200, headers: [], body: Buffer.alloc(MAX_FIELD + 1) }), RangeError);
});

test('malformed payloads are MalformedPayload, never another exception', () => {
  const good = encodeResponse({ status: 200, headers: ['A', 'b'], body: Buffer.from('x') });
  for (let n = 0; n < good.length; n++) assert.throws(() => decodeResponse(good.subarray(0, n)), MalformedPayload, `cut at ${n}`);
  assert.throws(() => decodeResponse(Buffer.concat([good, Buffer.from([0])])), MalformedPayload);
  const withHeaders = (json: string): Buffer => Buffer.concat([Buffer.from([0, 200, 0, 0, json.length]), Buffer.from(json), Buffer.from([0, 0, 0])]);
  for (const json of ['[]', '"x"', '{"A":"b"}', '{"A":[1]}', '{']) assert.throws(() => decodeResponse(withHeaders(json)), MalformedPayload, json);
  assert.deepEqual(decodeResponse(withHeaders('null')).headers, []);
});

test('topics: exactly devices/{id}/<direction>/{ref}, ref 1 .. 2^31-1', () => {
  assert.deepEqual(parseTopic('devices/gw-1/tunnel-up/42', 'tunnel-up'), { gateway: 'gw-1', ref: 42 });
  for (const t of ['devices/gw/tunnel-up/0', 'devices/gw/tunnel-up/2147483648', 'devices/gw/tunnel-up/01', 'devices/gw/tunnel-up/x',
    'devices/gw/tunnel-down/1', 'devices/g+w/tunnel-up/1', 'devices/gw/tunnel-up/1/2', 'other/gw/tunnel-up/1']) {
    assert.equal(parseTopic(t, 'tunnel-up'), undefined, t);
  }
});

function problems(config: unknown): string[] {
  try {
    parseConfig(JSON.stringify(config));
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  return [];
}

test('config: a wazigate listener and west.wazigate load with their defaults', () => {
  const c = parseConfig(JSON.stringify({
    west: { nm: 'n', wazigate: { broker: 'mqtt://b:1883', gateway: 'gw1', origin: 'http://127.0.0.1/base' } },
    proxy: { 'http://127.0.0.1:8080': { wazigate: { broker: 'mqtts://b', user: 'u', password: 'p' } } },
  }));
  assert.equal(c.listeners.length, 0);
  assert.deepEqual(c.wazigate?.clouds.map((x) => [x.key, x.port, x.timeoutMs, x.user, x.password]), [['http://127.0.0.1:8080', 8080, 10_000, 'u', 'p']]);
  assert.equal(c.wazigate?.gateway?.origin.href, 'http://127.0.0.1/base');
});

test('config: what a wazigate listener or west.wazigate may not hold is named', () => {
  const P = 'proxy["http://127.0.0.1:8080"]';
  assert.deepEqual(problems({ west: { nm: 'n' }, proxy: { 'http://127.0.0.1:8080': { ea: 'ws://h:1', wazigate: { broker: 'mqtt://b' }, '/x': { ou: 'http://o/' } } } }), [
    `${P}.ea: is not used by a wazigate listener (it sends every request "/{gatewayID}/..." to that gateway)`,
    `${P}["/x"]: is not used by a wazigate listener (it sends every request "/{gatewayID}/..." to that gateway)`,
  ]);
  assert.deepEqual(problems({ west: { nm: 'n' }, proxy: { 'https://127.0.0.1:8443': { wazigate: { broker: 'mqtt://b' } } } }),
    ['proxy["https://127.0.0.1:8443"]: a wazigate listener is http:// only (put a TLS-terminating proxy in front)']);
  const bad = problems({
    west: { nm: 'n', wazigate: { broker: 'http://b', gateway: 'a/b', origin: 'ftp://x' } },
    proxy: { 'http://127.0.0.1:8080': { wazigate: { broker: 'mqtt://u:p@b', timeout: 0, gateways: ['#'] } } },
  });
  assert.equal(bad.length, 6, bad.join('\n'));
  assert.ok(bad.some((p) => p.startsWith('west.wazigate.broker: must be an mqtt:// or mqtts:// URL')));
  assert.ok(bad.some((p) => p.startsWith(`${P}.wazigate.gateways[0]: must be a gateway ID`)));
  // The original's listeners keep their message.
  assert.deepEqual(problems({ west: { nm: 'n' }, proxy: { 'http://127.0.0.1:8080': { '/x': { ou: 'http://o/' } } } }),
    [`${P}: needs exactly one of "ea" or "en" (found none)`]);
});

test('a reload that changes a wazigate setting is refused (a restart applies it); one that does not, is not', () => {
  const config = (timeout: number): string => JSON.stringify({
    west: { nm: 'n' }, proxy: { 'http://127.0.0.1:8080': { wazigate: { broker: 'mqtt://b', timeout } } },
  });
  assert.match(planReload(parseConfig(config(10)), parseConfig(config(5))).refused ?? '', /wazigate settings changed/);
  assert.equal(planReload(parseConfig(config(10)), parseConfig(config(10))).refused, undefined);
});
