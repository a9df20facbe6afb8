/**
 * Remote-access sessions (west.access.remoteAccess, doc/remote-access.md), with real processes:
 * site-L2 dials hub; hub's listener serves /remoteaccess/<key>; keys come from hub's control
 * port (curl, and `west session new`). A key used once carries bytes both ways through the
 * tunnel to a TCP echo server; reused, expired, bound elsewhere or of the other kind it is
 * refused; it never gets past site-L2's west.egress; the auth hook is asked before a key is
 * used (and sees only its first characters); closing either side closes the other.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { findProgram, runProgram } from '../helpers/daemon.js';
import { fetchText, waitFor, rawUpgradeLine } from '../helpers/net.js';
import { runCli, stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const TOKEN = `cp-${randomBytes(16).toString('hex')}`;
const KEY_TTL_S = 1.5;
const LISTENER = 'http://127.0.0.1:0';

/** A TCP echo server that remembers its connections. */
class Echo {
  readonly sockets: net.Socket[] = [];
  readonly server = net.createServer({ allowHalfOpen: false }, (s) => {
    this.sockets.push(s);
    s.on('error', () => s.destroy());
    s.pipe(s);
  });

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(0, '127.0.0.1', r));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const echo = new Echo();
/** Reachable, but not in site-L2's egress: a key for it must not get through. */
const forbidden = new Echo();
const hookQuestions: Record<string, unknown>[] = [];
const hook = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => { body += c.toString(); });
  req.on('end', () => {
    const q = JSON.parse(body) as Record<string, unknown>;
    hookQuestions.push(q);
    const deny = q.event === 'session' && typeof q.target === 'string' && q.target.endsWith(':9');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ allow: !deny, reason: deny ? 'port 9 is off limits' : 'ok' }));
  });
});
let hub: WestProcess;
let site: WestProcess;
let hubFile = '';
let cleanup = async (): Promise<void> => {};

before(async () => {
  await echo.listen();
  await forbidden.listen();
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  let dir: string;
  ({ dir, cleanup } = await tempDir('west-ra-'));
  hubFile = await writeConfig(dir, 'hub.json', {
    west: {
      nm: 'hub', cp: '127.0.0.1:0', cpToken: TOKEN,
      access: { remoteAccess: [LISTENER], keyTtl: KEY_TTL_S },
      authHook: { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/auth`, timeout: 2 },
    },
    wsts: { sp: 'ws://127.0.0.1:0' },
    proxy: { [LISTENER]: { en: 'site-L2' } },
  });
  hub = await WestProcess.start(hubFile);
  const siteFile = await writeConfig(dir, 'site.json', {
    west: { nm: 'site-L2', egress: { hub: [`tcp://127.0.0.1:${echo.port}`] } },
    wstc: { [`ws://127.0.0.1:${hub.serverPort()}`]: {} },
  });
  site = await WestProcess.start(siteFile);
  await site.waitForEvent('tunnel.connected');
  await hub.waitForEvent('tunnel.client_connected');
});

after(async () => {
  await stopAll();
  await echo.close();
  await forbidden.close();
  hook.closeAllConnections();
  await new Promise<void>((r) => hook.close(() => r()));
  await cleanup();
});

interface Issued { key: string; url: string; expires: string }

async function issue(target: string, node = 'site-L2'): Promise<Issued> {
  const res = await fetchText(`${hub.controlUrl()}/sessions`, {
    method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ node, target }),
  });
  assert.equal(res.status, 201, res.text);
  return JSON.parse(res.text) as Issued;
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'binary');
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => reject(new Error(`${res.statusCode} ${String(res.headers['proxy-status'])}: ${body.trim()}`)));
    });
    ws.once('error', reject);
  });
}

/** Sends `total` random bytes and reads as many back (the echo): both hashes. */
async function roundTrip(ws: WebSocket, total: number, messageSize = 16_384): Promise<{ sent: string; got: string }> {
  const data = randomBytes(total);
  const gotHash = createHash('sha256');
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    ws.on('message', (m: Buffer) => {
      gotHash.update(m);
      got += m.length;
      if (got >= total) resolve();
    });
    ws.once('close', () => reject(new Error(`closed after ${got} bytes`)));
  });
  for (let off = 0; off < total; off += messageSize) ws.send(data.subarray(off, off + messageSize));
  await done;
  return { sent: createHash('sha256').update(data).digest('hex'), got: gotHash.digest('hex') };
}

