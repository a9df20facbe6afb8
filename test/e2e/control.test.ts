/**
 * The control port end to end, on real `west` processes: `/metrics` (scrape, act, scrape
 * again: counters and histogram counts move by exactly what was done, with config-derived
 * labels), tunnels dropping and coming back, the original's text dump unchanged for clients
 * that do not ask for HTML, and the status page escaping operator- and peer-controlled values.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { at } from '../helpers/at.js';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { originAndTempDir, retryIfPortTaken, WestProcess, writeConfig } from '../helpers/west.js';

const G = 'ctl-G';
const L = 'ctl-L';

const fixture = originAndTempDir('west-control-');
const { origin } = fixture;

// ---- Prometheus text format, as much as the tests need ----

/** Series value by `name{a="x",b="y"}` with labels sorted by name. */
type Scrape = Map<string, number>;

function seriesKey(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return parts.length > 0 ? `${name}{${parts.join(',')}}` : name;
}

function parseScrape(text: string): Scrape {
  const out: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name = '', value = ''] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[name] = value.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    }
    out.set(seriesKey(m[1] ?? '', labels), Number(m[3]));
  }
  return out;
}

/** A series' value; 0 when absent (a counter not yet incremented). */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  return s.get(seriesKey(name, labels)) ?? 0;
}

function has(s: Scrape, name: string, labels: Record<string, string> = {}): boolean {
  return s.has(seriesKey(name, labels));
}

async function scrape(control: string): Promise<{ text: string; series: Scrape }> {
  const r = await fetchText(`${control}/metrics`);
  assert.equal(r.status, 200, r.text);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return { text: r.text, series: parseScrape(r.text) };
}

// ---- the two-node setup ----

interface Pair {
  gFile: string;
  lFile: string;
  /** L's listener key as written (the `listener` label). */
  lListener: string;
  server: string;
  /** L's listener and the two control ports, read from each node's log when it starts. */
  lUrl: string;
  gControl: string;
  lControl: string;
}

/**
 * G runs the tunnel server; L dials it and has an `ea` listener whose requests G performs.
 * Listeners and control ports are the OS's pick; the tunnel port is picked before, as L's
 * config names it and G binds it again when restarted.
 */
async function pair(tag: string): Promise<Pair> {
  const [sp, closed] = await Promise.all([freePort(), freePort()]);
  const server = `ws://127.0.0.1:${sp}`;
  const lListener = 'http://127.0.0.1:0';
  return {
    gFile: await writeConfig(fixture.dir, `${tag}-G.json`, { west: { nm: G, cp: '127.0.0.1:0' }, wsts: { sp: server } }),
    lFile: await writeConfig(fixture.dir, `${tag}-L.json`, {
      west: { nm: L, cp: '127.0.0.1:0' },
      proxy: {
        [lListener]: {
          ea: server,
          '/ok': { ou: `http://127.0.0.1:${origin.port}/atG` },
          // Nothing listens on `closed`: G's connection is refused, a 502 that happens at G.
          '/refused': { ou: `http://127.0.0.1:${closed}/x` },
        },
      },
    }),
    lListener,
    server,
    lUrl: '',
    gControl: '',
    lControl: '',
  };
}

/** Starts G (again) and reads its control port. */
async function startG(p: Pair): Promise<WestProcess> {
  const g = await WestProcess.start(p.gFile);
  p.gControl = g.controlUrl();
  return g;
}

/** Starts L (again) and reads its listener and control port. */
async function startL(p: Pair): Promise<WestProcess> {
  const l = await WestProcess.start(p.lFile);
  [p.lUrl, p.lControl] = [l.listenerUrl(), l.controlUrl()];
  return l;
}

