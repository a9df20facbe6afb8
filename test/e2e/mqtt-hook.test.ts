/**
 * `west.authHook` is asked about a tunnel over MQTT as about one over a WebSocket: after the
 * built-in checks (broker password, token, name), before the WELCOME. A hook that says no keeps
 * the client out; once it says yes, the client's next dial gets in.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { stopDaemons } from '../helpers/daemon.js';
import { mosquittoMissing, type Broker } from '../helpers/mosquitto.js';
import { passwordFile, QUICK, westBroker } from '../helpers/mqtt-west.js';
import { fetchText } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const skip = mosquittoMissing();
const origin = new Origin();
let cleanup = async (): Promise<void> => {};
let dir = '';
let broker: Broker;
let hook: http.Server;
let allow = false;
const asked: { event?: string; name?: string; address?: string }[] = [];

before(async () => {
  if (skip) return;
  ({ dir, cleanup } = await tempDir('west-mqtt-hook-'));
  await origin.listen();
  hook = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => {
      const q = JSON.parse(body) as { event?: string; name?: string; address?: string };
      asked.push(q);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ allow: q.event !== 'tunnel' || allow, reason: 'the test hook says so' }));
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  broker = await westBroker(dir, ['hub', 'site']);
});

after(async () => {
  await stopAll();
  await stopDaemons();
  if (!skip) {
    await new Promise<void>((resolve) => hook.close(() => resolve()));
    await origin.close();
  }
  await cleanup();
});

describe('the auth hook and tunnels over MQTT', { skip }, () => {
  it('a tunnel the hook refuses stays out (logged with the hook as the reason); once it allows, the client gets in', async () => {
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/auth`;
    const G = await WestProcess.start(await writeConfig(dir, 'G.json', {
      west: { nm: 'hub', ...QUICK, authHook: { url: hookUrl, cache: 0.1, denyCache: 0.1 } },
      wsts: { sp: broker.url, mqtt: { password: await passwordFile(dir, 'hub') } },
    }));
    await G.waitForEvent('mqtt.server_subscribed');
    const L = await WestProcess.start(await writeConfig(dir, 'L.json', {
      west: { nm: 'site', ...QUICK },
      wstc: { [broker.url]: { mqtt: { server: 'hub', password: await passwordFile(dir, 'site') } } },
      proxy: { 'http://127.0.0.1:0': { ea: broker.url, '/px': { ou: `http://127.0.0.1:${origin.port}/x` } } },
    }));
    const refused = await G.waitForEvent('tunnel.client_refused', (e) => String(e.reason).includes('west.authHook'));
    assert.equal(refused.transport, 'mqtt');
    assert.ok(!L.events.some((e) => e.event === 'tunnel.connected'), 'the refused client connected');
    const r = await fetchText(`${L.listenerUrl()}/px/a`);
    assert.equal(r.status, 503);
    assert.deepEqual(asked.find((q) => q.event === 'tunnel'), { event: 'tunnel', node: 'hub', name: 'site', address: '' });

    allow = true;
    await L.waitForEvent('tunnel.connected', undefined, 20_000);
    const ok = await fetchText(`${L.listenerUrl()}/px/b`);
    assert.equal(ok.status, 200, ok.text);
  });
});
