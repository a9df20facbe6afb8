/**
 * A line of five nodes routed by name: A's listener names E ("en": "E"), four tunnels away,
 * and the middle nodes relay the stream frame by frame (no HTTP at B, C, D: no access or
 * perform line there). Transit is configured for A's streams to E only; the far end believes
 * the origin only from the relay it lists, and its egress sees A, not D. A raw tunnel client
 * that writes someone else's name in `from` gets nowhere.
 *
 *   A ==> B ==> C ==> D ==> E -> origin      (each arrow: the right node dials the left's server)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import WebSocket from 'ws';
import { encodeRoutesPayload } from '../../src/mesh/advert.js';
import { decodeMessage, encodeEnd, encodeOpen, encodeRoutes, type Frame, type OpenHead } from '../../src/tunnel/frame.js';
import { Mesh } from '../helpers/mesh.js';
import { fetchText, waitFor } from '../helpers/net.js';
import { patternSha256 } from '../helpers/origin.js';
import { originAndTempDir, runCli } from '../helpers/west.js';

const fixture = originAndTempDir('west-mesh-line-');

/** GET `url` and hash the body as it streams (nothing held whole). */
function download(url: string): Promise<{ status: number; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => { bytes += c.length; hash.update(c); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex') }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** POST `size` pattern bytes, streamed; the origin answers with their hash. */
function upload(url: string, size: number): Promise<{ status: number; text: string; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'Content-Length': size } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, sha256: hash.digest('hex') }));
    });
    req.on('error', reject);
    const block = Buffer.alloc(64 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = (i * 7) & 0xff;
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const chunk = block.subarray(0, Math.min(block.length, size - sent));
        sent += chunk.length;
        hash.update(chunk);
        if (!req.write(chunk)) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
  });
}

