/**
 * West nodes whose tunnel runs over a test mosquitto (helpers/mosquitto.ts): the broker with
 * one MQTT user per node and west's ACL patterns (src/tunnel/mqtt/acl.ts, as doc/mqtt.md
 * gives them), password files, and what every topology test asks of the tunnel (every
 * method, 50 MiB each way hash-checked, a WebSocket upgrade, a stalled reader).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { ACL_PATTERNS } from '../../src/tunnel/mqtt/acl.js';
import { startBroker, type Broker, type MqttUser } from './mosquitto.js';
import { fetchText } from './net.js';
import { patternSha256 } from './origin.js';
import { openRequest, patternBody, streamRequest } from './stream.js';

export const FIFTY_MIB = 50 * 1024 * 1024;

/** `west.*` keys for quick tests: short heartbeats and redials. */
export const QUICK = { heartbeat: 1, reconnectMin: 0.1, reconnectMax: 1, connectTimeout: 3, drainTimeout: 1 };

/** A broker whose users are `names` (password `pw-<name>`), plus any `extra` users, with west's ACL. */
export async function westBroker(dir: string, names: readonly string[], extra: readonly MqttUser[] = [], port?: number): Promise<Broker> {
  return startBroker(dir, {
    users: [...names.map((name) => ({ name, password: `pw-${name}`, acl: [] })), ...extra],
    patterns: ACL_PATTERNS,
    ...(port !== undefined ? { port } : {}),
  });
}

/** Writes `pw-<name>` to a file and returns the `{ "file": ... }` secret naming it. */
export async function passwordFile(dir: string, name: string, password = `pw-${name}`): Promise<{ file: string }> {
  const file = path.join(dir, `${name}.password`);
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return { file };
}

/** A WebSocket origin that greets with the path it was asked for and echoes what it is sent. */
export async function echoSocketOrigin(): Promise<{ port: number; close(): void }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    ws.send(`hello ${req.url}`);
    ws.on('message', (m, binary) => ws.send(m, { binary }));
  });
  return {
    port: (wss.address() as { port: number }).port,
    close: () => { for (const c of wss.clients) c.terminate(); wss.close(); },
  };
}

/** Every method reaches the origin through the tunnel, unchanged. */
export async function everyMethod(url: string): Promise<void> {
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const r = await fetchText(`${url}/m?q=1`, { method, body: method === 'GET' || method === 'OPTIONS' ? undefined : `body of ${method}` });
    assert.equal(r.status, 200, `${method}: ${r.text}`);
    const seen = JSON.parse(r.text) as { method: string; url: string; bodyBytes: number };
    assert.equal(seen.method, method);
    assert.match(seen.url, /\/m\?q=1$/);
  }
  const head = await fetchText(`${url}/m`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
}

/** 50 MiB down and 50 MiB up, each hash-checked end to end. */
export async function fiftyMiBBothWays(url: string): Promise<void> {
  const down = await streamRequest(`${url}/bytes/${FIFTY_MIB}`, { timeoutMs: 120_000 });
  assert.equal(down.status, 200);
  assert.equal(down.bytes, FIFTY_MIB);
  assert.equal(down.sha256, patternSha256(FIFTY_MIB));
  const up = await streamRequest(`${url}/upload`, { method: 'POST', body: patternBody(FIFTY_MIB), timeoutMs: 120_000 });
  assert.equal(up.status, 200, up.text);
  const seen = JSON.parse(up.text) as { bodyBytes: number; sha256: string };
  assert.equal(seen.bodyBytes, FIFTY_MIB);
  assert.equal(seen.sha256, patternSha256(FIFTY_MIB));
}

/** A WebSocket through the listener's `wsPath` mapping: greeted, then an echo both ways. */
export async function upgradeThrough(wsUrl: string): Promise<void> {
  const ws = new WebSocket(wsUrl);
  const greeting = await new Promise<string>((resolve, reject) => {
    ws.once('message', (m: Buffer) => resolve(m.toString()));
    ws.once('error', reject);
  });
  assert.match(greeting, /^hello \//);
  const big = Buffer.alloc(300 * 1024, 9);
  ws.send(big);
  const echoed = await new Promise<Buffer>((resolve) => ws.once('message', (m) => resolve(m as Buffer)));
  assert.equal(Buffer.compare(echoed, big), 0);
  ws.close();
  await once(ws, 'close');
}

/**
 * A download whose reader stops (its stream's window fills, the broker holds nothing more for
 * it) does not hold up another request on the same tunnel.
 */
export async function stallDoesNotBlock(url: string): Promise<void> {
  const { req, res } = await openRequest(`${url}/bytes/${FIFTY_MIB}`);
  res.pause();
  try {
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const r = await fetchText(`${url}/m`, { timeoutMs: 5000 });
      assert.equal(r.status, 200);
      assert.ok(Date.now() - started < 5000);
    }
  } finally {
    req.destroy();
    res.destroy();
  }
  // The stalled stream ends; the tunnel stays usable.
  const after = await streamRequest(`${url}/bytes/1000000`);
  assert.equal(after.sha256, patternSha256(1_000_000));
}
