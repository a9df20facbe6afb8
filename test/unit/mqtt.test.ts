/**
 * MQTT transport pieces without a broker: west's topic ACL, the envelope and topics, the link
 * (pieces, sequence, control inside a split message) over a fake broker connection, and the
 * config keys with their cross-checks.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { aclAllows } from '../../src/tunnel/mqtt/acl.js';
import type { BrokerConnection } from '../../src/tunnel/mqtt/connection.js';
import { decodeEnvelope, encodeControl, ENVELOPE_BYTES, envelopeHead, KIND_FRAMES, parseTopic, upTopic } from '../../src/tunnel/mqtt/envelope.js';
import { brokerMessageLimit, MQTT_BATCH_BYTES, MqttLink } from '../../src/tunnel/mqtt/link.js';
import { TunnelSession } from '../../src/tunnel/session.js';
import { silentLogger } from '../../src/log.js';

test('the ACL keeps each user to its own tunnels, as client and as server', () => {
  const cases: [string, string, 'read' | 'write', boolean][] = [
    ['site', 'west/hub/site/0123456789abcdef/up', 'write', true],
    ['site', 'west/hub/site/0123456789abcdef/down', 'read', true],
    ['site', 'west/hub/site/+/down', 'read', true],
    ['site', 'west/hub/other/0123456789abcdef/up', 'write', false],
    ['site', 'west/hub/other/+/down', 'read', false],
    ['site', 'west/hub/site/0123456789abcdef/down', 'write', false],
    ['site', 'west/#', 'read', false],
    ['site', 'west/+/+/+/+', 'read', false],
    ['hub', 'west/hub/+/+/up', 'read', true],
    ['hub', 'west/hub/site/0123456789abcdef/down', 'write', true],
    ['hub', 'west/other/site/0123456789abcdef/down', 'write', false],
    ['', 'west/hub/+/+/up', 'read', false],
    ['+', 'west/hub/+/+/up', 'read', false],
  ];
  for (const [user, topic, access, allowed] of cases) assert.equal(aclAllows(user, topic, access), allowed, `${user} ${access} ${topic}`);
});

test('topics: only west session topics with safe names parse', () => {
  assert.deepEqual(parseTopic(upTopic('hub', 'site', '0123456789abcdef')), { server: 'hub', client: 'site', session: '0123456789abcdef', dir: 'up' });
  for (const bad of ['west/hub/site/xyz/up', 'west/hub/si+te/0123456789abcdef/up', 'other/hub/site/0123456789abcdef/up', 'west/hub/site/0123456789abcdef/sideways', 'west/hub/site/0123456789abcdef/up/more']) {
    assert.equal(parseTopic(bad), undefined, bad);
  }
});

test('envelopes: control messages round-trip; a short, unknown or malformed one throws', () => {
  const e = decodeEnvelope(encodeControl(7, { t: 'close', code: 1000, reason: 'bye' }));
  assert.deepEqual(e, { kind: 'control', seq: 7, control: { t: 'close', code: 1000, reason: 'bye' } });
  assert.throws(() => decodeEnvelope(Buffer.from([0, 0])));
  assert.throws(() => decodeEnvelope(Buffer.concat([envelopeHead(9, 0), Buffer.from('x')])));
  assert.throws(() => decodeEnvelope(Buffer.concat([envelopeHead(1, 0), Buffer.from('{"t":"hello"}')])));
});

/** A broker connection that hands what is published to `sink`. */
function fakeConnection(sink: (payload: Buffer) => void): BrokerConnection {
  const fake = Object.assign(new EventEmitter(), {
    connected: true, queuedBytes: 0, url: 'mqtt://fake',
    publish: (_topic: string, payload: Buffer, cb?: () => void) => { sink(payload); cb?.(); },
  });
  return fake as unknown as BrokerConnection;
}

function linkPair(maxMessage: number): { a: MqttLink; b: MqttLink; got: Buffer[]; bad: string[] } {
  const got: Buffer[] = [];
  const bad: string[] = [];
  let b: MqttLink | undefined;
  const a = new MqttLink({ conn: fakeConnection((p) => b?.deliver(p)), sendTopic: 't', remote: 'x', sentSeq: 1, recvSeq: 1, maxMessage });
  b = new MqttLink({ conn: fakeConnection(() => undefined), sendTopic: 't', remote: 'x', sentSeq: 1, recvSeq: 1, maxMessage });
  b.on('message', (m) => got.push(m));
  b.on('malformed', (r) => bad.push(r));
  return { a, b, got, bad };
}

test('a link splits a large turn into pieces and the other end rebuilds it', () => {
  const { a, got, bad } = linkPair(brokerMessageLimit('ws://broker'));
  const small = Buffer.from('small frame');
  const body = Buffer.alloc(70_000, 3);
  let done = false;
  a.writeTurn([small, { head: Buffer.from('HEAD'), body }], () => { done = true; });
  assert.ok(done);
  assert.deepEqual(bad, []);
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], Buffer.concat([small, Buffer.from('HEAD'), body]));
  assert.equal(brokerMessageLimit('mqtt://broker') > 256 * 1024, true);
});

