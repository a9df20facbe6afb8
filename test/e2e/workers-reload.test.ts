/**
 * A node of two workers reloads a file whose tunnel would no longer fit one pool at its server
 * (workers × `connections` above 16). At start the worker count is lowered to fit
 * (`node.workers_capped`); a reload cannot change the count, so it is rejected in every
 * worker and the running tunnel stays as it was, instead of every worker dialing with a pool
 * size the server refuses (400) and the tunnel going down.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeState } from '../../src/control/state.js';
import { SHORT_TIMERS } from '../helpers/chain.js';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { retryIfPortTaken, stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const HUB = 'wreload-hub';
const SITE = 'wreload-site';
let dir = '';
let cleanup = async (): Promise<void> => {};
let hub: WestProcess;
let site: WestProcess;
let siteConfig: (connections: number) => Record<string, unknown>;

async function stateOf(p: WestProcess): Promise<NodeState> {
  return JSON.parse((await fetchText(`${p.controlUrl()}/state.json`, { timeoutMs: 5000 })).text) as NodeState;
}

before(async () => {
  ({ dir, cleanup } = await tempDir('west-workers-reload-'));
  await retryIfPortTaken(async () => {
    const sp = await freePort();
    const dial = `ws://127.0.0.1:${sp}`;
    hub = await WestProcess.start(await writeConfig(dir, 'hub.json', { west: { nm: HUB, cp: '127.0.0.1:0', ...SHORT_TIMERS }, wsts: { sp: dial } }));
    siteConfig = (connections) => ({ west: { nm: SITE, cp: '127.0.0.1:0', workers: 2, ...SHORT_TIMERS }, wstc: { [dial]: { connections } } });
    site = await WestProcess.start(await writeConfig(dir, 'site.json', siteConfig(2)));
  });
});

after(async () => {
  await stopAll();
  await cleanup();
});

describe('a site of two workers reloads a tunnel too wide for one pool', () => {
  test('the reload is rejected by every worker; the pool at the hub keeps its 4 connections', async () => {
    const members = async (): Promise<number | undefined> => (await stateOf(hub)).server?.peers[0]?.members;
    await waitFor('the site to be one peer of 4 connections', async () => (await members()) === 4, 20_000);
    const from = site.events.length;
    const hubFrom = hub.events.length;
    await writeConfig(dir, 'site.json', siteConfig(16));
    site.kill('SIGHUP');
    const outcomes = await waitFor('both workers to judge the reload', () => {
      const done = site.events.slice(from).filter((e) => e.event === 'node.reloaded' || e.event === 'node.reload_rejected' || e.event === 'node.reload_failed');
      return new Set(done.map((e) => e.worker)).size === 2 ? done : undefined;
    }, 15_000);
    assert.deepEqual(outcomes.map((e) => e.event), ['node.reload_rejected', 'node.reload_rejected'], JSON.stringify(outcomes));
    assert.equal(await members(), 4);
    assert.deepEqual(hub.events.slice(hubFrom).filter((e) => e.event === 'tunnel.client_refused'), []);
  });
});