describe('a line of five nodes, routed by name', () => {
  let mesh: Mesh;
  let aUrl: string;
  let bUrl: string;

  before(async () => {
    const origin = `http://127.0.0.1:${fixture.origin.port}`;
    mesh = await Mesh.launch(fixture.dir, [
      // Each node learns the mesh from the client on its right (west.learn): by default a node
      // learns from a client of its own server only that client's name.
      { name: 'A', server: true, west: { learn: { B: ['*'] } }, proxy: {
        'http://127.0.0.1:0': { en: 'E', '/far': { ou: `${origin}/far` }, '/dead': { ou: 'http://127.0.0.1:1/x' } },
        // Pinned paths: each relay takes the next node off "via" and passes the rest on.
        'http://127.0.0.2:0': { en: 'E', via: ['B', 'C', 'D'], '/far': { ou: `${origin}/far` } },
        'http://127.0.0.3:0': { en: 'E', via: ['B', 'D'], '/far': { ou: `${origin}/far` } },
      } },
      { name: 'B', server: true, dials: ['A'], west: { transit: { A: ['E'] }, learn: { C: ['*'] } }, proxy: { 'http://127.0.0.1:0': { en: 'E', '/b': { ou: `${origin}/b` } } } },
      { name: 'C', server: true, dials: ['B'], west: { transit: { A: ['E'], R: ['E', 'nowhere'] }, relays: ['B'], learn: { D: ['*'] } } },
      { name: 'D', server: true, dials: ['C'], west: { transit: { A: ['E'], R: ['E'] }, relays: ['C'] } },
      { name: 'E', dials: ['D'], west: { relays: ['D'], egress: { A: [origin, 'http://127.0.0.1:1'] } } },
    ]);
    aUrl = mesh.proc('A').listenerUrl('http://127.0.0.1:0');
    bUrl = mesh.proc('B').listenerUrl();
    await mesh.route('A', 'E', { hops: 4 });
  });

  after(async () => {
    await mesh?.stopAll();
  });

  test('A has a route to every node, the path and the hop count visible in /state.json', async () => {
    const routes = (await mesh.state('A')).routes;
    assert.deepEqual(routes.map((r) => [r.name, r.nextHop, r.path.join(' '), r.hops]), [
      ['B', 'B', 'B', 1], ['C', 'B', 'B C', 2], ['D', 'B', 'B C D', 3], ['E', 'B', 'B C D E', 4],
    ]);
    const dump = await fetchText(mesh.proc('A').controlUrl());
    assert.match(dump.text, /--- proxy object ---[\s\S]*--- routes object ---\n\{\n\s+"B":\{/);
    const metrics = await fetchText(`${mesh.proc('A').controlUrl()}/metrics`);
    assert.match(metrics.text, /^west_routes 4$/m);
    const page = await fetchText(mesh.proc('A').controlUrl(), { headers: { Accept: 'text/html' } });
    assert.match(page.text, /Routes of the mesh[\s\S]*B → C → D → E/);
    const cli = await runCli(['state', mesh.proc('A').controlUrl()]);
    assert.match(cli.stdout, /\nroutes: 4\n[\s\S]*\n {2}E via B: B -> C -> D -> E \(4 hops, cost 4\)/);
    const tunnel = (await mesh.state('E')).tunnels[0];
    assert.equal(tunnel?.wire, 'west.v3');
  });

  test('a request to E is performed at E only, with A as its origin; the middle nodes parse no HTTP', async () => {
    const r = await fetchText(`${aUrl}/far/echo`, { headers: { 'X-Request-Id': 'line-1' } });
    assert.equal(r.status, 200, r.text);
    const perform = await mesh.proc('E').waitForEvent('perform', (e) => e.id === 'line-1');
    assert.equal(perform.peer, 'A', 'E judged egress by the origin A');
    for (const n of ['B', 'C', 'D']) {
      assert.equal(mesh.proc(n).events.filter((e) => (e.event === 'perform' || e.event === 'access') && e.id === 'line-1').length, 0, `no HTTP at ${n}`);
    }
    const seen = JSON.parse(r.text) as { headers: Record<string, string> };
    assert.equal(seen.headers.via?.split(',').length, 1, 'one west listener on the way (A)');
    // Four tunnels from A's listener to E: E counts the request under hops="4".
    const metrics = await fetchText(`${mesh.proc('E').controlUrl()}/metrics`);
    assert.match(metrics.text, /^west_requests_performed_total\{hops="4"\} [1-9]\d*$/m);
  });

  test('a pinned path through every middle node reaches E; one whose next node is not a peer of the relay: 503 no_route from B', async () => {
    const r = await fetchText(`${mesh.proc('A').listenerUrl('http://127.0.0.2:0')}/far/echo`, { headers: { 'X-Request-Id': 'pinned-1' } });
    assert.equal(r.status, 200, r.text);
    assert.equal((await mesh.proc('E').waitForEvent('perform', (e) => e.id === 'pinned-1')).peer, 'A');
    const bad = await fetchText(`${mesh.proc('A').listenerUrl('http://127.0.0.3:0')}/far/echo`);
    assert.equal(bad.status, 503, bad.text);
    assert.match(String(bad.headers['proxy-status']), /^"B"; error=destination_unavailable/);
    assert.match(bad.text, /not connected to D/);
  });

  test('100 MiB down and 100 MiB up through four relays (three middle nodes), hash-checked', async () => {
    const size = 100 * 1024 * 1024;
    const down = await download(`${aUrl}/far/bytes/${size}`);
    assert.equal(down.status, 200);
    assert.equal(down.bytes, size);
    assert.equal(down.sha256, patternSha256(size));
    const up = await upload(`${aUrl}/far/upload`, size);
    assert.equal(up.status, 200, up.text);
    const echo = JSON.parse(up.text) as { bodyBytes: number; sha256: string };
    assert.equal(echo.bodyBytes, size);
    assert.equal(echo.sha256, up.sha256);
  });

  test('a slow reader: each middle node holds about a window per stream: its RSS grows by under 64 MiB and stays under 200 MiB', async () => {
    const rss = (name: string): number => {
      const status = readFileSync(`/proc/${mesh.proc(name).child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    };
    const peak = new Map<string, number>();
    // RSS before: the 100 MiB each way of the test before leaves each heap as large as it grew.
    const before = new Map(['B', 'C', 'D'].map((n) => [n, rss(n)]));
    const sample = (): void => { for (const n of ['B', 'C', 'D']) peak.set(n, Math.max(peak.get(n) ?? 0, rss(n))); };
    const timer = setInterval(sample, 50);
    try {
      const size = 48 * 1024 * 1024;
      const got = await new Promise<{ bytes: number; sha256: string }>((resolve, reject) => {
        http.get(`${aUrl}/far/bytes/${size}`, { agent: false }, (res) => {
          const hash = createHash('sha256');
          let bytes = 0;
          // About 24 MiB/s: slower than four loopback hops can deliver, so every hop waits on its window.
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            hash.update(c);
            res.pause();
            setTimeout(() => res.resume(), Math.ceil(c.length / (24 * 1024)));
          });
          res.on('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
          res.on('error', reject);
        }).on('error', reject);
      });
      assert.equal(got.bytes, size);
      assert.equal(got.sha256, patternSha256(size));
    } finally {
      clearInterval(timer);
    }
    sample();
    const mib = (b: number): string => (b / 1024 / 1024).toFixed(0);
    console.log(`# peak RSS of the middle nodes during a slow 48 MiB download: ${[...peak].map(([n, b]) => `${n} ${mib(b)} MiB (${mib(before.get(n) ?? 0)} before)`).join(', ')}`);
    for (const [n, bytes] of peak) {
      assert.ok(bytes - (before.get(n) ?? 0) < 64 * 1024 * 1024, `${n}'s RSS grew from ${before.get(n)} to ${bytes} bytes`);
      assert.ok(bytes < 200 * 1024 * 1024, `${n}'s RSS peaked at ${bytes} bytes`);
    }
  });

  test('a failure at the far end names the far end', async () => {
    const r = await fetchText(`${aUrl}/dead`);
    assert.equal(r.status, 502, r.text);
    assert.match(String(r.headers['proxy-status']), /connection_refused/);
    assert.match(String(r.headers['proxy-status']), /E/);
    assert.match(r.text, /\bE\b/);
  });

  test('transit is refused where the config does not allow it: B\'s own streams to E stop at C (403)', async () => {
    const r = await fetchText(`${bUrl}/b/echo`);
    assert.equal(r.status, 403, r.text);
    assert.match(String(r.headers['proxy-status']), /http_request_denied/);
    assert.match(r.text, /\bC\b.*does not relay streams from B to E/);
    await mesh.proc('C').waitForEvent('mesh.transit_denied', (e) => e.from === undefined && e.to === 'E');
  });

  describe('a raw tunnel client of C\'s server', () => {
    let ws: WebSocket;
    const frames: Frame[] = [];
    let next = 1;

    before(async () => {
      ws = new WebSocket(mesh.serverUrl('C'), ['west.v3'], { headers: { 'X-West-Node': 'R' }, perMessageDeflate: false });
      ws.binaryType = 'nodebuffer';
      ws.on('message', (data: Buffer) => { for (const f of decodeMessage(data, 3)) frames.push(f); });
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
      assert.equal(ws.protocol, 'west.v3');
    });

    after(() => ws?.terminate());

    /** Opens a stream with `head` and waits for its RESPONSE or RESET. */
    async function open(head: Partial<OpenHead>): Promise<Frame> {
      const id = next;
      next += 2;
      const full: OpenHead = {
        kind: 'http', method: 'GET', url: `http://127.0.0.1:${fixture.origin.port}/far/raw`, headers: [], hops: 1, to: 'E', id: `raw-${id}`, ...head,
      };
      ws.send(Buffer.concat([encodeOpen(id, full, 3), encodeEnd(id)]));
      const deadline = Date.now() + 10_000;
      for (;;) {
        const f = frames.find((x) => x.stream === id && (x.type === 'response' || x.type === 'reset'));
        if (f) return f;
        if (Date.now() > deadline) throw new Error(`no answer on stream ${id}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }

    test('routes reach it: C advertises the mesh to a new client', async () => {
      await waitFor('a ROUTES frame from C on connect', () => frames.find((f) => f.type === 'routes'));
    });

    test('writing A as the origin gets nowhere: C takes relayed streams only from B (403 at C)', async () => {
      for (const to of ['E', '', 'C']) {
        const f = await open({ from: 'A', to });
        assert.equal(f.type, 'reset');
        if (f.type === 'reset') {
          assert.equal(f.info.code, 'transit_denied');
          assert.equal(f.info.node, 'C');
        }
      }
    });

    test('its own streams may transit C (west.transit names R), and E judges them as R\'s: egress refuses', async () => {
      const f = await open({});
      assert.equal(f.type, 'reset');
      if (f.type === 'reset') {
        assert.equal(f.info.code, 'egress_denied');
        assert.equal(f.info.node, 'E');
        assert.match(f.info.message, /does not let R reach/);
      }
    });

    test('the hop limit holds at a relay (508)', async () => {
      const f = await open({ hops: 8 });
      assert.equal(f.type, 'reset');
      if (f.type === 'reset') {
        assert.equal(f.info.code, 'hop_limit');
        assert.equal(f.info.node, 'C');
      }
    });

    test('a destination with no route: 503 no_route at C', async () => {
      const f = await open({ to: 'nowhere' });
      assert.equal(f.type, 'reset');
      if (f.type === 'reset') assert.equal(f.info.code, 'no_route');
    });

    test('routes it advertises are not learned (west.learn): it cannot attract E\'s streams with a shorter path, nor make up a node', async () => {
      const before = await mesh.route('C', 'E');
      assert.equal(before.nextHop, 'D');
      const announced = [{ dest: 'E', path: ['R', 'E'], cost: 0 }, { dest: 'nowhere', path: ['R', 'nowhere'], cost: 0 }];
      ws.send(encodeRoutes(encodeRoutesPayload({ announced, withdrawn: [] })));
      // Frames are handled in order: once the OPEN after the advert is answered, C has read it.
      const f = await open({ to: 'nowhere' });
      assert.equal(f.type, 'reset');
      if (f.type === 'reset') assert.equal(f.info.code, 'no_route');
      const routes = (await mesh.state('C')).routes;
      assert.equal(routes.find((r) => r.name === 'E')?.nextHop, 'D', 'the route to E still goes through D');
      assert.equal(routes.find((r) => r.name === 'nowhere'), undefined);
    });
  });
});
