/**
 * Rolling upgrades: a node of this release speaks wire version 3 and the previous one, so it
 * works with a node of the previous release (`west.wire: 2` makes a node offer and accept only
 * west.v2, with the previous release's features, as that release did) both ways, and a chain
 * with such a node in the middle still carries requests. The version negotiated is in the
 * tunnel's log line and /state.json.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket from 'ws';
import type { NodeState } from '../../src/control/state.js';
import { Chain, until200 } from '../helpers/chain.js';
import { Mesh } from '../helpers/mesh.js';
import { fetchText } from '../helpers/net.js';
import { originAndTempDir } from '../helpers/west.js';

const fixture = originAndTempDir('west-mesh-interop-');

describe('a version-3 node and a version-2 node, each side as server and as client', () => {
  let mesh: Mesh;

  before(async () => {
    const ou = `http://127.0.0.1:${fixture.origin.port}/o`;
    const listener = (peer: string): Record<string, Record<string, unknown>> => ({ 'http://127.0.0.1:0': { en: peer, '/o': { ou } } });
    mesh = await Mesh.launch(fixture.dir, [
      { name: 'old-server', server: true, west: { wire: 2 }, proxy: listener('new-client') },
      { name: 'new-client', dials: ['old-server'], proxy: listener('old-server') },
      { name: 'new-server', server: true, proxy: listener('old-client') },
      { name: 'old-client', dials: ['new-server'], west: { wire: 2 }, proxy: listener('new-server') },
    ]);
  });

  after(async () => {
    await mesh?.stopAll();
  });

  test('they agree on west.v2, and say so in the log and /state.json', async () => {
    const connected = await mesh.proc('new-client').waitForEvent('tunnel.connected');
    assert.equal(connected.wire, 'west.v2');
    const accepted = await mesh.proc('new-server').waitForEvent('tunnel.client_connected', (e) => e.peer === 'old-client');
    assert.equal(accepted.wire, 'west.v2');
    assert.equal((await mesh.state('new-client')).tunnels[0]?.wire, 'west.v2');
    assert.equal((await mesh.state('new-server')).server?.peers[0]?.wire, 'west.v2');
    assert.equal((await mesh.state('old-server')).server?.peers[0]?.wire, 'west.v2');
  });

  for (const [from, to] of [['old-server', 'new-client'], ['new-client', 'old-server'], ['new-server', 'old-client'], ['old-client', 'new-server']]) {
    test(`requests from ${from}'s listener are performed at ${to}`, async () => {
      const url = `${mesh.proc(from ?? '').listenerUrl()}/o/echo`;
      await until200(url);
      const r = await fetchText(url, { method: 'POST', body: 'x'.repeat(100_000), headers: { 'X-Request-Id': `interop-${from}` } });
      assert.equal(r.status, 200, r.text);
      assert.equal((JSON.parse(r.text) as { bodyBytes: number }).bodyBytes, 100_000);
      await mesh.proc(to ?? '').waitForEvent('perform', (e) => e.id === `interop-${from}`);
    });
  }

  test('a client that offers west.v3 and west.v2 gets west.v3 from a new server, west.v2 from an old one; west.v1 alone is refused (400)', async () => {
    const dial = (url: string, protocols: string[]): Promise<string> => new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { headers: { 'X-West-Node': 'probe' } });
      ws.once('open', () => { resolve(ws.protocol); ws.terminate(); });
      ws.once('unexpected-response', (_req, res: http.IncomingMessage) => { resolve(String(res.statusCode)); res.resume(); ws.terminate(); });
      ws.once('error', reject);
    });
    assert.equal(await dial(mesh.serverUrl('new-server'), ['west.v3', 'west.v2']), 'west.v3');
    assert.equal(await dial(mesh.serverUrl('new-server'), ['west.v2']), 'west.v2');
    assert.equal(await dial(mesh.serverUrl('old-server'), ['west.v3', 'west.v2']), 'west.v2');
    assert.equal(await dial(mesh.serverUrl('new-server'), ['west.v1']), '400');
  });
});

describe('sample/case4 with its middle node on the previous wire version', () => {
  let chain: Chain;

  before(async () => {
    chain = await Chain.launch({ dir: fixture.dir, originPort: fixture.origin.port, perNode: { L: { wire: 2 } } });
  });

  after(async () => {
    await chain?.stopAll();
  });

  test('the chain carries requests, and each of L\'s tunnels speaks west.v2', async () => {
    await until200(`${chain.url}/mixed/echo`);
    const r = await fetchText(`${chain.url}/mixed/echo`);
    assert.equal(r.status, 200, r.text);
    const l = JSON.parse((await fetchText(`${chain.proc('L').controlUrl()}/state.json`)).text) as NodeState;
    assert.equal(l.tunnels[0]?.wire, 'west.v2');
    assert.equal(l.server?.peers[0]?.wire, 'west.v2');
  });
});