describe('/metrics', () => {
  let p: Pair;
  let g: WestProcess;
  let l: WestProcess;

  before(async () => {
    ({ p, g } = await retryIfPortTaken(async () => {
      const p = await pair('metrics');
      return { p, g: await startG(p) };
    }));
    l = await startL(p);
    await waitFor('L to connect to G', async () => value((await scrape(p.lControl)).series, 'west_tunnel_up', { side: 'client', peer: G, url: p.server }) === 1);
  });

  after(async () => {
    await l.stop();
    await g.stop();
  });

  test('/readyz: 200 on both nodes once the tunnel is up', async () => {
    for (const control of [p.lControl, p.gControl]) {
      const r = await fetchText(`${control}/readyz`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(JSON.parse(r.text), { status: 'ready', name: control === p.lControl ? L : G, tunnelsDown: [], listenersDown: [] });
    }
  });

  test('process metrics under their standard names, no gauge ending in _total, the registry the node\'s own', async () => {
    const { text, series } = await scrape(p.lControl);
    assert.ok(has(series, 'process_cpu_user_seconds_total'), 'process_cpu_user_seconds_total');
    assert.ok(has(series, 'process_start_time_seconds'), 'process_start_time_seconds');
    assert.ok([...series.keys()].some((k) => k.startsWith('nodejs_heap_size_used_bytes')), 'nodejs_heap_size_used_bytes');
    assert.equal(value(series, 'west_node_info', { name: L, version: '0.1.0' }), 1);
    for (const line of text.split('\n')) {
      if (line && !line.startsWith('#')) assert.match(line, /^(west_|process_|nodejs_)/, line);
    }
    assert.doesNotMatch(text, /^west_(process|nodejs)_/m, 'no re-prefixed default metrics');
    const totalGauges = [...text.matchAll(/^# TYPE (\S+_total) gauge$/gm)].map((m) => m[1]);
    assert.deepEqual(totalGauges, [], 'a gauge must not end in _total');
  });

  test('requests move the counters and histogram counts by what was done, labelled from the config', async () => {
    const { series: before } = await scrape(p.lControl);
    const at = (path: string): string => `${p.lUrl}${path}`;
    const ok = { listener: p.lListener, mapping: '/ok' };
    const unmatched = { listener: p.lListener, mapping: '-' };
    const refused = { listener: p.lListener, mapping: '/refused' };

    let bytesOut = 0;
    for (const path of ['/ok/echo', '/ok/echo', '/ok/bytes/1000']) {
      const r = await fetchText(at(path));
      assert.equal(r.status, 200, r.text);
      bytesOut += r.body.length;
    }
    const posted = await fetchText(at('/ok/echo'), { method: 'POST', body: Buffer.alloc(300, 1) });
    assert.equal(posted.status, 200);
    assert.equal(JSON.parse(posted.text).bodyBytes, 300);
    bytesOut += posted.body.length;
    assert.equal((await fetchText(at('/nope/a-path-that-must-not-become-a-label'))).status, 404);
    assert.equal((await fetchText(at('/refused/x'))).status, 502);

    // The access event fires when the response closes, just after the client has it all.
    const after = await waitFor('the last requests to be counted', async () => {
      const { text, series } = await scrape(p.lControl);
      const done = value(series, 'west_request_duration_seconds_count', refused) - value(before, 'west_request_duration_seconds_count', refused) === 1 &&
        value(series, 'west_request_duration_seconds_count', unmatched) - value(before, 'west_request_duration_seconds_count', unmatched) === 1;
      return done ? { text, series } : undefined;
    });
    const delta = (name: string, labels: Record<string, string>): number => value(after.series, name, labels) - value(before, name, labels);

    assert.equal(delta('west_requests_total', { ...ok, status: '200' }), 4);
    assert.equal(delta('west_requests_total', { ...unmatched, status: '404' }), 1);
    assert.equal(delta('west_requests_total', { ...refused, status: '502' }), 1);
    assert.equal(delta('west_request_duration_seconds_count', ok), 4);
    assert.equal(delta('west_request_duration_seconds_count', unmatched), 1);
    assert.equal(delta('west_request_duration_seconds_count', refused), 1);
    assert.ok(delta('west_request_duration_seconds_sum', ok) > 0, 'durations add up');
    // Cumulative buckets: each at least the one below, +Inf equal to the count.
    let previous = 0;
    for (const le of ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '+Inf']) {
      const n = value(after.series, 'west_request_duration_seconds_bucket', { ...ok, le });
      assert.ok(n >= previous, `bucket le=${le}`);
      previous = n;
    }
    assert.equal(previous, value(after.series, 'west_request_duration_seconds_count', ok));

    assert.equal(delta('west_request_bytes_total', { ...ok, direction: 'in' }), 300);
    assert.equal(delta('west_request_bytes_total', { ...ok, direction: 'out' }), bytesOut);
    // West's own failures, each at the node where it happened: the 404 at L, the refusal at G.
    assert.equal(delta('west_request_failures_total', { listener: p.lListener, code: 'no_mapping', at: L }), 1);
    assert.equal(delta('west_request_failures_total', { listener: p.lListener, code: 'origin_refused', at: G }), 1);
    assert.equal(value(after.series, 'west_listener_in_flight', { listener: p.lListener }), 0);
    assert.ok(!after.text.includes('a-path-that-must-not-become-a-label'), 'request paths never become label values');
    // All six were served by the lean front (plain heads, bodies with a Content-Length).
    assert.equal(delta('west_listener_front_total', { listener: p.lListener, way: 'served' }), 6);
    assert.equal(delta('west_listener_front_total', { listener: p.lListener, way: 'handoff' }), 0);
    const state = JSON.parse((await fetchText(`${p.lControl}/state.json`)).text) as { listeners: { key: string; front?: { served: number; handoffs: number } }[] };
    const front = state.listeners.find((l) => l.key === p.lListener)?.front;
    assert.equal(front?.served, value(after.series, 'west_listener_front_total', { listener: p.lListener, way: 'served' }));

    // Streams close on both ends once the responses are done.
    await waitFor('streams to settle', async () => value((await scrape(p.lControl)).series, 'west_streams_in_flight') === 0);
  });

  test('tunnel gauges and counters on both sides; a dropped tunnel reads 0 and counts one disconnect', async () => {
    // peer is the name of the node at the other end on both sides; the client side adds the URL.
    const client = { side: 'client', peer: G, url: p.server };
    const server = { side: 'server', peer: L };
    const g0 = (await scrape(p.gControl)).series;
    const l0 = (await scrape(p.lControl)).series;
    assert.equal(value(g0, 'west_tunnel_up', server), 1);
    assert.equal(value(g0, 'west_tunnel_connects_total', server), 1);
    assert.equal(value(l0, 'west_tunnel_up', client), 1);
    assert.equal(value(l0, 'west_tunnel_connects_total', client), 1);
    assert.ok(has(l0, 'west_tunnel_disconnects_total', client), 'known tunnels start at 0');
    assert.ok(has(l0, 'west_tunnel_dial_failures_total', { url: p.server }), 'known tunnels start at 0');

    // The peer (L) goes away: G's server side reads 0 and counts one disconnect.
    await l.stop();
    const g1 = await waitFor('G to see L gone', async () => {
      const s = (await scrape(p.gControl)).series;
      return value(s, 'west_tunnel_up', server) === 0 && has(s, 'west_tunnel_up', server) ? s : undefined;
    });
    assert.equal(value(g1, 'west_tunnel_disconnects_total', server) - value(g0, 'west_tunnel_disconnects_total', server), 1);
    // The drop is listed among G's recent errors on its status page.
    const page = (await fetchText(`${p.gControl}/`, { headers: { Accept: 'text/html' } })).text;
    const errors = page.slice(page.indexOf('<section id="errors">'));
    const rows = errors.split('<tr>').map((row) => row.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' '));
    assert.ok(rows.some((row) => row.includes('tunnel down') && row.includes(` ${L} `)), `a tunnel-down row naming ${L}: ${rows.join('\n')}`);

    // L comes back: one more connect.
    l = await startL(p);
    const g2 = await waitFor('G to see L again', async () => {
      const s = (await scrape(p.gControl)).series;
      return value(s, 'west_tunnel_up', server) === 1 ? s : undefined;
    });
    assert.equal(value(g2, 'west_tunnel_connects_total', server), 2);
    await waitFor('L to be connected', async () => value((await scrape(p.lControl)).series, 'west_tunnel_up', client) === 1);
    const l1 = (await scrape(p.lControl)).series;

    // The server (G) goes away: L's client side reads 0, counts one disconnect, and its redials fail.
    await g.stop();
    const l2 = await waitFor('L to see G gone and a redial fail', async () => {
      const s = (await scrape(p.lControl)).series;
      return value(s, 'west_tunnel_up', client) === 0 && value(s, 'west_tunnel_dial_failures_total', { url: p.server }) >= 1 ? s : undefined;
    }, 15_000);
    assert.equal(value(l2, 'west_tunnel_disconnects_total', client) - value(l1, 'west_tunnel_disconnects_total', client), 1);

    // G comes back: L redials on its own.
    g = await startG(p);
    const l3 = await waitFor('L to reconnect', async () => {
      const s = (await scrape(p.lControl)).series;
      return value(s, 'west_tunnel_up', client) === 1 ? s : undefined;
    }, 20_000);
    assert.equal(value(l3, 'west_tunnel_connects_total', client) - value(l1, 'west_tunnel_connects_total', client), 1);
  });
});

/** The whole raw answer of a GET on a fresh connection (the dump is HTTP/1.0: it closes). */
function rawGet(port: number, path: string, headers: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('raw GET timed out')));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => { socket.destroy(); resolve(Buffer.concat(chunks).toString('utf8')); });
    socket.on('error', reject);
    socket.write([`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...headers, '', ''].join('\r\n'));
  });
}

/** Splits a raw HTTP answer into status line, header names in order, and body. */
function splitRaw(raw: string): { statusLine: string; headerNames: string[]; contentType: string; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  assert.ok(end > 0, 'a complete head');
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headerNames = lines.map((h) => h.slice(0, h.indexOf(':')));
  const contentType = lines.find((h) => /^content-type:/i.test(h))?.replace(/^[^:]+:\s*/, '') ?? '';
  return { statusLine: statusLine!, headerNames, contentType, body: raw.slice(end + 4) };
}

describe('text dump, status page and escaping', () => {
  const EVIL_NODE = '<script>alert(1)</script>';
  const EVIL_PEER = '<img src=x onerror=alert(2)>';
  let cpPort: number;
  let listener: string;
  let node: WestProcess;

  before(async () => {
    const file = await writeConfig(fixture.dir, 'evil.json', {
      west: { nm: EVIL_NODE, cp: '127.0.0.1:0' },
      wsts: { sp: 'ws://127.0.0.1:0' },
      // The peer never connects: requests fail with a message that quotes its name.
      proxy: { 'http://127.0.0.1:0': { en: EVIL_PEER, '/p': { ou: `http://127.0.0.1:${origin.port}/x` } } },
    });
    node = await WestProcess.start(file);
    cpPort = node.bound().control!;
    listener = node.listenerUrl();
  });

  after(async () => {
    await node.stop();
  });

  test('clients that do not ask for text/html get the original dump, exactly as before', async () => {
    const variants = [
      [],
      ['Accept: */*'],
      ['User-Agent: Wget/1.21.3', 'Accept: */*', 'Accept-Encoding: identity'],
      ['User-Agent: curl/8.5.0', 'Accept: */*'],
      ['Accept: application/json'],
      ['Accept: text/html;q=0, */*;q=0.1'],
    ];
    const bodies: string[] = [];
    for (const headers of variants) {
      const r = splitRaw(await rawGet(cpPort, '/', headers));
      assert.equal(r.statusLine, 'HTTP/1.0 200 OK', headers.join(' | '));
      assert.deepEqual(r.headerNames, ['Server', 'Date', 'Content-Type', 'Content-Length', 'Cache-Control']);
      assert.equal(r.contentType, 'text/plain; charset=utf-8');
      // Uptime is the one value that may tick between two requests.
      bodies.push(r.body.replace(/"uptimeS":\d+/, '"uptimeS":0'));
    }
    const first = at(bodies, 0, 'dump');
    const sections = [...first.matchAll(/^--- (\w+) object ---$/gm)].map((m) => m[1]);
    assert.deepEqual(sections, ['west', 'wsts', 'wstc', 'proxy']);
    assert.ok(first.includes(`"nm":${JSON.stringify(EVIL_NODE)}`), 'the dump is JSON text, not HTML: the name as written');
    for (const b of bodies) assert.equal(b, first);
    // Any other unknown path is the dump too.
    assert.equal(splitRaw(await rawGet(cpPort, '/anything/else', [])).body.replace(/"uptimeS":\d+/, '"uptimeS":0'), bodies[0]);
  });

  test('/healthz answers 200 while the peer is not connected; /readyz answers 503 and names the listener', async () => {
    const health = await fetchText(`http://127.0.0.1:${cpPort}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetchText(`http://127.0.0.1:${cpPort}/readyz`);
    assert.equal(ready.status, 503, ready.text);
    assert.match(String(ready.headers['content-type']), /^application\/json/);
    const body = JSON.parse(ready.text) as { status: string; listenersDown: string[]; tunnelsDown: string[] };
    assert.equal(body.status, 'not ready');
    assert.equal(body.listenersDown.length, 1);
    assert.deepEqual(body.tunnelsDown, []);
  });

  test('/state.json, /healthz and /metrics keep their own types whatever the Accept header', async () => {
    const html = { Accept: 'text/html' };
    const state = await fetchText(`http://127.0.0.1:${cpPort}/state.json`, { headers: html });
    assert.match(String(state.headers['content-type']), /^application\/json/);
    assert.equal((JSON.parse(state.text) as { name: string }).name, EVIL_NODE);
    const health = await fetchText(`http://127.0.0.1:${cpPort}/healthz`, { headers: html });
    assert.equal((JSON.parse(health.text) as { status: string }).status, 'ok');
    const metrics = await fetchText(`http://127.0.0.1:${cpPort}/metrics`, { headers: html });
    assert.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  });

  test('the status page escapes node names, peer names and error messages', async () => {
    const failed = await fetchText(`${listener}/p/a`);
    assert.equal(failed.status, 503);
    await waitFor('the failure to reach the page', async () => {
      const r = await fetchText(`http://127.0.0.1:${cpPort}/`, { headers: { Accept: 'text/html' } });
      return r.text.includes('peer_not_connected');
    });

    const r = await fetchText(`http://127.0.0.1:${cpPort}/some/unknown/path`, {
      headers: { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
    assert.equal(r.headers.vary, 'Accept');
    assert.match(r.text, /^<!doctype html>/);
    assert.match(r.text, /<meta http-equiv="refresh" content="5">/);
    assert.match(r.text, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    // No markup from values: the page has no script and no img element at all.
    assert.ok(!/<script/i.test(r.text), 'no <script> element');
    assert.ok(!/<img/i.test(r.text), 'no <img> element');
    assert.ok(r.text.includes('<h1 id="node-name">&lt;script&gt;alert(1)&lt;/script&gt;</h1>'), 'the node name, escaped');
    assert.ok(r.text.includes('&lt;img src=x onerror=alert(2)&gt;'), 'the peer name, escaped');
    // The error row: its message quotes the peer's name, escaped too.
    assert.ok(r.text.includes('peer &lt;img src=x onerror=alert(2)&gt; is not connected'), 'the error message, escaped');
    // No external asset: every src/href is local or a data: URL.
    for (const [, ref = ''] of r.text.matchAll(/\b(?:src|href)="([^"]*)"/g)) assert.match(ref, /^(\/|data:)/, ref);

    const head = await fetchText(`http://127.0.0.1:${cpPort}/`, { method: 'HEAD', headers: { Accept: 'text/html' } });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-type'], 'text/html; charset=utf-8');
  });
});

describe('west.cpToken: a bearer token for scripts, HTTP Basic for browsers', () => {
  const TOKEN = 'cp-secret-4711';
  let control: string;
  let node: WestProcess;

  before(async () => {
    const file = await writeConfig(fixture.dir, 'token.json', { west: { nm: 'tokened', cp: '127.0.0.1:0', cpToken: TOKEN } });
    node = await WestProcess.start(file);
    control = node.controlUrl();
  });

  after(async () => {
    await node.stop();
  });

  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const paths = ['/', '/state.json', '/metrics', '/healthz', '/readyz'];

  test('without credentials, a browser and a script both get 401 with a Basic and a Bearer challenge', async () => {
    for (const accept of ['text/html,application/xhtml+xml,*/*;q=0.8', '*/*']) {
      const r = await fetchText(`${control}/`, { headers: { Accept: accept } });
      assert.equal(r.status, 401);
      const challenge = String(r.headers['www-authenticate']);
      assert.match(challenge, /Basic realm="west"/, challenge);
      assert.match(challenge, /Bearer realm="west"/, challenge);
    }
  });

  test('Basic with any user name and the token as password opens every path; the page too', async () => {
    for (const p of paths) {
      const r = await fetchText(`${control}${p}`, { headers: { Authorization: basic('anyone', TOKEN) } });
      assert.equal(r.status, 200, `${p}: ${r.text}`);
    }
    const page = await fetchText(`${control}/`, { headers: { Authorization: basic('', TOKEN), Accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const bearer = await fetchText(`${control}/state.json`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(bearer.status, 200);
  });

  test('Basic with a wrong password, or the token as user name, is refused', async () => {
    for (const auth of [basic('anyone', `${TOKEN}x`), basic(TOKEN, ''), `Basic ${Buffer.from(TOKEN).toString('base64')}`]) {
      for (const p of paths) {
        const r = await fetchText(`${control}${p}`, { headers: { Authorization: auth } });
        assert.equal(r.status, 401, `${p} with ${auth}`);
      }
    }
  });
});
