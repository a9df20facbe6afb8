/**
 * A tunnel over MQTT under attack and failure (doc/mqtt.md): wrong broker credentials, a
 * gateway reading or writing topics west's ACL forbids it, forged frames, HELLOs with a wrong
 * token or another's name, a flood of HELLOs, and the broker restarting mid-run.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { encodeDataHeader } from '../../src/tunnel/frame.js';
import { HELLO_BURST } from '../../src/tunnel/mqtt/acceptor.js';
import { decodeEnvelope, downTopic, encodeControl, envelopeHead, KIND_FRAMES, upTopic } from '../../src/tunnel/mqtt/envelope.js';
import { stopDaemons } from '../helpers/daemon.js';
import { mosquittoMissing, type Broker } from '../helpers/mosquitto.js';
import { passwordFile, QUICK, westBroker } from '../helpers/mqtt-west.js';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { startRequest } from '../helpers/stream.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const skip = mosquittoMissing();
const origin = new Origin();
const clients: MqttClient[] = [];
let cleanup = async (): Promise<void> => {};
let dir = '';
let broker: Broker;
let G: WestProcess;
let L: WestProcess;
let url = '';

/** A gateway that logs in to the broker as `user`, outside west. */
async function gateway(user: string, password = `pw-${user}`): Promise<MqttClient> {
  const c = mqtt.connect(broker.url, { username: user, password, reconnectPeriod: 0, clientId: `test-${user}-${randomBytes(3).toString('hex')}` });
  clients.push(c);
  await new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('error', reject); });
  return c;
}

function sessionId(): string {
  return randomBytes(8).toString('hex');
}

const hello = (name: string, token?: string): Buffer => encodeControl(0, {
  t: 'hello', name, wire: [3, 2], features: [], window: 262_144, ...(token !== undefined ? { token } : {}),
});

before(async () => {
  if (skip) return;
  ({ dir, cleanup } = await tempDir('west-mqtt-sec-'));
  await origin.listen();
  broker = await westBroker(dir, ['hub', 'site', 'gw2', 'twin']);
  G = await WestProcess.start(await writeConfig(dir, 'G.json', {
    west: { nm: 'hub', ...QUICK },
    wsts: { sp: broker.url, mqtt: { password: await passwordFile(dir, 'hub') }, tokens: { site: 'site-token', gw2: 'gw2-token', twin: 'twin-token' } },
  }), ['--log-level', 'debug']);
  await G.waitForEvent('mqtt.server_subscribed');
  L = await WestProcess.start(await writeConfig(dir, 'L.json', {
    west: { nm: 'site', ...QUICK },
    wstc: { [broker.url]: { token: 'site-token', mqtt: { server: 'hub', password: await passwordFile(dir, 'site') } } },
    proxy: { 'http://127.0.0.1:0': { ea: broker.url, '/px': { ou: `http://127.0.0.1:${origin.port}/x` } } },
  }));
  await L.waitForEvent('tunnel.connected');
  url = `${L.listenerUrl()}/px`;
});

after(async () => {
  for (const c of clients) c.end(true);
  await stopAll();
  await stopDaemons();
  if (!skip) await origin.close();
  await cleanup();
});

