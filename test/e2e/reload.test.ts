/**
 * SIGHUP reloads (issue 4, item 7; doc/operations.md) on a live node: L of a pair (L dials G
 * and has an `ea` listener). Mappings and listeners added or removed take effect without
 * dropping the tunnel (its connect count and connected-since in /state.json stay the same, no
 * disconnect is logged); a config that does not load, or cannot be applied, is rejected with
 * its problems and the running config keeps serving; changed tuning keys apply to listeners
 * and tunnel sessions created after the reload.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, rmdir } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { at, entry } from '../helpers/at.js';
import { Pair, SHORT_TIMERS, stateOf, until200, watchExchange, within, type NodeStateView } from '../helpers/chain.js';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { Origin, patternSha256 } from '../helpers/origin.js';
import { issue, makeCa, type CertAuthority } from '../helpers/tls.js';
import { retryIfPortTaken, stopAll, tempDir, WestProcess, type LogEvent } from '../helpers/west.js';

let origin: Origin;
let cleanup: () => Promise<void>;
let p: Pair;
let g: WestProcess;
let l: WestProcess;
/** L's `ea` listener, without a mapping path. */
let lBase: string;
let lKey: string;
/** The tunnel L-G as first connected. */
let tunnelAtStart: NodeStateView['tunnels'][number];
let dir: string;
let ca: CertAuthority;

before(async () => {
  origin = new Origin();
  await origin.listen();
  ({ dir, cleanup } = await tempDir('west-reload-'));
  // A removed listener drains its requests for up to drainTimeout before it closes.
  ({ pair: p, g, l } = await Pair.launch(() => ({ dir, tag: 'reload', originPort: origin.port, lWest: { ...SHORT_TIMERS, drainTimeout: 20 } })));
  await until200(`${p.lUrl}/warm/echo`, 10_000);
  lBase = new URL(p.lUrl).origin;
  lKey = at(Object.keys(p.configs.L.proxy!), 0);
  tunnelAtStart = at((await stateOf(p.control.L)).tunnels, 0);
  ca = await makeCa(dir, 'reload test CA');
});

after(async () => {
  await stopAll();
  await origin.close();
  await cleanup();
});

const originUrl = (path: string): string => `http://127.0.0.1:${origin.port}${path}`;

const VERDICTS = new Set(['node.reloaded', 'node.reload_rejected', 'node.reload_failed']);
const verdicts = (): LogEvent[] => l.events.filter((e) => VERDICTS.has(e.event));
const count = (event: string): number => l.events.filter((e) => e.event === event).length;

/** Sends SIGHUP to L and waits for its verdict, which must be `expected` when given. */
async function hup(expected?: 'node.reloaded' | 'node.reload_rejected' | 'node.reload_failed'): Promise<LogEvent> {
  const before = verdicts().length;
  l.kill('SIGHUP');
  const verdict = await waitFor('L to reload or reject its config', () => verdicts()[before], 10_000);
  if (expected) assert.equal(verdict.event, expected, JSON.stringify(verdict));
  return verdict;
}

/**
 * Reloads L with a listener added on a port picked now (the config must name it). Should the
 * port be taken before L binds it, the reload is rejected; then it is tried on another port.
 * `edit` adds the listener for `key` to a copy of L's config and returns the text to write.
 */
async function reloadWithNewListener(edit: (key: string) => string): Promise<{ key: string; port: number; verdict: LogEvent }> {
  return retryIfPortTaken(async () => {
    const port = await freePort();
    const key = `http://127.0.0.1:${port}`;
    await p.rewrite('L', edit(key));
    const verdict = await hup();
    if (verdict.event !== 'node.reloaded') throw new Error(`reload rejected: ${String(verdict.error)}`);
    return { key, port, verdict };
  });
}

/** The tunnel L-G is the one from the start: never dropped, never redialled. */
async function assertTunnelKept(): Promise<void> {
  const t = at((await stateOf(p.control.L)).tunnels, 0);
  assert.equal(t.connected, true);
  assert.equal(t.connects, tunnelAtStart.connects, 'the tunnel was redialled');
  assert.equal(t.since, tunnelAtStart.since, 'the tunnel was replaced');
  assert.equal(l.events.filter((e) => e.event === 'tunnel.disconnected').length, 0, 'L logged a tunnel disconnect');
  assert.equal(g.events.filter((e) => e.event === 'tunnel.client_disconnected').length, 0, 'G saw L disconnect');
}

