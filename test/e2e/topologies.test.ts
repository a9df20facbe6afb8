/**
 * The four sample topologies (sample/case1..case4), each run as real `west` processes on free
 * ports against a real origin: request semantics through the whole chain (path remainder and
 * query, every method, bodies, origin errors unchanged, forwarding headers) and the control
 * port of every node.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { at, entry } from '../helpers/at.js';
import { fetchText } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { startSamples, stopAll, tempDir, type LogEvent, type WestProcess } from '../helpers/west.js';

/** A tunnel of the topology: which node runs the server and which dials it. */
interface SampleTunnel {
  server: string;
  client: string;
}

interface Topology {
  name: string;
  /** Sample files, tunnel servers first so clients connect on their first dial. */
  files: string[];
  /** The node the test client talks to, its listener port and mapping path (sample values). */
  entry: { file: string; port: number; path: string };
  /** The origin's sample port and the path the last hop performs. */
  origin: { port: number; path: string };
  /** West listeners a request passes, in order (sample ports). */
  listeners: number[];
  tunnels: SampleTunnel[];
  /** Tunnels whose server node names the client in an `en` listener. */
  enPeers: number;
}

const TOPOLOGIES: Topology[] = [
  {
    name: 'case1: client at L:9911/px -> G performs :9921/x',
    files: ['case1/G.json', 'case1/L.json'],
    entry: { file: 'case1/L.json', port: 9911, path: '/px' },
    origin: { port: 9921, path: '/x' },
    listeners: [9911],
    tunnels: [{ server: 'case1/G.json', client: 'case1/L.json' }],
    enPeers: 0,
  },
  {
    name: 'case2: client at G:9931/pa -> L performs :9941/a',
    files: ['case2/G.json', 'case2/L.json'],
    entry: { file: 'case2/G.json', port: 9931, path: '/pa' },
    origin: { port: 9941, path: '/a' },
    listeners: [9931],
    tunnels: [{ server: 'case2/G.json', client: 'case2/L.json' }],
    enPeers: 1,
  },
  {
    name: 'case3: client at L:9951/bx -> G :9961/by -> L2 performs :9971/b',
    files: ['case3/G.json', 'case3/L.json', 'case3/L2.json'],
    entry: { file: 'case3/L.json', port: 9951, path: '/bx' },
    origin: { port: 9971, path: '/b' },
    listeners: [9951, 9961],
    tunnels: [{ server: 'case3/G.json', client: 'case3/L.json' }, { server: 'case3/G.json', client: 'case3/L2.json' }],
    enPeers: 1,
  },
  {
    name: 'case4: client at G:9981/baz -> L :9982/ba -> L2 performs :9983/a',
    files: ['case4/G.json', 'case4/L.json', 'case4/L2.json'],
    entry: { file: 'case4/G.json', port: 9981, path: '/baz' },
    origin: { port: 9983, path: '/a' },
    listeners: [9981, 9982],
    tunnels: [{ server: 'case4/G.json', client: 'case4/L.json' }, { server: 'case4/L.json', client: 'case4/L2.json' }],
    enPeers: 2,
  },
];

interface RawNodeConfig {
  west: { nm: string; cp?: string };
  wsts?: { sp?: string };
  wstc?: Record<string, unknown>;
  proxy?: Record<string, Record<string, unknown>>;
}

interface EchoReply {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
  bodyBytes: number;
  sha256: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A name as nodes compare them: without a ws:// prefix or trailing slash. */
function bare(name: string): string {
  return name.replace(/^wss?:\/\//i, '').replace(/\/+$/, '');
}

function portOf(endpoint: string): number {
  return Number(/:(\d+)\/?$/.exec(endpoint)![1]);
}

/** Splits the control port's text dump into its sections, in order, each parsed. */
function parseDump(text: string): { name: string; body: string; json: Record<string, Json> }[] {
  const parts = text.split(/^--- (\w+) object ---\n/m);
  assert.equal(parts[0], '', `the dump starts with a section header, got ${JSON.stringify(text.slice(0, 60))}`);
  const out = [];
  for (let i = 1; i < parts.length; i += 2) {
    const name = at(parts, i);
    const body = at(parts, i + 1);
    out.push({ name, body, json: JSON.parse(body) as Record<string, Json> });
  }
  return out;
}

/** Asserts every object in `value` lists its keys in sorted order (as Python's sort_keys). */
function assertSortedKeys(value: Json, where: string): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => assertSortedKeys(v, `${where}[${i}]`));
  } else if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    assert.deepEqual(keys, [...keys].sort(), `keys of ${where} are sorted`);
    for (const [k, v] of Object.entries(value)) assertSortedKeys(v, `${where}.${k}`);
  }
}

