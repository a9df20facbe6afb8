/**
 * Rivals under wsts.claim "replace" (the default): many clients of one name, each with its own
 * pool id, dial at once while the name is held. One takes the name; the others lose the race
 * and are closed (4409) rather than kept connected outside any pool, where the server's state
 * does not list them and nothing bounds how many one token holds (doc/security.md: at most 16
 * tunnels for one name). Raw `ws` clients; ws answers the server's liveness ping by itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { freePort, waitFor } from '../helpers/net.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const RIVALS = 12;
const sockets: WebSocket[] = [];
let cleanup = async (): Promise<void> => {};
let hub: WestProcess;
let sp = 0;

interface Dialed {
  ws: WebSocket;
  opened: Promise<boolean>;
  closedWith: number | undefined;
}

function dial(poolId: string): Dialed {
  const ws = new WebSocket(`ws://127.0.0.1:${sp}`, ['west.v3'], { headers: { 'X-West-Node': 'rival-site', 'X-West-Pool': `${poolId} 0/1` } });
  sockets.push(ws);
  const d: Dialed = { ws, closedWith: undefined, opened: new Promise((resolve) => {
    ws.on('open', () => resolve(true));
    ws.on('unexpected-response', () => { resolve(false); ws.terminate(); });
    ws.on('error', () => resolve(false));
  }) };
  ws.on('close', (code) => { d.closedWith = code; });
  return d;
}

before(async () => {
  let dir = '';
  ({ dir, cleanup } = await tempDir('west-pool-rivals-'));
  sp = await freePort();
  hub = await WestProcess.start(await writeConfig(dir, 'hub.json', { west: { nm: 'rivals-hub' }, wsts: { sp: `ws://127.0.0.1:${sp}` } }));
});

after(async () => {
  for (const ws of sockets) ws.terminate();
  await stopAll();
  await cleanup();
});

describe('rivals of one name under "replace"', () => {
  test('one takes the name; every other rival is closed with 4409, none stays connected outside the pool', async () => {
    const first = dial('0'.repeat(32));
    assert.equal(await first.opened, true);
    await waitFor('the first to hold the name', () => hub.events.some((e) => e.event === 'tunnel.client_connected'), 10_000);
    const rivals = Array.from({ length: RIVALS }, (_, i) => dial(`${(i + 1).toString(16).padStart(2, '0')}${'r'.repeat(30)}`));
    assert.deepEqual(await Promise.all(rivals.map((r) => r.opened)), rivals.map(() => true));
    await waitFor('the first to lose the name', () => first.closedWith === 4409, 10_000);
    // Each rival either holds the name or is closed; only one may be left connected.
    const left = await waitFor('all but one rival to be closed', () => {
      const open = rivals.filter((r) => r.closedWith === undefined);
      return open.length === 1 ? open : undefined;
    }, 10_000).catch(() => rivals.filter((r) => r.closedWith === undefined));
    assert.equal(left.length, 1, `rivals still connected: ${left.length} of ${RIVALS}`);
    assert.deepEqual(rivals.filter((r) => r.closedWith !== undefined).map((r) => r.closedWith), Array.from({ length: RIVALS - 1 }, () => 4409));
  });
});
