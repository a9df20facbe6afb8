import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log.js';
import { TunnelClient } from '../../src/tunnel/client.js';
import { TunnelServer } from '../../src/tunnel/server.js';
import type { TunnelSession } from '../../src/tunnel/session.js';

const TUNING = { recvWindow: 64 * 1024, heartbeatMs: 5000, maxStreams: 100, idleTimeoutMs: 0 };

async function tunnelServer(): Promise<TunnelServer> {
  const server = new TunnelServer({
    ...TUNING,
    config: { url: 'ws://127.0.0.1:0', host: '127.0.0.1', port: 0, tls: false, claim: 'replace', allowAddresses: [], allowNames: [] },
    localName: 'node-S',
    log: silentLogger,
  });
  await server.listen();
  return server;
}

function tunnelClient(port: number): TunnelClient {
  return new TunnelClient({
    ...TUNING,
    // ee: "no": the first acquire() starts the dial.
    config: { url: `ws://127.0.0.1:${port}`, name: 'node-C', early: false },
    connectTimeoutMs: 5000,
    reconnectMinMs: 100,
    reconnectMaxMs: 1000,
    log: silentLogger,
  });
}

test('client: 50 requests waiting on one dial share it: no MaxListenersExceededWarning, every one gets the session', async () => {
  const server = await tunnelServer();
  const client = tunnelClient(server.port);
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => { warnings.push(w); };
  process.on('warning', onWarning);
  try {
    // Half wait only for the dial in progress, half for any (re)connection within a bound.
    const waiters = Array.from({ length: 50 }, (_, i) => client.acquire(5000, i % 2 === 0 ? 0 : 5000));
    const listeners = (['session', 'session-closed', 'dial-failed'] as const).map((e) => client.listenerCount(e));
    const sessions = await Promise.all(waiters);
    // Warnings are emitted on a later tick: let one pass before looking.
    await new Promise((r) => setImmediate(r));
    const first: TunnelSession | undefined = sessions[0];
    assert.ok(first, 'the dial connected');
    assert.deepEqual(
      { same: sessions.every((s) => s === first), listeners, leftAfter: client.listenerCount('session'), warnings: warnings.map((w) => w.name) },
      { same: true, listeners: [0, 0, 0], leftAfter: 0, warnings: [] },
    );
  } finally {
    process.off('warning', onWarning);
    await client.close();
    await server.close();
  }
});

test('client: waiters on a dial that fails all get undefined as soon as it fails', async () => {
  // A port nobody listens on: bind one, note it, close it.
  const server = await tunnelServer();
  const port = server.port;
  await server.close();
  const client = tunnelClient(port);
  try {
    const started = Date.now();
    const sessions = await Promise.all(Array.from({ length: 20 }, () => client.acquire(60_000)));
    assert.deepEqual({ sessions: sessions.filter((s) => s !== undefined).length, quick: Date.now() - started < 30_000 }, { sessions: 0, quick: true });
  } finally {
    await client.close();
  }
});