describe('remote access', () => {
  test('POST /sessions with curl: 401 without the token, 201 with it', { skip: findProgram('curl') ? false : 'curl is not installed' }, () => {
    const url = `${hub.controlUrl()}/sessions`;
    const body = JSON.stringify({ node: 'site-L2', target: `127.0.0.1:${echo.port}` });
    const without = runProgram('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-d', body, url]);
    assert.equal(without, '401');
    const out = runProgram('curl', ['-s', '-X', 'POST', '-H', `Authorization: Bearer ${TOKEN}`, '-d', body, url]);
    const issued = JSON.parse(out) as Issued;
    assert.match(issued.key, /^[A-Za-z0-9_-]{43}$/);
    assert.match(issued.url, /^ws:\/\/127\.0\.0\.1:\d+\/remoteaccess\/[A-Za-z0-9_-]{43}$/);
    assert.ok(!hub.stderr.includes(issued.key), 'the key is never logged in full');
  });

  test('west session new prints the URL (--cp with WEST_CP_TOKEN, or -c the node\'s config)', async () => {
    const withCp = await runCli(['session', 'new', 'site-L2', `127.0.0.1:${echo.port}`, '--cp', hub.controlUrl()], 15_000, { ...process.env, WEST_CP_TOKEN: TOKEN });
    assert.equal(withCp.code, 0, withCp.stderr);
    assert.match(withCp.stdout, /^ws:\/\/127\.0\.0\.1:\d+\/remoteaccess\/[A-Za-z0-9_-]{43}\n$/);
    const ws = await open(withCp.stdout.trim());
    const { sent, got } = await roundTrip(ws, 4096);
    assert.equal(got, sent);
    ws.close();
    const noToken = await runCli(['session', 'new', 'site-L2', `127.0.0.1:${echo.port}`, '--cp', hub.controlUrl()], 15_000, { ...process.env, WEST_CP_TOKEN: '' });
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /401/);
    // With -c, the control port's bound port is what the config says: 0 here, so only the token is taken from it.
    const fromConfig = await runCli(['session', 'new', 'site-L2', `127.0.0.1:${echo.port}`, '-c', hubFile, '--cp', hub.controlUrl(), '--json']);
    assert.equal(fromConfig.code, 0, fromConfig.stderr);
    assert.equal((JSON.parse(fromConfig.stdout) as { node: string }).node, 'site-L2');
  });

  test('a key used once carries bytes both ways through the mesh (1 MiB, hash-checked); reused, it is refused', async () => {
    const { url } = await issue(`127.0.0.1:${echo.port}`);
    const ws = await open(url);
    assert.equal(ws.protocol, 'binary');
    const { sent, got } = await roundTrip(ws, 1024 * 1024);
    assert.equal(got, sent);
    await assert.rejects(open(url), /^Error: 403 .*http_request_denied.*unknown or already used/s);
    ws.close();
  });

  test('32 MiB to the echo and back through one session in 64 KiB messages, hash-checked (throughput figure)', async () => {
    const ws = await open((await issue(`127.0.0.1:${echo.port}`)).url);
    const t0 = Date.now();
    const { sent, got } = await roundTrip(ws, 32 * 1024 * 1024, 65_536);
    const s = (Date.now() - t0) / 1000;
    console.log(`# remote access: 32 MiB out and back in 64 KiB messages (WebSocket -> hub -> tunnel -> site-L2 -> TCP echo) in ${s.toFixed(1)} s, ${(32 / s).toFixed(0)} MiB/s each way`);
    assert.equal(got, sent);
    ws.close();
  });

  test('an expired key is refused', async () => {
    const { url, expires } = await issue(`127.0.0.1:${echo.port}`);
    await waitFor('the key to expire', () => Date.now() > Date.parse(expires) + 50, KEY_TTL_S * 1000 + 5000, 50);
    await assert.rejects(open(url), /^Error: 403 .*expired/s);
  });

  test('a key presented for another endpoint, or as a rendezvous key, is refused and spent', async () => {
    const a = await issue(`127.0.0.1:${echo.port}`);
    await assert.rejects(open(`${a.url}?target=127.0.0.1:${forbidden.port}`), /^Error: 403 .*another endpoint/s);
    await assert.rejects(open(a.url), /^Error: 403 /, 'spent by the wrong try');
    const b = await issue(`127.0.0.1:${echo.port}`);
    // No listener serves rendezvous here: the path is the listener's, routed like any request.
    await assert.rejects(open(b.url.replace('/remoteaccess/', '/rendezvous/')), /^Error: (404|403|503) /);
    const c = await issue(`127.0.0.1:${echo.port}`);
    const ok = await open(`${c.url}?target=127.0.0.1:${echo.port}`);
    ok.close();
  });

  test('keys are issued for another node only, with a host and a port', async () => {
    for (const body of [{ node: 'hub', target: `127.0.0.1:${echo.port}` }, { node: 'site-L2', target: '127.0.0.1' }, { node: 'site-L2' }, { node: 'site-L2', target: 'a b:1' }]) {
      const res = await fetchText(`${hub.controlUrl()}/sessions`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    }
    const get = await fetchText(`${hub.controlUrl()}/sessions`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(get.status, 405);
  });

  test('a key never gets past the far end\'s west.egress', async () => {
    const { url } = await issue(`127.0.0.1:${forbidden.port}`);
    await assert.rejects(open(url), /^Error: 403 .*http_request_denied.*west\.egress/s);
    assert.equal(forbidden.sockets.length, 0, 'the forbidden endpoint saw no connection');
  });

  test('the auth hook is asked before a key is used, and sees only its first characters', async () => {
    const { key, url } = await issue('127.0.0.1:9');
    await assert.rejects(open(url), /^Error: 403 .*port 9 is off limits/s);
    const q = hookQuestions.find((x) => x.event === 'session' && x.target === '127.0.0.1:9');
    assert.ok(q, 'the hook was asked');
    assert.equal(q.kind, 'remote-access');
    assert.equal(q.to, 'site-L2');
    assert.equal(q.keyId, `${key.slice(0, 6)}…`);
    assert.ok(!JSON.stringify(hookQuestions).includes(key));
    assert.ok(hookQuestions.some((x) => x.event === 'tunnel' && x.name === 'site-L2'), 'the tunnel was asked about too');
  });

  test('closing the WebSocket closes the TCP connection; the endpoint closing closes the WebSocket', async () => {
    const before = echo.sockets.length;
    const first = await open((await issue(`127.0.0.1:${echo.port}`)).url);
    await waitFor('the echo connection', () => echo.sockets.length === before + 1);
    const far = echo.sockets[before];
    assert.ok(far);
    const farClosed = new Promise<void>((r) => far.once('close', () => r()));
    first.close(1000);
    await farClosed;

    const second = await open((await issue(`127.0.0.1:${echo.port}`)).url);
    await waitFor('the echo connection', () => echo.sockets.length === before + 2);
    const wsClosed = new Promise<number>((r) => second.once('close', (code) => r(code)));
    echo.sockets[before + 1]?.end();
    assert.equal(await wsClosed, 1000);
    await hub.waitForEvent('session.closed');
  });
  test('a malformed %-escape in the key is a 400, not a crash of the node', async () => {
    const { url } = await issue(`127.0.0.1:${echo.port}`);
    const port = Number(new URL(url).port);
    for (const path of ['/remoteaccess/%E0%A4%A', '/remoteaccess/%']) {
      const answer = await rawUpgradeLine(`http://127.0.0.1:${port}${path}`);
      assert.match(answer, /^HTTP\/1\.1 4\d\d /, `${path}: ${answer}`);
    }
    assert.equal(hub.exitCode, null, 'the hub is still running');
    const ok = await open(url);
    ok.close();
  });

  test('an upgrade ws refuses after the key was taken (bad Sec-WebSocket-Version) lets go of the TCP stream it opened', async () => {
    const before = echo.sockets.length;
    const { url } = await issue(`127.0.0.1:${echo.port}`);
    const u = new URL(url);
    const answer = await rawUpgradeLine(`http://${u.host}${u.pathname}`, '7');
    assert.match(answer, /^HTTP\/1\.1 400 /, answer);
    // The key was taken and the stream connected before ws judged the upgrade.
    await waitFor('the echo connection', () => echo.sockets.length === before + 1);
    const far = echo.sockets[before];
    assert.ok(far);
    await waitFor('the far connection to be closed', () => far.destroyed || far.readableEnded, 5000, 20);
    assert.equal(hub.exitCode, null, 'the hub is still running');
  });
});
