/**
 * N workers per node (`west.workers`, issue 15 item 6): a site run by two worker processes
 * behind one `ea` listener is one peer at its hub, a pool of the workers' connections; both
 * workers serve requests; a worker killed costs only its own requests and is started again
 * and rejoins the pool while the other serves on; SIGTERM drains them all and leaves no
 * process behind; `workers: 1` is one process as before; a hub that cannot pool (west.wire: 2)
 * gets worker 0 alone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NodeState } from '../../src/control/state.js';
import { SHORT_TIMERS } from '../helpers/chain.js';
import { fetchText, freePort, waitFor, type FetchResult } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { retryIfPortTaken, stopAll, tempDir, WestProcess, writeConfig, type LogEvent } from '../helpers/west.js';

const HUB = 'workers-hub';
const SITE = 'workers-site';

/** An origin whose `/gate` answers only once released (so requests stay in flight on the tunnel). */
class GatedOrigin {
  private readonly server = http.createServer((req, res) => {
    req.resume();
    const answer = (): void => { res.end('released'); };
    if (this.open) answer();
    else this.waiting.push(answer);
  });

  private waiting: (() => void)[] = [];
  private open = false;
  port = 0;

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  release(): void {
    this.open = true;
    for (const w of this.waiting.splice(0)) w();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const fx = {} as { dir: string; origin: Origin; gated: GatedOrigin; cleanup(): Promise<void> };
before(async () => {
  const t = await tempDir('west-workers-');
  fx.dir = t.dir;
  fx.cleanup = t.cleanup;
  fx.origin = new Origin();
  await fx.origin.listen();
  fx.gated = new GatedOrigin();
  await fx.gated.listen();
});
after(async () => {
  await stopAll();
  await fx.origin?.close();
  await fx.gated?.close();
  await fx.cleanup?.();
});

async function stateOf(p: WestProcess): Promise<NodeState> {
  return JSON.parse((await fetchText(`${p.controlUrl()}/state.json`, { timeoutMs: 5000 })).text) as NodeState;
}

/** Whether process `pid` is still there. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids of the workers that reported up, by worker index (the latest for each). */
function workerPids(p: WestProcess): Map<number, number> {
  const pids = new Map<number, number>();
  for (const e of p.events) if (e.event === 'node.worker_started') pids.set(Number(e.worker), Number(e.pid));
  return pids;
}

/** A hub and a site of `workers` workers dialing it; the site's listener maps `/px` and `/gate` at the hub. */
async function launch(tag: string, workers: number, hubWest: Record<string, unknown> = {}): Promise<{ hub: WestProcess; site: WestProcess; url: string }> {
  return retryIfPortTaken(async () => {
    const serverPort = await freePort();
    const dial = `ws://127.0.0.1:${serverPort}`;
    const hub = await WestProcess.start(await writeConfig(fx.dir, `${tag}-hub.json`, {
      west: { nm: HUB, cp: '127.0.0.1:0', ...SHORT_TIMERS, ...hubWest },
      wsts: { sp: dial },
    }));
    let site: WestProcess;
    try {
      site = await WestProcess.start(await writeConfig(fx.dir, `${tag}-site.json`, {
        west: { nm: SITE, cp: '127.0.0.1:0', workers, ...SHORT_TIMERS },
        wstc: { [dial]: {} },
        proxy: {
          'http://127.0.0.1:0': {
            ea: dial, '/px': { ou: `http://127.0.0.1:${fx.origin.port}/px` }, '/gate': { ou: `http://127.0.0.1:${fx.gated.port}/gate` },
          },
        },
      }));
    } catch (err) {
      await hub.stop();
      throw err;
    }
    return { hub, site, url: site.listenerUrl('http://127.0.0.1:0') };
  });
}

/** The hub's one peer, once it has `members` connections. */
async function peerWith(hub: WestProcess, members: number): Promise<NonNullable<NodeState['server']>['peers'][number]> {
  return waitFor(`${SITE} to be one peer of ${members} connections at the hub`, async () => {
    const peers = (await stateOf(hub)).server?.peers ?? [];
    return peers.length === 1 && peers[0]?.members === members ? peers[0] : undefined;
  }, 20_000);
}

/** The sum of a Prometheus exposition's samples of `name` whose labels contain `labels`. */
function sampleSum(text: string, name: string, labels: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m?.[1] === name && (m[2] ?? '').includes(labels)) sum += Number(m[3]);
  }
  return sum;
}

