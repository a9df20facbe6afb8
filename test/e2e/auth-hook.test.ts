/**
 * The auth hook (west.authHook, doc/remote-access.md#the-auth-hook), with real processes: a
 * node that tunnels to itself asks a hook server (this test, node:http) about its tunnel and
 * about every stream it performs. Allow, deny, a hook that is too slow and a hook that is down
 * (both fail closed), every decision in the log (`auth.decision`), the cache (a second identical
 * question does not reach the hook) and a deny that is not remembered past `denyCache`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

interface Question {
  event: string;
  name?: string;
  path?: string;
  from?: string;
  to?: string;
  target?: string;
  method?: string;
  address?: string;
}

/** The hook: records every question and answers by the rule of the moment. */
class HookServer {
  readonly questions: Question[] = [];
  rule: (q: Question) => 'allow' | 'deny' | 'hang' = () => 'allow';
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const q = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Question;
      this.questions.push(q);
      const verdict = this.rule(q);
      if (verdict === 'hang') return; // never answers: the node's timeout decides
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ allow: verdict === 'allow', reason: `test hook says ${verdict}` }));
    });
  });

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  asked(path: string): number {
    return this.questions.filter((q) => q.event === 'stream' && q.path === path).length;
  }
}

const origin = new Origin();
const hook = new HookServer();
let dir = '';
let cleanup = async (): Promise<void> => {};
let node: WestProcess;
let base = '';
let hookPort = 0;
let sp = 0;
const DENY_CACHE_S = 2;
const CACHE_S = 6;

before(async () => {
  await origin.listen();
  await hook.listen();
  hookPort = hook.port;
  ({ dir, cleanup } = await tempDir('west-hook-'));
  sp = await freePort();
  const config = await writeConfig(dir, 'self.json', {
    west: {
      nm: 'self',
      authHook: { url: `http://127.0.0.1:${hook.port}/auth`, timeout: 0.4, cache: CACHE_S, denyCache: DENY_CACHE_S },
    },
    wsts: { sp: `ws://127.0.0.1:${sp}` },
    proxy: { 'http://127.0.0.1:0': { ea: `ws://127.0.0.1:${sp}`, '/o': { ou: `http://127.0.0.1:${origin.port}/` } } },
  });
  hook.rule = (q) => (q.event === 'tunnel' ? (q.name === 'intruder' ? 'deny' : 'allow') : q.path?.startsWith('/denied') ? 'deny' : q.path?.startsWith('/slow') ? 'hang' : 'allow');
  node = await WestProcess.start(config);
  await node.waitForEvent('tunnel.connected');
  base = node.listenerUrl();
});

after(async () => {
  await stopAll();
  await hook.close();
  await origin.close();
  await cleanup();
});

const decisions = (match: (e: Record<string, unknown>) => boolean): Record<string, unknown>[] =>
  node.events.filter((e) => e.event === 'auth.decision' && match(e as Record<string, unknown>));