test('a link refuses a gap in the sequence and a control message inside a split one', () => {
  const { b, bad } = linkPair(4000);
  b.deliver(Buffer.concat([envelopeHead(KIND_FRAMES, 2), Buffer.from('x')]));
  assert.match(bad[0] ?? '', /2 arrived where 1 was due/);
  const second = linkPair(4000);
  second.b.deliver(Buffer.concat([envelopeHead(2, 1), Buffer.from('piece')]));
  second.b.deliver(encodeControl(2, { t: 'ping' }));
  assert.match(second.bad[0] ?? '', /control message inside a split/);
});

/** The problems of a config that must fail. */
function problems(config: unknown): string[] {
  try {
    parseConfig(JSON.stringify(config));
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('config was accepted');
}

test('config: MQTT server and client settings load with their defaults', () => {
  const hub = parseConfig(JSON.stringify({ west: { nm: 'ws://hub' }, wsts: { sp: 'mqtt://127.0.0.1:1883', mqtt: { password: 'pw' }, tokens: { site: 't' } } }));
  assert.deepEqual(hub.server?.mqtt, { user: 'hub', embed: false, password: 'pw' });
  assert.equal(hub.server?.port, 1883);
  const site = parseConfig(JSON.stringify({
    west: { nm: 'site' },
    wstc: { 'mqtts://broker:8883': { mqtt: { server: 'hub' } } },
    proxy: { 'http://127.0.0.1:0': { ea: 'mqtts://broker:8883', '/px': { ou: 'http://127.0.0.1:1/x' } } },
  }));
  assert.deepEqual(site.clients.map((c) => [c.url, c.mqtt]), [['mqtts://broker:8883', { server: 'hub', user: 'site' }]]);
});

test('config: a broker URL without MQTT settings, and settings that cannot work, are refused', () => {
  assert.deepEqual(problems({ west: { nm: 'hub' }, wsts: { sp: 'mqtt://127.0.0.1:1883' } }), [
    'wsts.sp: names an MQTT broker: add wsts.mqtt (its user and password; doc/mqtt.md)',
  ]);
  assert.match(problems({ west: { nm: 'hub' }, wsts: { sp: 'mqtt://10.0.0.1:1883', mqtt: { embed: true } } }).join('\n'), /wsts\.mqtt\.embed: runs a broker without passwords/);
  assert.match(problems({ west: { nm: 'a/b' }, wsts: { sp: 'mqtt://127.0.0.1:1', mqtt: {} } }).join('\n'), /west\.nm: must fit in one MQTT topic level/);
  assert.match(problems({ west: { nm: 'hub' }, wsts: { sp: 'mqtt://127.0.0.1:1', mqtt: {}, ca: ['10.0.0.0/8'] } }).join('\n'), /wsts\.ca: lists client addresses/);
  assert.match(problems({ west: { nm: 'site' }, wstc: { 'mqtt://b:1883': {} } }).join('\n'), /wstc\["mqtt:\/\/b:1883"\]: names an MQTT broker/);
  assert.match(problems({
    west: { nm: 'site' }, proxy: { 'http://127.0.0.1:0': { ea: 'mqtt://b:1883', '/px': { ou: 'http://127.0.0.1:1/x' } } },
  }).join('\n'), /ea: names an MQTT broker: add a wstc entry/);
  assert.match(problems({ west: { nm: 'site' }, wstc: { 'mqtt://b:1883': { mqtt: { server: 'h#' } } } }).join('\n'), /mqtt\.server: must fit/);
});

test("a session's back-pressure counts its own bytes, not its siblings' on the shared broker connection", async () => {
  // The tunnel server holds one broker connection for every session. Bytes another session
  // has in flight on it must not make this one wait: nothing of this one's would wake it.
  const held: (() => void)[] = [];
  const conn = Object.assign(new EventEmitter(), {
    connected: true, queuedBytes: 0, url: 'mqtt://fake',
    publish(_topic: string, payload: Buffer, cb?: () => void) {
      conn.queuedBytes += payload.length;
      held.push(() => { conn.queuedBytes -= payload.length; cb?.(); });
    },
  });
  const shared = conn as unknown as BrokerConnection;
  const options = { conn: shared, remote: 'x', sentSeq: 1, recvSeq: 1, maxMessage: brokerMessageLimit('mqtt://x') };
  const busy = new MqttLink({ ...options, sendTopic: 'busy' });
  const quiet = new MqttLink({ ...options, sendTopic: 'quiet' });
  const session = new TunnelSession(quiet, { localName: 'hub', peerName: 'site', initiator: false, recvWindow: 65536, sendWindow: 65536, heartbeatMs: 60_000, log: silentLogger });
  try {
    busy.writeTurn([Buffer.alloc(MQTT_BATCH_BYTES), Buffer.alloc(MQTT_BATCH_BYTES)], () => undefined);
    assert.equal(quiet.queuedBytes, 0, "the other session's bytes are not this link's");
    const woken = new Promise<boolean>((resolve) => {
      if (session.congested()) session.whenWritable(() => resolve(true)); else resolve(true);
      setTimeout(() => resolve(false), 2000);
    });
    for (const done of held.splice(0)) done();
    assert.ok(await woken, 'a writer of the quiet session was left waiting');
    // Its own bytes still count until the broker connection has taken them.
    quiet.writeTurn([Buffer.alloc(1000)], () => undefined);
    assert.equal(quiet.queuedBytes, 1000 + ENVELOPE_BYTES);
    for (const done of held.splice(0)) done();
    assert.equal(quiet.queuedBytes, 0);
  } finally {
    session.close();
  }
});
