/**
 * Tunnels over MQTT (doc/mqtt.md) in the case 1 and case 4 topologies, through Debian's
 * mosquitto with passwords and west's ACL: every method, 50 MiB each way, a WebSocket upgrade
 * and a stalled reader, as over a WebSocket. Case 4 mixes transports: G <=MQTT=> L <-WS- L2.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { stopDaemons } from '../helpers/daemon.js';
import { mosquittoMissing, startBroker, type Broker } from '../helpers/mosquitto.js';
import { ACL_PATTERNS } from '../../src/tunnel/mqtt/acl.js';
import {
  echoSocketOrigin, everyMethod, fiftyMiBBothWays, passwordFile, QUICK, stallDoesNotBlock, upgradeThrough, westBroker,
} from '../helpers/mqtt-west.js';
import { fetchText, freePort } from '../helpers/net.js';
import { Origin, patternSha256 } from '../helpers/origin.js';
import { streamRequest } from '../helpers/stream.js';
import { retryIfPortTaken, runCli, stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const skip = mosquittoMissing();
const origin = new Origin();
let socketOrigin: { port: number; close(): void };
let cleanup = async (): Promise<void> => {};
let dir = '';

before(async () => {
  if (skip) return;
  ({ dir, cleanup } = await tempDir('west-mqtt-topo-'));
  await origin.listen();
  socketOrigin = await echoSocketOrigin();
});

after(async () => {
  await stopAll();
  await stopDaemons();
  if (!skip) {
    socketOrigin.close();
    await origin.close();
  }
  await cleanup();
});

describe('case 1 over MQTT: client at L/px -> G performs', { skip }, () => {
  let url = '';
  let wsUrl = '';
  let broker: Broker;
  let G: WestProcess;

  before(async () => {
    broker = await westBroker(dir, ['case1.G', 'case1.L']);
    G = await WestProcess.start(await writeConfig(dir, 'c1-G.json', {
      west: { nm: 'case1.G', cp: '127.0.0.1:0', ...QUICK },
      wsts: { sp: broker.url, mqtt: { password: await passwordFile(dir, 'case1.G') }, tokens: { 'case1.L': 'sesame' } },
    }));
    await G.waitForEvent('mqtt.server_subscribed');
    const L = await WestProcess.start(await writeConfig(dir, 'c1-L.json', {
      west: { nm: 'case1.L', ...QUICK },
      wstc: { [broker.url]: { token: 'sesame', mqtt: { server: 'case1.G', password: await passwordFile(dir, 'case1.L') } } },
      proxy: {
        'http://127.0.0.1:0': {
          ea: broker.url,
          '/px': { ou: `http://127.0.0.1:${origin.port}/x` },
          '/ws': { ou: `http://127.0.0.1:${socketOrigin.port}/socket` },
        },
      },
    }));
    await L.waitForEvent('tunnel.connected');
    url = `${L.listenerUrl()}/px`;
    wsUrl = `${L.listenerUrl().replace(/^http:/, 'ws:')}/ws`;
  });

  it('carries every method', async () => everyMethod(url));
  it('carries 50 MiB each way, hash-checked', async () => fiftyMiBBothWays(url));
  it('carries a WebSocket upgrade', async () => upgradeThrough(wsUrl));
  it('keeps other requests moving past a stalled reader', async () => stallDoesNotBlock(url));

  it('shows the transport on the control port of both ends', async () => {
    const state = JSON.parse((await fetchText(`${G.controlUrl()}/state.json`)).text) as { server: { transport: string; peers: { name: string; transport: string }[] } };
    assert.equal(state.server.transport, 'mqtt');
    assert.deepEqual(state.server.peers.map((p) => [p.name, p.transport]), [['case1.L', 'mqtt']]);
  });
});

describe('case 4 with its first tunnel over MQTT: G/baz => L/ba -> L2 performs', { skip }, () => {
  let url = '';
  let wsUrl = '';

  before(async () => {
    const broker = await westBroker(dir, ['case4.G.fiap.org', 'case4.L.fiap.org'], [], undefined);
    await retryIfPortTaken(async () => {
      const lsp = await freePort();
      const lListener = await freePort();
      const G = await WestProcess.start(await writeConfig(dir, 'c4-G.json', {
        west: { nm: 'ws://case4.G.fiap.org', ...QUICK },
        wsts: { sp: broker.url, mqtt: { user: 'case4.G.fiap.org', password: await passwordFile(dir, 'case4.G.fiap.org') } },
        proxy: {
          'http://127.0.0.1:0': {
            en: 'ws://case4.L.fiap.org',
            '/baz': { ou: `http://127.0.0.1:${lListener}/ba` },
            '/wsz': { ou: `http://127.0.0.1:${lListener}/wsb` },
          },
        },
      }));
      const L = await WestProcess.start(await writeConfig(dir, 'c4-L.json', {
        west: { nm: 'ws://case4.L.fiap.org', ...QUICK },
        wsts: { sp: `ws://127.0.0.1:${lsp}` },
        wstc: { [broker.url]: { mqtt: { server: 'case4.G.fiap.org', password: await passwordFile(dir, 'case4.L.fiap.org') } } },
        proxy: {
          [`http://127.0.0.1:${lListener}`]: {
            en: 'ws://case4.L2.fiap.org',
            '/ba': { ou: `http://127.0.0.1:${origin.port}/a` },
            '/wsb': { ou: `http://127.0.0.1:${socketOrigin.port}/socket` },
          },
        },
      }));
      const L2 = await WestProcess.start(await writeConfig(dir, 'c4-L2.json', {
        west: { nm: 'ws://case4.L2.fiap.org', ...QUICK },
        wstc: { [`ws://127.0.0.1:${lsp}`]: {} },
      }));
      await L.waitForEvent('tunnel.connected');
      await L2.waitForEvent('tunnel.connected');
      url = `${G.listenerUrl()}/baz`;
      wsUrl = `${G.listenerUrl().replace(/^http:/, 'ws:')}/wsz`;
    });
  });

  it('carries every method', async () => everyMethod(url));
  it('carries 50 MiB each way, hash-checked', async () => fiftyMiBBothWays(url));
  it('carries a WebSocket upgrade', async () => upgradeThrough(wsUrl));
  it('keeps other requests moving past a stalled reader', async () => stallDoesNotBlock(url));
});

describe('MQTT over WebSocket: a ws:// broker URL with mqtt settings', { skip }, () => {
  it('carries requests and a body through mosquitto\'s WebSocket listener', async () => {
    const broker = await startBroker(dir, {
      users: ['ws.G', 'ws.L'].map((name) => ({ name, password: `pw-${name}`, acl: [] })), patterns: ACL_PATTERNS, websockets: true,
    });
    const wsUrl = broker.wsUrl ?? '';
    await WestProcess.start(await writeConfig(dir, 'ws-G.json', {
      west: { nm: 'ws.G', ...QUICK },
      wsts: { sp: wsUrl, mqtt: { password: 'pw-ws.G' } },
    }));
    const L = await WestProcess.start(await writeConfig(dir, 'ws-L.json', {
      west: { nm: 'ws.L', ...QUICK },
      wstc: { [wsUrl]: { mqtt: { server: 'ws.G', password: 'pw-ws.L' } } },
      proxy: { 'http://127.0.0.1:0': { ea: wsUrl, '/px': { ou: `http://127.0.0.1:${origin.port}/x` } } },
    }));
    const connected = await L.waitForEvent('tunnel.connected');
    assert.equal(connected.transport, 'mqtt');
    await everyMethod(`${L.listenerUrl()}/px`);
    const r = await streamRequest(`${L.listenerUrl()}/px/bytes/5000000`);
    assert.equal(r.sha256, patternSha256(5_000_000));
  });
});

describe('west check on tunnels over MQTT', () => {
  it('finds a client\'s server by its name through the broker, and says when none has it', async () => {
    const { dir: where, cleanup: done } = await tempDir('west-mqtt-check-');
    try {
      const hub = await writeConfig(where, 'hub.json', { west: { nm: 'hub', egress: {} }, wsts: { sp: 'mqtt://broker.example:1883', mqtt: { password: 'pw' } } });
      const site = (server: string): unknown => ({ west: { nm: 'site', egress: {} }, wstc: { 'mqtt://broker.example:1883': { mqtt: { server, password: 'pw' } } } });
      const good = await runCli(['check', hub, await writeConfig(where, 'site.json', site('hub'))]);
      assert.equal(good.code, 0, good.stdout);
      assert.match(good.stdout, /tunnel client -> mqtt:\/\/broker\.example:1883 as site \(over MQTT to hub, as user site\)/);
      assert.match(good.stdout, /^sound: 2 nodes, 1 tunnel/m);
      const bad = await runCli(['check', hub, await writeConfig(where, 'lost.json', site('nohub'))]);
      assert.match(bad.stdout, /missing server: no config in this deployment is named "nohub" and serves tunnels over MQTT/);
    } finally {
      await done();
    }
  });
});

describe('the embedded broker (wsts.mqtt.embed)', () => {
  it('carries a tunnel, and applies west\'s topic rules to every user', async () => {
    const { dir: where, cleanup: done } = await tempDir('west-mqtt-embed-');
    const seen: string[] = [];
    let spy: MqttClient | undefined;
    try {
      const port = await freePort();
      const broker = `mqtt://127.0.0.1:${port}`;
      await WestProcess.start(await writeConfig(where, 'hub.json', { west: { nm: 'hub', ...QUICK }, wsts: { sp: broker, mqtt: { embed: true } } }));
      const site = await WestProcess.start(await writeConfig(where, 'site.json', {
        west: { nm: 'site', ...QUICK },
        wstc: { [broker]: { mqtt: { server: 'hub' } } },
        proxy: { 'http://127.0.0.1:0': { ea: broker, '/px': { ou: `http://127.0.0.1:${origin.port}/x` } } },
      }));
      await site.waitForEvent('tunnel.connected');
      spy = mqtt.connect(broker, { username: 'gw2', reconnectPeriod: 0 });
      await new Promise<void>((resolve, reject) => { spy?.once('connect', () => resolve()); spy?.once('error', reject); });
      spy.on('message', (topic) => seen.push(topic));
      // Refused in the SUBACK (0x80), which the client reports as an error.
      for (const filter of ['west/#', 'west/hub/site/+/down', 'west/hub/+/+/up']) await assert.rejects(spy.subscribeAsync(filter), filter);
      assert.equal((await fetchText(`${site.listenerUrl()}/px/spied`)).status, 200);
      await spy.subscribeAsync('west/hub/gw2/+/down');
      assert.deepEqual(seen, []);
    } finally {
      spy?.end(true);
      await done();
    }
  });
});