for (const topo of TOPOLOGIES) {
  describe(topo.name, () => {
    const origin = new Origin();
    const nodes = new Map<string, WestProcess>();
    const configs = new Map<string, RawNodeConfig>();
    /** The `tunnel.client_connected` event the server logged for each tunnel (by client file). */
    const accepted = new Map<string, LogEvent>();
    let ports = new Map<number, number>();
    let cleanup: () => Promise<void> = async () => {};
    let entryUrl = '';

    const port = (sample: number): number => ports.get(sample)!;
    const node = (file: string): WestProcess => nodes.get(file)!;
    const nameOf = (file: string): string => configs.get(file)!.west.nm;
    const controlUrl = (file: string): string => `http://127.0.0.1:${portOf(configs.get(file)!.west.cp!)}`;
    const echo = (text: string): EchoReply => JSON.parse(text) as EchoReply;

    before(async () => {
      const tmp = await tempDir();
      cleanup = tmp.cleanup;
      const started = await startSamples(tmp.dir, topo.files, { server: origin, samplePort: topo.origin.port });
      ports = started.ports;
      for (const f of topo.files) configs.set(f, JSON.parse(await readFile(entry(started.paths, f), 'utf8')) as RawNodeConfig);
      for (const [f, n] of started.nodes) nodes.set(f, n);
      for (const t of topo.tunnels) {
        await node(t.client).waitForEvent('tunnel.connected');
        accepted.set(t.client, await node(t.server).waitForEvent('tunnel.client_connected',
          (e) => bare(String(e.peer)) === bare(nameOf(t.client))));
      }
      entryUrl = `http://127.0.0.1:${port(topo.entry.port)}${topo.entry.path}`;
    });

    after(async () => {
      await stopAll();
      await origin.close();
      await cleanup();
    });

    it('GET carries the path remainder and the query string to the origin', async () => {
      const res = await fetchText(`${entryUrl}/a/b?q=1&r=two`);
      assert.equal(res.status, 200, res.text);
      const seen = echo(res.text);
      assert.equal(seen.method, 'GET');
      assert.equal(seen.url, `${topo.origin.path}/a/b?q=1&r=two`);

      const exact = await fetchText(`${entryUrl}?only=query`);
      assert.equal(exact.status, 200, exact.text);
      assert.equal(echo(exact.text).url, `${topo.origin.path}?only=query`);
    });

    it('POST streams a body to the origin unchanged', async () => {
      const body = randomBytes(300 * 1024);
      const res = await fetchText(`${entryUrl}/upload`, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' } });
      assert.equal(res.status, 200, res.text);
      const seen = echo(res.text);
      assert.equal(seen.method, 'POST');
      assert.equal(seen.bodyBytes, body.length);
      assert.equal(seen.sha256, createHash('sha256').update(body).digest('hex'));
      assert.equal(seen.headers['content-type'], 'application/octet-stream');
    });

    it('HEAD answers the status and headers without a body', async () => {
      const res = await fetchText(`${entryUrl}/head-check`, { method: 'HEAD' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'application/json');
      assert.ok(Number(res.headers['content-length']) > 0, `content-length ${res.headers['content-length']}`);
      assert.equal(res.body.length, 0);
      const seen = origin.seen.find((s) => s.url === `${topo.origin.path}/head-check`);
      assert.equal(seen?.method, 'HEAD');
    });

    it('PUT and DELETE reach the origin with their own method', async () => {
      const put = await fetchText(`${entryUrl}/item/7`, { method: 'PUT', body: 'new value' });
      assert.equal(put.status, 200, put.text);
      assert.equal(echo(put.text).method, 'PUT');
      assert.equal(echo(put.text).url, `${topo.origin.path}/item/7`);
      assert.equal(echo(put.text).sha256, createHash('sha256').update('new value').digest('hex'));

      const del = await fetchText(`${entryUrl}/item/7`, { method: 'DELETE' });
      assert.equal(del.status, 200, del.text);
      assert.equal(echo(del.text).method, 'DELETE');
      assert.equal(echo(del.text).url, `${topo.origin.path}/item/7`);
    });

    it('origin 500 and 404 come back unchanged', async () => {
      for (const code of [500, 404]) {
        const res = await fetchText(`${entryUrl}/status/${code}`);
        assert.equal(res.status, code);
        assert.equal(res.text, `status ${code}`);
        assert.equal(res.headers['x-origin'], 'yes');
        assert.equal(res.headers['content-type'], 'text/plain');
        assert.equal(res.headers['proxy-status'], undefined, 'an origin answer is not a proxy failure');
      }
    });

    it('an unmapped path answers 404 with Proxy-Status and a body naming the node', async () => {
      const listener = `http://127.0.0.1:${port(topo.entry.port)}`;
      // `/px` maps `/px/...` but never `/pxy`: segment-prefix matching only.
      for (const path of ['/no/such/mapping', `${topo.entry.path}y`]) {
        const before = origin.seen.length;
        const res = await fetchText(`${listener}${path}`);
        assert.equal(res.status, 404, `${path}: ${res.text}`);
        assert.match(String(res.headers['proxy-status']), /;\s*error=[a-z_]+/, 'an RFC 9209 Proxy-Status with an error type');
        assert.ok(res.text.includes(bare(nameOf(topo.entry.file))), `body names ${nameOf(topo.entry.file)}: ${res.text}`);
        assert.equal(origin.seen.length, before, 'nothing reached the origin');
      }
    });

    it('the origin sees Host, Via and X-Forwarded-* of the chain', async () => {
      const res = await fetchText(`${entryUrl}/headers`, { headers: { Host: 'client.example:8080' } });
      assert.equal(res.status, 200, res.text);
      const h = echo(res.text).headers;
      assert.equal(h.host, `127.0.0.1:${port(topo.origin.port)}`, 'Host is the outgoing URL\'s host:port');
      const via = (h.via ?? '').split(',').map((v) => v.trim());
      assert.equal(via.length, topo.listeners.length, `one Via entry per west listener: ${h.via}`);
      for (const v of via) assert.match(v, /^1\.1 \S+/);
      assert.equal(new Set(via).size, via.length, 'Via entries are distinct');
      assert.equal(h['x-forwarded-for'], topo.listeners.map(() => '127.0.0.1').join(', '));
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], 'client.example:8080', 'the first hop\'s X-Forwarded-Host wins');
    });

    it('every node\'s control port dumps its state in the original layout', async () => {
      for (const f of topo.files) {
        const res = await fetchText(`${controlUrl(f)}/`);
        assert.equal(res.status, 200);
        assert.ok(res.text.startsWith('--- west object ---\n'), `${f}: ${res.text.slice(0, 80)}`);
        const sections = parseDump(res.text);
        assert.deepEqual(sections.map((s) => s.name), ['west', 'wsts', 'wstc', 'proxy'], f);
        for (const s of sections) {
          // Python's json.dumps(indent=4) writes an empty object as `{}`, anything else indented.
          assert.match(s.body, /^(\{\}|\{\n {4}"[^]*\n\})\n$/, `${f} ${s.name}: indented JSON`);
          assertSortedKeys(s.json, `${f} ${s.name}`);
        }
        const [west, wsts, wstc, proxy] = sections.map<Record<string, Json>>((s) => s.json);
        const cfg = configs.get(f)!;
        assert.ok('addr' in west!, `${f} west has addr`);
        assert.equal(west.port, portOf(cfg.west.cp!), `${f} west port`);
        assert.equal(west.nm, cfg.west.nm);
        if (cfg.wsts?.sp) {
          assert.ok('addr' in wsts!, `${f} wsts has addr`);
          assert.equal(wsts.port, portOf(cfg.wsts.sp), `${f} wsts port`);
        }
        for (const key of Object.keys(cfg.proxy ?? {})) {
          const l = proxy![key] as Record<string, Json> | undefined;
          assert.ok(l, `${f} proxy lists ${key}`);
          assert.ok('addr' in l, `${f} proxy ${key} has addr`);
          assert.equal(l.port, portOf(key), `${f} proxy ${key} port`);
          for (const k of ['ea', 'en'] as const) if (entry(cfg.proxy!, key)[k] !== undefined) assert.equal(l[k], entry(cfg.proxy!, key)[k]);
        }
        // Every server URL this node dials (wstc keys and `ea`s) is listed under wstc.
        const dialed = [...Object.keys(cfg.wstc ?? {}), ...Object.values(cfg.proxy ?? {}).map((l) => l.ea).filter((u): u is string => typeof u === 'string')];
        for (const url of dialed) assert.ok(url in wstc!, `${f} wstc lists ${url}: ${JSON.stringify(wstc)}`);
      }
    });

    it('a tunnel server lists its connected `en` peer under wstc with "so": [address, port]', async () => {
      let checked = 0;
      for (const tunnel of topo.tunnels) {
        const cfg = configs.get(tunnel.server)!;
        const en = Object.values(cfg.proxy ?? {}).map((l) => l.en).find((n) => typeof n === 'string' && bare(n) === bare(nameOf(tunnel.client)));
        if (typeof en !== 'string') continue;
        const res = await fetchText(`${controlUrl(tunnel.server)}/`);
        const wstc = parseDump(res.text).find((s) => s.name === 'wstc')!.json;
        const entry = wstc[en] as Record<string, Json> | undefined;
        assert.ok(entry, `${tunnel.server} wstc lists ${en}: ${JSON.stringify(wstc)}`);
        const ev = accepted.get(tunnel.client)!;
        assert.deepEqual(entry.so, [ev.address, ev.port], `${tunnel.server} wstc[${en}].so`);
        assert.equal(entry.so[0], '127.0.0.1');
        checked++;
      }
      // case1 has none: its server performs the client's `ea` requests itself.
      assert.equal(checked, topo.enPeers);
    });

    it('/state.json shows the tunnels connected and /healthz answers 200', async () => {
      for (const tunnel of topo.tunnels) {
        const server = JSON.parse((await fetchText(`${controlUrl(tunnel.server)}/state.json`)).text) as {
          server: { peers: { name: string }[] };
          listeners: { key: string; connected: boolean }[];
        };
        assert.ok(server.server.peers.some((p) => bare(p.name) === bare(nameOf(tunnel.client))),
          `${tunnel.server} state.json lists ${nameOf(tunnel.client)} among ${JSON.stringify(server.server.peers)}`);

        const client = JSON.parse((await fetchText(`${controlUrl(tunnel.client)}/state.json`)).text) as {
          tunnels: { url: string; connected: boolean }[];
        };
        const url = configs.get(tunnel.server)!.wsts!.sp!;
        const t = client.tunnels.find((x) => x.url === url);
        assert.equal(t?.connected, true, `${tunnel.client} tunnel to ${url}: ${JSON.stringify(client.tunnels)}`);
      }
      for (const f of topo.files) {
        const state = JSON.parse((await fetchText(`${controlUrl(f)}/state.json`)).text) as { listeners: { key: string; connected: boolean }[] };
        for (const l of state.listeners) assert.equal(l.connected, true, `${f} listener ${l.key} is connected`);
        const health = await fetchText(`${controlUrl(f)}/healthz`);
        assert.equal(health.status, 200, `${f} /healthz: ${health.text}`);
      }
    });
  });
}