/** The access lines of the site so far, by worker. */
function accessByWorker(site: WestProcess): Map<unknown, LogEvent[]> {
  const by = new Map<unknown, LogEvent[]>();
  for (const e of site.events) if (e.event === 'access') by.set(e.worker, [...(by.get(e.worker) ?? []), e]);
  return by;
}

describe('a site of two workers', () => {
  let hub: WestProcess;
  let site: WestProcess;
  let url: string;

  before(async () => {
    ({ hub, site, url } = await launch('two', 2));
    await peerWith(hub, 2);
    await waitFor('both workers up', () => workerPids(site).size === 2, 20_000);
  });
  after(async () => {
    await site?.stop();
    await hub?.stop();
  });

  test('is one peer at the hub, its workers\' connections one pool; both workers serve', async () => {
    const peer = await peerWith(hub, 2);
    assert.equal(peer.name, SITE);
    assert.equal(peer.pool?.length, 2, 'the two connections are members of one pool');
    // node:cluster hands each new connection to the next worker: requests on their own connections reach both.
    for (let i = 0; i < 12; i++) {
      const r = await fetchText(`${url}/px/${i}`);
      assert.equal(r.status, 200);
    }
    const by = await waitFor('access lines of 12 requests', () => {
      const m = accessByWorker(site);
      return [...m.values()].flat().length >= 12 ? m : undefined;
    });
    assert.deepEqual([...by.keys()].sort(), [0, 1], `access lines by worker: ${[...by.keys()].join(', ')}`);
    // Worker 0's control port counts the whole node: its own and worker 1's latest report.
    const state = await waitFor('the site\'s state to count both workers\' requests', async () => {
      const st = await stateOf(site);
      return (st.listeners[0]?.requests ?? 0) >= 12 ? st : undefined;
    }, 10_000);
    assert.deepEqual(state.workers, { count: 2, answering: 0, reporting: 2 });
    assert.equal(state.tunnels[0]?.members, 2, 'the tunnel\'s connections of both workers');
    assert.equal(state.listeners[0]?.statuses['200'], 12);
    // So does /metrics: the request counters and histograms of both workers, summed.
    const metrics = await waitFor('/metrics to count both workers\' requests', async () => {
      const text = (await fetchText(`${site.controlUrl()}/metrics`)).text;
      return sampleSum(text, 'west_requests_total', 'status="200"') >= 12 ? text : undefined;
    }, 10_000);
    assert.equal(sampleSum(metrics, 'west_requests_total', 'status="200"'), 12);
    assert.equal(sampleSum(metrics, 'west_request_duration_seconds_count', ''), 12);
    assert.match(metrics, /^west_workers 2$/m);
    assert.equal(metrics.match(/^# TYPE west_requests_total /gm)?.length, 1, 'each series once');
    const pids = workerPids(site);
    assert.equal(state.pid, pids.get(0), 'the control port is worker 0\'s');
    assert.notEqual(pids.get(0), site.child.pid);
    assert.notEqual(pids.get(1), site.child.pid);
  });

  test('a killed worker costs only its own requests; it is started again and rejoins the pool', async () => {
    // Held requests, each on its own connection, one more each time the hub sees the last one's
    // stream, until both workers (so both pool members) carry some: node:cluster hands new
    // connections to the workers in turn, so that takes two to a few.
    const held: Promise<FetchResult | Error>[] = [];
    const hold = (): void => {
      held.push(fetchText(`${url}/gate/${held.length}`, { timeoutMs: 20_000 }).then(
        (r): FetchResult | Error => r, (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      ));
    };
    hold();
    const streams = await waitFor('held requests on both pool members at the hub', async () => {
      const s = ((await peerWith(hub, 2)).pool ?? []).map((m) => m.streams);
      const total = s.reduce((a, b) => a + b, 0);
      if (total !== held.length) return undefined;
      if (s.length === 2 && s.every((n) => n > 0)) return s;
      if (held.length < 10) hold();
      return undefined;
    }, 20_000, 50);
    const victim = workerPids(site).get(1)!;
    process.kill(victim, 'SIGKILL');
    await site.waitForEvent('node.worker_exited', (e) => e.worker === 1 && e.signal === 'SIGKILL');
    // The node serves on while worker 1 is down or coming back.
    for (let i = 0; i < 4; i++) assert.equal((await fetchText(`${url}/px/meanwhile${i}`)).status, 200);
    fx.gated.release();
    const outcomes = await Promise.all(held);
    const ok = outcomes.filter((o) => !(o instanceof Error) && o.status === 200 && o.text === 'released').length;
    const failed = outcomes.length - ok;
    assert.ok(ok > 0 && failed > 0, `some requests failed with their worker, the others completed (${ok} ok, ${failed} failed)`);
    assert.ok(streams.includes(ok) && streams.includes(failed), `the failures are one member's streams: members had ${streams.join(' and ')}, ${failed} failed`);
    await site.waitForEvent('node.worker_started', (e) => e.worker === 1 && e.restarted === true, 20_000);
    const again = workerPids(site).get(1)!;
    assert.notEqual(again, victim);
    assert.equal(alive(victim), false);
    const peer = await peerWith(hub, 2);
    assert.equal(peer.pool?.length, 2, 'the new worker rejoined the same pool');
  });

  test('SIGHUP to the primary: every worker reloads; the status page says who answers', async () => {
    const reloadedBefore = site.events.filter((e) => e.event === 'node.reloaded').length;
    site.kill('SIGHUP');
    await waitFor('both workers reloaded', () => {
      const reloaded = site.events.filter((e) => e.event === 'node.reloaded').slice(reloadedBefore);
      return new Set(reloaded.map((e) => e.worker)).size === 2;
    });
    const page = await fetchText(site.controlUrl(), { headers: { accept: 'text/html' } });
    assert.match(page.text, /worker 0 of 2 answers/);
    const metrics = await fetchText(`${site.controlUrl()}/metrics`);
    assert.match(metrics.text, /^west_workers 2$/m);
  });

  test('SIGTERM to the primary drains every worker; exit 0, no process left', async () => {
    const pids = [...workerPids(site).values()];
    assert.equal(pids.length, 2);
    assert.ok(pids.every(alive));
    site.kill('SIGTERM');
    assert.equal(await site.exited, 0);
    await waitFor('every worker gone', () => !pids.some(alive), 5000);
    assert.equal(site.events.filter((e) => e.event === 'node.stopped' && e.worker !== undefined).length, 2, 'both workers stopped cleanly');
  });
});

describe('workers: 1', () => {
  test('is one process, as before: no cluster, no worker field', async () => {
    const { hub, site, url } = await launch('one', 1);
    try {
      await peerWith(hub, 1);
      assert.equal((await fetchText(`${url}/px/one`)).status, 200);
      const state = await stateOf(site);
      assert.equal(state.pid, site.child.pid, 'the process started serves');
      assert.equal(state.workers, undefined);
      assert.equal(site.events.some((e) => e.event === 'node.workers' || e.worker !== undefined), false);
      const peer = (await stateOf(hub)).server?.peers[0];
      assert.equal(peer?.pool, undefined, 'one connection, no pool id');
    } finally {
      await site.stop();
      await hub.stop();
    }
  });
});

describe('a hub that cannot pool (west.wire: 2)', () => {
  test('gets worker 0 alone: the others stop, the node serves on', async () => {
    const { hub, site } = await launch('wire2', 2, { wire: 2 });
    try {
      const reduced = await site.waitForEvent('node.workers_reduced', undefined, 20_000);
      assert.equal(reduced.workers, 1);
      await waitFor('worker 1 gone', () => site.events.some((e) => e.event === 'node.stopped' && e.worker === 1), 10_000);
      await peerWith(hub, 1);
      // Worker 0's own port: node:cluster shares a port-0 listener only while some worker holds
      // it, so a worker 0 that bound after worker 1 had already gone got a port of its own.
      const bound = await site.waitForEvent('proxy.listening', (e) => e.worker === 0);
      const url = `http://127.0.0.1:${Number(bound.port)}`;
      for (let i = 0; i < 6; i++) {
        const r = await fetchText(`${url}/px/w2-${i}`);
        assert.equal(r.status, 200, r.text);
      }
      const late = site.events.filter((e) => e.event === 'access' && String(e.path).includes('w2-'));
      assert.ok(late.every((e) => e.worker === 0), 'only worker 0 serves');
      // The name never moved between the workers.
      assert.equal(hub.events.some((e) => e.event === 'tunnel.name_reclaimed'), false);
      assert.equal(await site.stop(), 0);
    } finally {
      await site.stop();
      await hub.stop();
    }
  });
});