describe('tunnels over MQTT refuse what they must', { skip }, () => {
  it('a wrong broker password is refused, and logged by west and the broker', async () => {
    const X = await WestProcess.start(await writeConfig(dir, 'X.json', {
      west: { nm: 'site2', ...QUICK },
      wstc: { [broker.url]: { mqtt: { server: 'hub', user: 'site', password: 'not-the-password' } } },
    }));
    const e = await X.waitForEvent('tunnel.redial', (ev) => ev.level === 'error');
    assert.match(String(e.reason), /Not authorized|Bad User Name or Password/i);
    assert.match(broker.log(), /not authori[sz]ed|bad user name or password/i);
    await X.stop();
  });

  it('another gateway reads nothing of a tunnel, however it subscribes', async () => {
    const spy = await gateway('gw2');
    const seen: string[] = [];
    spy.on('message', (topic) => seen.push(topic));
    const granted = await spy.subscribeAsync(['west/#', 'west/hub/site/+/down', 'west/hub/site/+/up', 'west/+/+/+/+']);
    const r = await fetchText(`${url}/while-spied`, { method: 'POST', body: 'secret payload' });
    assert.equal(r.status, 200);
    // Publish one message the spy may read, so everything before it has been delivered.
    const marker = downTopic('hub', 'gw2', sessionId());
    const own = await gateway('hub', 'pw-hub');
    await own.publishAsync(marker, Buffer.from('marker'));
    await waitFor('the marker', () => seen.includes(marker));
    assert.deepEqual(seen.filter((t) => t !== marker), [], `granted ${JSON.stringify(granted)}`);
  });

  it('a gateway cannot publish into another\'s session, and west drops frames of a session it does not know', async () => {
    const intruder = await gateway('gw2');
    const forged = Buffer.concat([envelopeHead(KIND_FRAMES, 1), encodeDataHeader(1, 5), Buffer.from('forge')]);
    // Into site's topics (the ACL drops it at the broker) and into its own (west drops it).
    await intruder.publishAsync(upTopic('hub', 'site', sessionId()), forged);
    const own = sessionId();
    await intruder.publishAsync(upTopic('hub', 'gw2', own), forged);
    await G.waitForEvent('mqtt.unexpected_session', (e) => e.session === own);
    assert.ok(!G.events.some((e) => e.event === 'mqtt.unexpected_session' && e.client === 'site'), 'the broker let gw2 publish as site');
    assert.match(broker.log(), /Denied PUBLISH from test-gw2/);
    assert.equal((await fetchText(`${url}/after-forgery`)).status, 200);
  });

  it('a HELLO with a wrong token, or naming another gateway, is refused and logged', async () => {
    const gw = await gateway('gw2');
    const answers: string[] = [];
    gw.on('message', (_t, payload) => {
      const e = decodeEnvelope(payload);
      if (e.kind === 'control') answers.push(e.control.t);
    });
    for (const [name, token] of [['gw2', 'wrong'], ['site', 'site-token']] as const) {
      const sid = sessionId();
      await gw.subscribeAsync(downTopic('hub', 'gw2', sid));
      await gw.publishAsync(upTopic('hub', 'gw2', sid), hello(name, token));
    }
    await waitFor('two refusals', () => answers.length >= 2);
    assert.deepEqual(answers, ['refused', 'refused']);
    await G.waitForEvent('tunnel.client_refused', (e) => String(e.reason).includes('wrong token for gw2'));
    await G.waitForEvent('tunnel.client_refused', (e) => String(e.reason).includes('HELLO names "site"'));
    assert.equal((await fetchText(`${url}/after-hellos`)).status, 200);
  });

  it('a flood of HELLOs is answered a few times, then dropped', async () => {
    const gw = await gateway('gw2');
    let answers = 0;
    gw.on('message', () => answers++);
    await gw.subscribeAsync(downTopic('hub', 'gw2', '+'));
    for (let i = 0; i < 200; i++) gw.publish(upTopic('hub', 'gw2', sessionId()), hello('gw2', 'wrong'));
    await G.waitForEvent('mqtt.hello_flood', (e) => e.client === 'gw2');
    // The flood left site's tunnel alone.
    assert.equal((await fetchText(`${url}/after-flood`)).status, 200);
    assert.ok(answers <= HELLO_BURST, `${answers} answers`);
  });
});

describe('name claims over MQTT', { skip }, () => {
  it('a second client with a connected name takes it over; the first hears 4409', async () => {
    const twin = async (file: string): Promise<WestProcess> => WestProcess.start(await writeConfig(dir, file, {
      west: { nm: 'twin', ...QUICK, reconnectMin: 5, reconnectMax: 5 },
      wstc: { [broker.url]: { token: 'twin-token', mqtt: { server: 'hub', password: await passwordFile(dir, 'twin') } } },
    }));
    const first = await twin('twin-1.json');
    await first.waitForEvent('tunnel.connected');
    const second = await twin('twin-2.json');
    await second.waitForEvent('tunnel.connected');
    const lost = await first.waitForEvent('tunnel.disconnected');
    assert.equal(lost.code, 4409);
    await G.waitForEvent('tunnel.name_reclaimed', (e) => e.peer === 'twin');
    await first.stop();
    await second.stop();
  });
});

describe('a broker restart mid-run', { skip }, () => {
  it('fails what was in flight with 502, then the tunnel comes back', async () => {
    const connects = L.events.filter((e) => e.event === 'tunnel.connected').length;
    const { response } = startRequest(`${url}/hang`, { timeoutMs: 20_000 });
    await waitFor('the request at the origin', () => origin.seen.some((s) => s.url.endsWith('/hang')));
    const port = broker.port;
    await broker.stop();
    const res = await response;
    assert.equal(res.statusCode, 502);
    assert.match(String(res.headers['proxy-status']), /connection_terminated/);
    res.resume();
    broker = await westBroker(dir, ['hub', 'site', 'gw2', 'twin'], [], port);
    await waitFor('the tunnel back', () => L.events.filter((e) => e.event === 'tunnel.connected').length > connects, 20_000);
    assert.equal((await fetchText(`${url}/after-restart`)).status, 200);
  });

  it('a tunnel server starts before its broker, and serves once the broker is up', async () => {
    const port = await freePort();
    const url2 = `mqtt://127.0.0.1:${port}`;
    const early = await WestProcess.start(await writeConfig(dir, 'early-G.json', {
      west: { nm: 'early', ...QUICK },
      wsts: { sp: url2, mqtt: { password: await passwordFile(dir, 'early') } },
    }));
    await early.waitForEvent('mqtt.broker_error');
    await mkdir(path.join(dir, 'second'));
    await westBroker(path.join(dir, 'second'), ['early', 'late'], [], port);
    await early.waitForEvent('mqtt.server_subscribed', undefined, 15_000);
    const late = await WestProcess.start(await writeConfig(dir, 'late-L.json', {
      west: { nm: 'late', ...QUICK },
      wstc: { [url2]: { mqtt: { server: 'early', password: await passwordFile(dir, 'late') } } },
      proxy: { 'http://127.0.0.1:0': { ea: url2, '/px': { ou: `http://127.0.0.1:${origin.port}/x` } } },
    }));
    await late.waitForEvent('tunnel.connected');
    assert.equal((await fetchText(`${late.listenerUrl()}/px/late`)).status, 200);
  });
});
