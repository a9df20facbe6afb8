/**
 * Two paths to one site (a diamond): A and D both dial the hubs B and C. A's requests to D take
 * the best route (through B: equal cost and hops, B sorts first); when B dies, its routes are
 * withdrawn at once and new requests go through C; when B comes back, the route through B
 * returns. Nothing hangs, nothing is corrupted; in-flight requests on the dead path fail.
 * Convergence is measured from the log's timestamps and printed.
 *
 *        B
 *      /   \
 *     A     D -> origin        (A and D dial B and C)
 *      \   /
 *        C
 *
 * And a triangle of tunnels, where every node is one hop from the others: no route loops back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { LogEvent } from '../helpers/west.js';
import { Mesh } from '../helpers/mesh.js';
import { fetchText, waitFor } from '../helpers/net.js';
import { originAndTempDir } from '../helpers/west.js';

const fixture = originAndTempDir('west-mesh-diamond-');

const time = (e: LogEvent): number => Date.parse(String(e.time));

describe('a diamond: two paths to one site', () => {
  let mesh: Mesh;
  let aUrl: string;

  before(async () => {
    const origin = `http://127.0.0.1:${fixture.origin.port}`;
    const hub = { server: true, west: { transit: { A: ['D'] } } };
    mesh = await Mesh.launch(fixture.dir, [
      { name: 'B', ...hub },
      { name: 'C', ...hub },
      {
        name: 'A', dials: ['B', 'C'], proxy: {
          'http://127.0.0.1:0': { en: 'D', '/d': { ou: `${origin}/d` } },
          'http://127.0.0.2:0': { en: 'D', via: ['C'], '/d': { ou: `${origin}/d` } },
          'http://127.0.0.3:0': { en: 'D', via: ['nowhere'], '/d': { ou: `${origin}/d` } },
        },
      },
      { name: 'D', dials: ['B', 'C'], west: { relays: ['B', 'C'], egress: { A: [origin] } } },
    ]);
    aUrl = mesh.proc('A').listenerUrl('http://127.0.0.1:0');
    await mesh.route('A', 'D', { via: 'B', hops: 2 });
    // D is also reachable through C (not the best route): wait until A has heard of it, so the
    // failover below measures the withdrawal, not a first advertisement.
    await waitFor('A to hear of D through C', () => mesh.proc('A').events.find((e) => e.event === 'mesh.route' && e.dest === 'C'));
  });

  after(async () => {
    await mesh?.stopAll();
  });

  test('a listener with "via": ["C"] goes through C although B is the best route; a via that is not a peer: 503', async () => {
    const opened = async (hub: string): Promise<number> =>
      (await mesh.state(hub)).server?.peers.find((p) => p.name === 'D')?.streamsOpened ?? -1;
    const [b0, c0] = [await opened('B'), await opened('C')];
    const r = await fetchText(`${mesh.proc('A').listenerUrl('http://127.0.0.2:0')}/d/echo`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([await opened('B') - b0, await opened('C') - c0], [0, 1], 'the stream was relayed by C, not B');
    const best = await fetchText(`${aUrl}/d/echo`);
    assert.equal(best.status, 200, best.text);
    assert.deepEqual([await opened('B') - b0, await opened('C') - c0], [1, 1], 'without via: B');
    const nowhere = await fetchText(`${mesh.proc('A').listenerUrl('http://127.0.0.3:0')}/d/echo`);
    assert.equal(nowhere.status, 503, nowhere.text);
    assert.match(nowhere.text, /pinned path/);
  });

  test('B dies mid-run: in-flight requests through it fail, new ones go through C within a second; B comes back and takes the route again', async () => {
    const r = await fetchText(`${aUrl}/d/echo`);
    assert.equal(r.status, 200, r.text);

    // A response in flight through B when it dies: it must end (cut), not hang.
    const inFlight = new Promise<string>((resolve) => {
      const req = http.get(`${aUrl}/d/stall`, { agent: false }, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(`ended ${res.statusCode}`));
        res.on('error', () => resolve('cut'));
        res.on('close', () => resolve(res.complete ? 'complete' : 'cut'));
      });
      req.on('error', () => resolve('cut'));
    });
    await waitFor('the stalled response to be on its way', () => fixture.origin.seen.find((s) => s.url.endsWith('/d/stall')));

    // Requests one after another, each bounded, across the failure.
    let stop = false;
    const results: { at: number; status: number | string }[] = [];
    const load = (async () => {
      while (!stop) {
        const at = Date.now();
        try {
          const res = await fetchText(`${aUrl}/d/echo`, { timeoutMs: 5000 });
          results.push({ at, status: res.status });
        } catch (err) {
          results.push({ at, status: (err as Error).message });
        }
      }
    })();
    await waitFor('some requests through B', () => results.filter((x) => x.status === 200).length >= 5);

    const killedAt = Date.now();
    mesh.proc('B').kill('SIGKILL');
    await mesh.proc('B').exited;
    assert.equal(await inFlight, 'cut', 'the response in flight through B is cut, not passed off as complete');
    const firstOk = await waitFor('a request through C after B died', () => results.find((x) => x.at > killedAt && x.status === 200), 5000);
    const switched = await mesh.proc('A').waitForEvent('mesh.route', (e) => e.dest === 'D' && e.via === 'C' && time(e) >= killedAt - 50);
    stop = true;
    await load;
    const failedAfterKill = results.filter((x) => x.at >= killedAt && x.status !== 200);
    assert.ok(failedAfterKill.every((x) => x.status === 502 || x.status === 503), `failures after the kill: ${JSON.stringify(failedAfterKill)}`);
    const downMs = time(switched) - killedAt;
    const okMs = firstOk.at - killedAt;
    console.log(`# convergence after B died: A's route to D moved to C ${downMs} ms after the kill; first 200 through C ${okMs} ms after it`);
    assert.ok(okMs < 1000, `first success through C ${okMs} ms after the kill`);

    // B comes back on the same port: A and D redial it, and the route through B returns.
    const b = await mesh.start('B');
    const startedAt = time(await b.waitForEvent('node.started'));
    const back = await mesh.proc('A').waitForEvent('mesh.route', (e) => e.dest === 'D' && e.via === 'B' && time(e) >= startedAt, 10_000);
    const upMs = time(back) - startedAt;
    console.log(`# convergence after B came back: A's route to D moved back to B ${upMs} ms after B started (A redials within reconnectMax, 0.5 s here)`);
    const again = await fetchText(`${aUrl}/d/echo`, { headers: { 'X-Request-Id': 'back-through-B' } });
    assert.equal(again.status, 200, again.text);
  });
});

describe('a triangle of tunnels', () => {
  let mesh: Mesh;

  before(async () => {
    const origin = `http://127.0.0.1:${fixture.origin.port}`;
    const open = { transit: { '*': ['*'] }, relays: ['*'], egress: { '*': [origin] } };
    const to = (peer: string): Record<string, Record<string, unknown>> => ({ 'http://127.0.0.1:0': { en: peer, '/t': { ou: `${origin}/t` } } });
    mesh = await Mesh.launch(fixture.dir, [
      { name: 'X', server: true, west: open, proxy: to('Z') },
      { name: 'Y', server: true, dials: ['X'], west: open, proxy: to('X') },
      { name: 'Z', dials: ['X', 'Y'], west: open, proxy: to('Y') },
    ]);
    for (const [n, others] of [['X', ['Y', 'Z']], ['Y', ['X', 'Z']], ['Z', ['X', 'Y']]] as const) {
      for (const o of others) await mesh.route(n, o, { hops: 1 });
    }
  });

  after(async () => {
    await mesh?.stopAll();
  });

  test('every node reaches the others directly; no path names the node that holds it', async () => {
    for (const n of ['X', 'Y', 'Z']) {
      const routes = (await mesh.state(n)).routes;
      assert.deepEqual(routes.map((r) => r.name).sort(), ['X', 'Y', 'Z'].filter((o) => o !== n));
      for (const r of routes) {
        assert.equal(r.hops, 1, `${n} -> ${r.name}`);
        assert.ok(!r.path.includes(n), `${n}'s route to ${r.name} does not loop: ${r.path.join(' ')}`);
      }
    }
  });

  test('requests go round the triangle, one hop each', async () => {
    for (const n of ['X', 'Y', 'Z']) {
      const r = await fetchText(`${mesh.proc(n).listenerUrl()}/t/echo`);
      assert.equal(r.status, 200, `${n}: ${r.text}`);
    }
  });
});
