/**
 * A dial over MQTT given up (the tunnel closed, or removed by a reload) while it waits for the
 * server's answer to its HELLO settles at once, not when the connect timeout passes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import mqtt from 'mqtt';
import type { ClientConfig, ServerConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { dialMqtt } from '../../src/tunnel/mqtt/dial.js';
import { EmbeddedBroker } from '../../src/tunnel/mqtt/embedded.js';
import { freePort } from '../helpers/net.js';

test('aborting a dial that waits for the answer to its HELLO rejects it at once', async () => {
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  const broker = new EmbeddedBroker({ port, host: '127.0.0.1', url } as ServerConfig, silentLogger);
  await broker.listen();
  // A server that hears the HELLO and never answers.
  const server = await mqtt.connectAsync(url, { username: 'hub', clientId: 'silent-hub' });
  try {
    await server.subscribeAsync('west/hub/+/+/up');
    const heard = new Promise<void>((resolve) => server.once('message', () => resolve()));
    const dial = dialMqtt({
      config: { name: 'site', url, mqtt: { server: 'hub', user: 'site' } } as unknown as ClientConfig,
      recvWindow: 65536, connectTimeoutMs: 20_000,
    });
    const settled = dial.result.then(() => 'resolved', (err: unknown) => `rejected: ${(err as Error).message}`);
    await heard;
    const started = Date.now();
    dial.abort();
    const outcome = await Promise.race([settled, new Promise<string>((resolve) => setTimeout(() => resolve('pending'), 3000))]);
    assert.match(outcome, /^rejected/, `the aborted dial is ${outcome} after ${Date.now() - started} ms`);
    await settled;
  } finally {
    await server.endAsync(true);
    await broker.close();
  }
});
