/**
 * Forwarding headers a client could forge (X-Forwarded-*, Forwarded, X-Real-IP): a listener
 * replaces them unless the client's address is in `west.trustedProxies` (default: loopback,
 * so a chain of west nodes on one machine still shows the original client). Two nodes, each
 * tunnelled to itself: A trusts nobody and faces the client; A's far end sends to B's
 * listener over loopback, which B trusts by default.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fetchText, freePort } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const origin = new Origin();
let cleanup: () => Promise<void> = async () => {};
let aPort = 0;
let bPort = 0;

const FORGED = {
  'X-Forwarded-For': '6.6.6.6',
  'X-Forwarded-Proto': 'https',
  'X-Forwarded-Host': 'bank.example',
  'X-Forwarded-Port': '443',
  'X-Forwarded-Prefix': '/admin',
  Forwarded: 'for=6.6.6.6;proto=https;host=bank.example',
  'X-Real-IP': '6.6.6.6',
};

/** A node that tunnels to itself, with one listener. */
async function selfNode(dir: string, name: string, listenerPort: number, path: string, ou: string, west: Record<string, unknown> = {}): Promise<void> {
  const sp = await freePort();
  const config = await writeConfig(dir, `${name}.json`, {
    west: { nm: name, ...west },
    wsts: { sp: `ws://127.0.0.1:${sp}` },
    proxy: { [`http://127.0.0.1:${listenerPort}`]: { ea: `ws://127.0.0.1:${sp}`, [path]: { ou } } },
  });
  const node = await WestProcess.start(config);
  await node.waitForEvent('tunnel.connected');
}

before(async () => {
  await origin.listen();
  let dir: string;
  ({ dir, cleanup } = await tempDir('west-forwarding-'));
  aPort = await freePort();
  bPort = await freePort();
  await selfNode(dir, 'node-b', bPort, '/b', `http://127.0.0.1:${origin.port}/`);
  await selfNode(dir, 'node-a', aPort, '/a', `http://127.0.0.1:${bPort}/b`, { trustedProxies: [] });
});

after(async () => {
  await stopAll();
  await origin.close();
  await cleanup();
});

async function echoHeaders(url: string, headers: Record<string, string>): Promise<Record<string, string | undefined>> {
  const res = await fetchText(url, { headers });
  assert.equal(res.status, 200, res.text);
  return (JSON.parse(res.text) as { headers: Record<string, string | undefined> }).headers;
}

test('a client its listener does not trust cannot forge X-Forwarded-*, Forwarded or X-Real-IP (one hop, then a trusted loopback hop)', async () => {
  const h = await echoHeaders(`http://127.0.0.1:${aPort}/a/echo`, { ...FORGED, Host: 'front.example:8080' });
  assert.equal(h['x-forwarded-for'], '127.0.0.1, 127.0.0.1', 'the client as A saw it, then A\'s far end as B saw it');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], 'front.example:8080', 'the Host the client sent A');
  assert.equal(h['x-real-ip'], '127.0.0.1');
  assert.equal(h.forwarded, `for=127.0.0.1;proto=http;host="front.example:8080", for=127.0.0.1;proto=http;host="127.0.0.1:${bPort}"`);
  assert.equal(h['x-forwarded-port'], undefined);
  assert.equal(h['x-forwarded-prefix'], undefined);
  assert.equal(String(h.via).split(',').length, 2, `Via of both listeners: ${h.via}`);
});

test('a trusted client (loopback, by default) keeps its forwarding headers and is appended to X-Forwarded-For and Forwarded', async () => {
  const h = await echoHeaders(`http://127.0.0.1:${bPort}/b/echo`, { ...FORGED, Host: 'front.example:8080' });
  assert.equal(h['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-forwarded-host'], 'bank.example');
  assert.equal(h['x-forwarded-port'], '443');
  assert.equal(h['x-real-ip'], '6.6.6.6');
  assert.equal(h.forwarded, 'for=6.6.6.6;proto=https;host=bank.example, for=127.0.0.1;proto=http;host="front.example:8080"');
});