describe('auth hook', () => {
  test('the tunnel was asked about, with its name and address, and the decision logged', () => {
    const q = hook.questions.find((x) => x.event === 'tunnel');
    assert.ok(q, 'the hook was asked about the tunnel');
    assert.equal(q.name, 'self');
    assert.equal(q.address, '127.0.0.1');
    assert.equal(decisions((e) => e.event === 'auth.decision' && e.name === 'self' && e.allow === true).length >= 1, true);
  });

  test('allow: the request goes through; a second identical question within the cache time does not reach the hook', async () => {
    const first = await fetchText(`${base}/o/allowed`);
    assert.equal(first.status, 200);
    assert.equal(hook.asked('/allowed'), 1);
    const q = hook.questions.find((x) => x.path === '/allowed');
    assert.deepEqual({ event: q?.event, from: q?.from, to: q?.to, method: q?.method, target: q?.target },
      { event: 'stream', from: 'self', to: 'self', method: 'GET', target: `127.0.0.1:${origin.port}` });
    const second = await fetchText(`${base}/o/allowed?other=query`);
    assert.equal(second.status, 200);
    assert.equal(hook.asked('/allowed'), 1, 'the cached allow answered (the query is not part of the question)');
    await waitFor('both decisions logged', () => decisions((e) => e.path === '/allowed').length === 2);
    assert.deepEqual(decisions((e) => e.path === '/allowed').map((e) => e.source), ['hook', 'cache']);
  });

  test('deny: 403 hook_denied with Proxy-Status; the deny is cached for denyCache, not for cache', async () => {
    let verdict: 'allow' | 'deny' = 'deny';
    const rule = hook.rule;
    hook.rule = (q) => (q.path === '/flip' ? verdict : rule(q));
    const denied = await fetchText(`${base}/o/flip`);
    const deniedAt = Date.now();
    assert.equal(denied.status, 403);
    assert.match(String(denied.headers['proxy-status']), /error=http_request_denied/);
    assert.match(denied.text, /test hook says deny/);
    assert.equal(hook.asked('/flip'), 1);
    verdict = 'allow';
    // Within denyCache the deny stands without asking again...
    const again = await fetchText(`${base}/o/flip`);
    if (Date.now() - deniedAt < DENY_CACHE_S * 1000 - 200) {
      assert.equal(again.status, 403);
      assert.equal(hook.asked('/flip'), 1, 'the cached deny answered');
    }
    // ...and after it the hook is asked again and its allow holds, long before the allow cache time.
    await waitFor('the deny to expire', async () => (await fetchText(`${base}/o/flip`)).status === 200, CACHE_S * 1000 - 1000, 100);
    const elapsed = Date.now() - deniedAt;
    assert.ok(elapsed >= DENY_CACHE_S * 1000 - 50, `allowed after ${elapsed} ms: the deny was not kept for denyCache`);
    assert.ok(elapsed < CACHE_S * 1000, `allowed only after ${elapsed} ms`);
    assert.equal(hook.asked('/flip'), 2);
    const logged = decisions((e) => e.path === '/flip');
    assert.deepEqual(logged.map((e) => e.allow).slice(0, 1), [false]);
    assert.ok(logged.some((e) => e.allow === false && e.source === 'cache') || again.status === 200);
    assert.equal(logged.at(-1)?.allow, true);
  });

  test('timeout: a hook that does not answer in time refuses the stream (503 hook_unavailable)', async () => {
    const t0 = Date.now();
    const res = await fetchText(`${base}/o/slow`);
    assert.equal(res.status, 503);
    assert.match(String(res.headers['proxy-status']), /error=proxy_internal_error/);
    assert.match(res.text, /did not answer within 400 ms/);
    assert.ok(Date.now() - t0 < 5000);
    await node.waitForEvent('auth.hook_failed', (e) => e.about === 'stream');
    await waitFor('the decision logged', () => decisions((e) => e.path === '/slow' && e.allow === false && e.unavailable === true).length === 1);
    // A failure is not cached: the next request asks again.
    await fetchText(`${base}/o/slow`);
    assert.equal(hook.asked('/slow'), 2);
  });

  test('a tunnel the hook denies is refused, and the denial logged', async () => {
    const intruder = await writeConfig(dir, 'intruder.json', { west: { nm: 'intruder' }, wstc: { [`ws://127.0.0.1:${sp}`]: {} } });
    await WestProcess.start(intruder);
    const refused = await node.waitForEvent('tunnel.client_refused', (e) => String(e.reason).includes('intruder'), 15_000);
    assert.match(String(refused.reason), /test hook says deny/);
    await node.waitForEvent('auth.decision', (e) => e.name === 'intruder' && e.allow === false);
    assert.equal(node.events.some((e) => e.event === 'tunnel.client_connected' && e.peer === 'intruder'), false);
  });

  test('hook down: the stream is refused (fail closed), and a new tunnel is refused too', async () => {
    assert.equal((await fetchText(`${base}/o/cached-before`)).status, 200);
    await hook.close();
    const res = await fetchText(`${base}/o/after-hook-died`);
    assert.equal(res.status, 503);
    assert.match(res.text, /could not be asked/);
    await waitFor('the decision logged', () => decisions((e) => e.path === '/after-hook-died' && e.allow === false).length === 1);
    // A cached allow still answers while it lasts: no round trip, no dependency on the hook.
    assert.equal((await fetchText(`${base}/o/cached-before`)).status, 200);

    const other = await writeConfig(dir, 'other.json', {
      west: { nm: 'other', authHook: { url: `http://127.0.0.1:${hookPort}/auth`, timeout: 0.4 } },
      wsts: { sp: 'ws://127.0.0.1:0' },
    });
    const o = await WestProcess.start(other);
    const sp = o.serverPort();
    const client = await writeConfig(dir, 'client.json', {
      west: { nm: 'visitor' },
      wstc: { [`ws://127.0.0.1:${sp}`]: { nm: 'visitor' } },
    });
    await WestProcess.start(client);
    const refused = await o.waitForEvent('tunnel.client_refused', (e) => String(e.reason).includes('visitor'), 15_000);
    assert.match(String(refused.reason), /auth hook could not be asked/);
    await o.waitForEvent('auth.decision', (e) => e.name === 'visitor' && e.allow === false && e.unavailable === true);
  });
});