/** What the node serves right now on L's listener. */
async function get(path: string, base = lBase): Promise<{ status: number; url?: string; text: string }> {
  const r = await fetchText(`${base}${path}`);
  return { status: r.status, text: r.text, url: r.status === 200 ? (JSON.parse(r.text) as { url: string }).url : undefined };
}

/** A GET over TLS that trusts only `ca`; says which certificate the server showed. */
function tlsGet(url: string, ca: Buffer): Promise<{ status: number; cn: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 5000 }, (res) => {
      const cert = (res.socket as tls.TLSSocket).getPeerCertificate();
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, cn: String(cert.subject.CN), fingerprint: cert.fingerprint256 }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within 5 s`)));
    req.on('error', reject);
  });
}

/** One TLS connection kept open, for requests one after the other (keep-alive). */
async function keptTlsConnection(port: number, caPem: Buffer): Promise<{ get(path: string): Promise<string>; cn(): string; close(): void }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: caPem });
  socket.on('error', () => { /* closed by the test */ });
  await once(socket, 'secureConnect');
  let buffered = '';
  socket.setEncoding('latin1').on('data', (c: string) => { buffered += c; });
  return {
    async get(path) {
      buffered = '';
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      return waitFor('a whole answer on the kept connection', () => {
        const m = /\r\ncontent-length: (\d+)\r\n/i.exec(buffered);
        const end = buffered.indexOf('\r\n\r\n');
        return m && end >= 0 && buffered.length >= end + 4 + Number(m[1]) ? buffered : undefined;
      }, 10_000);
    },
    cn: () => String(socket.getPeerCertificate().subject.CN),
    close: () => socket.destroy(),
  };
}

describe('SIGHUP on L', { concurrency: 1 }, () => {
  test('(a) a mapping added to an existing listener serves at once, and the tunnel is not dropped', async () => {
    assert.equal((await get('/added/echo')).status, 404);
    entry(p.configs.L.proxy!, lKey)['/added'] = { ou: originUrl('/added-target') };
    await p.rewrite('L');
    const verdict = await hup('node.reloaded');
    assert.deepEqual(verdict.listenersUpdated, [lKey]);
    assert.equal((await get('/added/echo')).url, '/added-target/echo');
    assert.equal((await get('/px/still/echo')).url, '/atG/still/echo');
    await assertTunnelKept();
  });

  test('(a2) a changed outgoing URL of a kept mapping applies to the next request', async () => {
    entry(p.configs.L.proxy!, lKey)['/added'] = { ou: originUrl('/changed-target') };
    await p.rewrite('L');
    await hup('node.reloaded');
    assert.equal((await get('/added/echo')).url, '/changed-target/echo');
    await assertTunnelKept();
  });

  let newPort: number;
  let newKey: string;

  test('(b) a listener added on a new port starts serving', async () => {
    const added = await reloadWithNewListener((key) => {
      p.configs.L.proxy![key] = { ea: p.server, '/n': { ou: originUrl('/new-listener') } };
      const text = JSON.stringify(p.configs.L, null, 2);
      delete p.configs.L.proxy![key]; // kept only once the reload took it
      return text;
    });
    ({ key: newKey, port: newPort } = added);
    p.configs.L.proxy![newKey] = { ea: p.server, '/n': { ou: originUrl('/new-listener') } };
    const { verdict } = added;
    assert.deepEqual(verdict.listenersAdded, [newKey]);
    assert.equal((await get('/n/echo', newKey)).url, '/new-listener/echo');
    const listeners = (await stateOf(p.control.L)).listeners.map((x) => x.key).sort();
    assert.deepEqual(listeners, [lKey, newKey].sort());
    await assertTunnelKept();
  });

  test('(c) a removed listener stops accepting; a transfer it had in flight still completes', async () => {
    const size = 8 * 1024 * 1024;
    const inFlight = watchExchange(`${newKey}/n/removed-inflight/bytes/${size}`);
    const res = await within(5000, 'head of the in-flight transfer', inFlight.head);
    assert.equal(res.statusCode, 200);
    res.pause(); // held open across the reload

    delete p.configs.L.proxy![newKey];
    await p.rewrite('L');
    const verdict = await hup('node.reloaded');
    assert.deepEqual(verdict.listenersRemoved, [`127.0.0.1:${newPort}`]);
    await waitFor(`port ${newPort} to refuse connections`, () => new Promise<boolean>((resolve) => {
      const s = net.connect(newPort, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(false); });
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    }), 5000);

    res.resume();
    const end = await within(15_000, 'the in-flight transfer to finish', inFlight.ending);
    assert.equal(end.kind, 'complete', JSON.stringify(end));
    if (end.kind === 'complete') assert.equal(end.sha256, patternSha256(size));
    assert.equal((await get('/px/after-remove/echo')).url, '/atG/after-remove/echo');
    assert.deepEqual((await stateOf(p.control.L)).listeners.map((x) => x.key), [lKey]);
    await assertTunnelKept();
  });

  test('(d) a config with a syntax error is rejected with its line and column; the old config keeps serving', async () => {
    const good = JSON.stringify(p.configs.L, null, 2);
    await p.rewrite('L', good.replace(/\n}\s*$/, ',\n}\n').replace('"west": {', '"west": {\n    "nm": "renamed-by-a-broken-file",'));
    const verdict = await hup('node.reload_rejected');
    const problems = JSON.stringify(verdict.problems ?? verdict.error);
    assert.match(problems, /line \d+, column \d+/, problems);
    assert.equal((await get('/added/echo')).url, '/changed-target/echo');
    assert.equal((await get('/px/after-bad/echo')).url, '/atG/after-bad/echo');
    await assertTunnelKept();
    await p.rewrite('L');
  });

  test('(d2) a config that parses but is invalid is rejected with every problem and its JSON path', async () => {
    const bad = structuredClone(p.configs.L);
    Object.assign(bad.west, { heartbeet: 1 });
    entry(bad.proxy!, lKey)['/added'] = { ou: 'ftp://nowhere/' };
    await p.rewrite('L', JSON.stringify(bad, null, 2));
    const verdict = await hup('node.reload_rejected');
    const problems = (verdict.problems ?? []) as string[];
    assert.ok(problems.some((x) => x.includes('west.heartbeet')), JSON.stringify(problems));
    assert.ok(problems.some((x) => x.includes('ftp://')), JSON.stringify(problems));
    assert.equal((await get('/added/echo')).url, '/changed-target/echo');
    await assertTunnelKept();
    await p.rewrite('L');
  });

  test('(e) a changed west.nm is rejected; the old config keeps running', async () => {
    const renamed = structuredClone(p.configs.L);
    renamed.west.nm = 'reload-L-renamed';
    await p.rewrite('L', JSON.stringify(renamed, null, 2));
    const verdict = await hup('node.reload_rejected');
    assert.match(String(verdict.error), /west\.nm/);
    assert.equal((await stateOf(p.control.L)).name, p.names.L);
    assert.equal((await get('/px/after-rename/echo')).url, '/atG/after-rename/echo');
    const peers = (await stateOf(p.control.G)).server!.peers.map((x) => x.name);
    assert.deepEqual(peers, [p.names.L]);
    await assertTunnelKept();
    await p.rewrite('L');
  });

  test('(f) a new listener on a port that is taken: rejected, nothing changes', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      const taken = structuredClone(p.configs.L);
      taken.proxy![`http://127.0.0.1:${port}`] = { ea: p.server, '/t': { ou: originUrl('/taken') } };
      entry(taken.proxy!, lKey)['/never'] = { ou: originUrl('/never') };
      await p.rewrite('L', JSON.stringify(taken, null, 2));
      const verdict = await hup('node.reload_rejected');
      assert.match(String(verdict.error), /EADDRINUSE|in use/);
      assert.equal((await get('/never/echo')).status, 404, 'part of the rejected config was applied');
      assert.equal((await get('/px/after-taken/echo')).url, '/atG/after-taken/echo');
      await assertTunnelKept();
    } finally {
      squatter.close();
      await p.rewrite('L');
    }
  });

  test('(g) a changed west.maxHeaderSize applies to a listener the same reload adds (kept listeners keep theirs, as documented)', async () => {
    const { key } = await reloadWithNewListener((key) => {
      const small = structuredClone(p.configs.L);
      Object.assign(small.west, { maxHeaderSize: 2048 });
      small.proxy![key] = { ea: p.server, '/s': { ou: originUrl('/small-heads') } };
      return JSON.stringify(small, null, 2);
    });
    try {
      const big = { 'X-Big': 'a'.repeat(4096) };
      const added = await fetchText(`${key}/s/echo`, { headers: big });
      assert.equal(added.status, 431, `a 4 KiB head on the listener added with maxHeaderSize 2048 got ${added.status}`);
      const kept = await fetchText(`${p.lUrl}/kept-heads/echo`, { headers: big });
      assert.equal(kept.status, 200, 'doc/operations.md: maxHeaderSize applies to listeners created after the reload');
      await assertTunnelKept();
    } finally {
      await p.rewrite('L');
      await hup('node.reloaded');
    }
  });

  /** A socket on a free port of 127.0.0.1 that the reload will want. */
  async function squat(): Promise<{ port: number; close: () => void }> {
    const s = net.createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    return { port: (s.address() as net.AddressInfo).port, close: () => s.close() };
  }

  /** Whether a TCP connection to 127.0.0.1:port is refused. */
  const refused = (port: number): Promise<boolean> => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });

  test('(i) a new control port or tunnel server port that is taken: rejected, nothing of the config applied, and the next reload works', async () => {
    await p.rewrite('L');
    await hup('node.reloaded');
    const stateBefore = await stateOf(p.control.L);
    const cert = await issue(ca, 'reload-rolled-back', { kind: 'server' });
    for (const part of ['west.cp', 'wsts.sp'] as const) {
      const squatter = await squat();
      const extraPort = await freePort();
      try {
        const taken = structuredClone(p.configs.L) as typeof p.configs.L & { wsts?: unknown };
        if (part === 'west.cp') taken.west.cp = `127.0.0.1:${squatter.port}`;
        else taken.wsts = { sp: `ws://127.0.0.1:${squatter.port}` };
        entry(taken.proxy!, lKey)['/never'] = { ou: originUrl('/never') };
        taken.proxy![`http://127.0.0.1:${extraPort}`] = { ea: p.server, '/x': { ou: originUrl('/extra') } };
        // L's listener turned https: its port is given up for the new one, and must be taken back.
        taken.proxy![lKey.replace('http:', 'https:')] = { ...taken.proxy![lKey], cert: cert.cert, key: cert.key };
        delete taken.proxy![lKey];
        await p.rewrite('L', JSON.stringify(taken, null, 2));
        const verdict = await hup('node.reload_rejected');
        assert.match(String(verdict.error), /EADDRINUSE|in use/, part);
        assert.equal((await get('/px/after-taken/echo')).url, '/atG/after-taken/echo', `${part}: L's listener was not rebound as it was`);
        assert.equal((await get('/never/echo')).status, 404, `${part}: part of the rejected config was applied`);
        assert.equal(await refused(extraPort), true, `${part}: the rejected config's new listener is still bound`);
        assert.equal((await get('/px/after-taken/echo')).url, '/atG/after-taken/echo');
        const state = await stateOf(p.control.L);
        assert.deepEqual(state.listeners.map((x) => x.key), stateBefore.listeners.map((x) => x.key), part);
        assert.equal(state.server, stateBefore.server, `${part}: the rejected tunnel server shows in /state.json`);
        await assertTunnelKept();
      } finally {
        squatter.close();
      }
    }
    entry(p.configs.L.proxy!, lKey)['/later'] = { ou: originUrl('/later') };
    await p.rewrite('L');
    await hup('node.reloaded');
    assert.equal((await get('/later/echo')).url, '/later/echo');
    delete entry(p.configs.L.proxy!, lKey)['/later'];
    await p.rewrite('L');
    await hup('node.reloaded');
  });

  test('(j) http:// to https:// on the same port is served over TLS; a new certificate is what the next client sees', async () => {
    const [one, two] = await Promise.all([
      issue(ca, 'reload-listener-one', { kind: 'server' }),
      issue(ca, 'reload-listener-two', { kind: 'server' }),
    ]);
    const caPem = await readFile(ca.cert);
    const port = await freePort();
    const plain = `http://127.0.0.1:${port}`;
    const secure = `https://127.0.0.1:${port}`;
    const mapping = { '/t': { ou: originUrl('/tls-target') } };
    try {
      p.configs.L.proxy![plain] = { ea: p.server, ...mapping };
      await p.rewrite('L');
      await hup('node.reloaded');
      assert.equal((await get('/t/echo', plain)).url, '/tls-target/echo');

      delete p.configs.L.proxy![plain];
      p.configs.L.proxy![secure] = { ea: p.server, cert: one.cert, key: one.key, ...mapping };
      await p.rewrite('L');
      await hup('node.reloaded');
      const first = await tlsGet(`${secure}/t/echo`, caPem);
      assert.equal(first.status, 200);
      assert.equal(first.cn, 'reload-listener-one');
      assert.equal(first.fingerprint, new X509Certificate(await readFile(one.cert)).fingerprint256);

      // A connection open across the rotation keeps its certificate and is not dropped.
      const kept = await keptTlsConnection(port, caPem);
      assert.match(await kept.get('/t/echo'), /^HTTP\/1\.1 200 /);
      Object.assign(p.configs.L.proxy![secure], { cert: two.cert, key: two.key });
      await p.rewrite('L');
      await hup('node.reloaded');
      assert.match(await kept.get('/t/echo'), /^HTTP\/1\.1 200 /, 'the connection open across the rotation still serves');
      assert.equal(kept.cn(), 'reload-listener-one');
      kept.close();
      const second = await tlsGet(`${secure}/t/echo`, caPem);
      assert.equal(second.status, 200);
      assert.equal(second.cn, 'reload-listener-two');
      assert.equal(second.fingerprint, new X509Certificate(await readFile(two.cert)).fingerprint256);
      await assertTunnelKept();
    } finally {
      delete p.configs.L.proxy![plain];
      delete p.configs.L.proxy![secure];
      await p.rewrite('L');
      await hup('node.reloaded');
    }
  });

  test('(k) a config path that cannot be read (now a directory) is rejected; the node keeps running', async () => {
    const file = p.files.L;
    await rename(file, `${file}.moved`);
    await mkdir(file);
    try {
      const verdict = await hup();
      assert.notEqual(verdict.event, 'node.reloaded');
      assert.equal(l.exitCode, null, 'L exited');
      assert.equal((await stateOf(p.control.L)).name, p.names.L);
      assert.equal((await get('/px/after-dir/echo')).url, '/atG/after-dir/echo');
    } finally {
      await rmdir(file);
      await rename(`${file}.moved`, file);
    }
    await hup('node.reloaded');
  });

  test('(l) two SIGHUPs in quick succession run one after the other, and the node ends in the last config', async () => {
    const port = await freePort();
    const key = `http://127.0.0.1:${port}`;
    p.configs.L.proxy![key] = { ea: p.server, '/q': { ou: originUrl('/queued') } };
    await p.rewrite('L');
    const v0 = verdicts().length;
    const r0 = count('node.reload_requested');
    const q0 = count('node.reload_queued');
    l.kill('SIGHUP');
    l.kill('SIGHUP');
    // Every reload that started has its verdict, and a queued one has started.
    await waitFor('the reloads to finish', () => {
      const started = count('node.reload_requested') - r0;
      return started >= 1 + (count('node.reload_queued') - q0) && verdicts().length - v0 === started;
    }, 10_000);
    const ends = verdicts().slice(v0);
    assert.deepEqual(ends.map((e) => e.event), ends.map(() => 'node.reloaded'), JSON.stringify(ends));
    assert.equal((await get('/q/echo', key)).url, '/queued/echo');

    delete p.configs.L.proxy![key];
    await p.rewrite('L');
    await hup('node.reloaded');
    assert.deepEqual((await stateOf(p.control.L)).listeners.map((x) => x.key), [lKey]);
    await assertTunnelKept();
  });

  test('(h) a changed tuning key applies to tunnel sessions that start after the reload (west.maxStreams)', async () => {
    // doc/operations.md: tuning keys "apply to requests, dials and sessions that start after
    // the reload". Lower L's stream limit, then make the tunnel start a new session.
    const limited = structuredClone(p.configs.L);
    Object.assign(limited.west, { maxStreams: 2 });
    await p.rewrite('L', JSON.stringify(limited, null, 2));
    await hup('node.reloaded');
    const connects = at((await stateOf(p.control.L)).tunnels, 0).connects;
    await g.stop();
    g = await p.start('G');
    await waitFor('L to connect a new session', async () => {
      const t = at((await stateOf(p.control.L)).tunnels, 0);
      return t.connected && t.connects === connects + 1;
    }, 10_000);

    const hangs = Array.from({ length: 4 }, (_, i) => watchExchange(`${p.lUrl}/limit-${i}/hang`));
    try {
      await waitFor('the requests to reach the origin or be refused', async () => {
        const atOrigin = origin.seen.filter((x) => x.url.includes('/limit-')).length;
        const refused = at((await stateOf(p.control.L)).listeners, 0).statuses['503'] ?? 0;
        return atOrigin + refused >= 4;
      }, 5000);
      const atOrigin = origin.seen.filter((x) => x.url.includes('/limit-')).length;
      assert.equal(atOrigin, 2, `${atOrigin} of 4 parallel requests reached the origin on a new session after reloading maxStreams 2`);
    } finally {
      for (const h of hangs) h.req.destroy();
      await p.rewrite('L');
    }
  });
});
