/**
 * Session keys, the auth hook client and the config of west.access / west.authHook, without
 * a node: one use, expiry, kinds; the hook's fail-open setting, its answers' shapes, the
 * sharing of one question in flight; the config's defaults and cross-reference checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { AuthHook, keyId } from '../../src/access/hook.js';
import { SessionKeys } from '../../src/access/keys.js';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { issueSession } from '../../src/session-cli.js';
import { freePort } from '../helpers/net.js';

test('session keys: 256 bits, one use, of one kind', () => {
  const keys = new SessionKeys();
  const a = keys.issue({ kind: 'remote-access', to: 'L2', target: '10.0.0.67:5900' }, 60_000);
  assert.ok(a);
  assert.match(a.key, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(Buffer.from(a.key, 'base64url').length, 32);
  assert.deepEqual(keys.take(a.key, 'remote-access'), { kind: 'remote-access', to: 'L2', target: '10.0.0.67:5900' });
  assert.equal(keys.take(a.key, 'remote-access'), 'unknown or already used key');
  const b = keys.issue({ kind: 'rendezvous' }, 60_000);
  assert.ok(b);
  assert.equal(keys.take(b.key, 'remote-access'), 'a rendezvous key presented for remote-access');
  assert.equal(keys.take(b.key, 'rendezvous'), 'unknown or already used key', 'a key presented wrongly is spent');
  assert.equal(keys.take('short', 'rendezvous'), 'not a session key');
  assert.equal(keyId(a.key).length, 7);
});

test('session keys: an expired key is refused and swept', () => {
  const keys = new SessionKeys();
  const a = keys.issue({ kind: 'rendezvous' }, -1);
  assert.ok(a);
  assert.equal(keys.take(a.key, 'rendezvous'), 'expired key');
  keys.issue({ kind: 'rendezvous' }, -1);
  assert.equal(keys.size, 0);
});

const question = { event: 'stream', node: 'n', from: 'a', to: 'n', kind: 'http', method: 'GET', path: '/x', target: 'h:1' } as const;

test('auth hook: failOpen lets an event through when the hook is down; fail closed by default', async () => {
  const url = `http://127.0.0.1:${await freePort()}/auth`;
  const closed = new AuthHook({ url, timeoutMs: 500, cacheMs: 5000, denyCacheMs: 1000, failOpen: false }, silentLogger);
  const d1 = await closed.ask(question);
  assert.deepEqual([d1.allow, d1.unavailable], [false, true]);
  const open = new AuthHook({ url, timeoutMs: 500, cacheMs: 5000, denyCacheMs: 1000, failOpen: true }, silentLogger);
  const d2 = await open.ask(question);
  assert.equal(d2.allow, true);
  assert.match(d2.reason, /failOpen/);
});

test('auth hook: answers without a boolean allow, or not 200, are no answer; one question in flight is asked once', async () => {
  let asked = 0;
  let answer = '{"allow":"yes"}';
  let status = 200;
  const server = http.createServer((req, res) => {
    asked++;
    req.resume();
    req.on('end', () => setTimeout(() => res.writeHead(status).end(answer), 50));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const hook = new AuthHook({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, timeoutMs: 2000, cacheMs: 5000, denyCacheMs: 1000, failOpen: false }, silentLogger);
    const bad = await hook.ask(question);
    assert.deepEqual([bad.allow, bad.unavailable], [false, true]);
    answer = '{"allow":true}';
    status = 403;
    assert.equal((await hook.ask(question)).unavailable, true);
    status = 200;
    asked = 0;
    const [x, y] = await Promise.all([hook.ask(question), hook.ask(question)]);
    assert.equal(asked, 1, 'the second waited for the first');
    assert.equal(x.allow && y.allow, true);
    const cached = hook.ask(question);
    assert.ok(!(cached instanceof Promise), 'a cached answer comes back at once');
    assert.equal(hook.ask({ ...question, path: '/y' }) instanceof Promise, true, 'another question is not answered from the cache');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('auth hook: an answer that never ends is cut at 16 KiB, not read into memory until the timeout', async () => {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const more = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', more);
    };
    res.write('{"allow":true,"reason":"');
    more();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const hook = new AuthHook({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, timeoutMs: 3000, cacheMs: 0, denyCacheMs: 0, failOpen: false }, silentLogger);
    const started = Date.now();
    const d = await hook.ask(question);
    assert.deepEqual([d.allow, d.unavailable], [false, true]);
    assert.doesNotMatch(d.reason, /did not answer within/, 'judged when 16 KiB had come, not at the timeout');
    assert.ok(Date.now() - started < 2500, `decided after ${Date.now() - started} ms`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('west session -c: a control port on an IPv6 address ([::1], [::]) is asked at a URL that parses', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'west-session-'));
  try {
    for (const cp of ['[::1]:9', '[::]:9']) {
      const file = path.join(dir, 'node.json');
      await writeFile(file, JSON.stringify({ west: { nm: 'hub', cp, cpToken: 't' }, wsts: { sp: 'ws://127.0.0.1:9801' } }));
      const err = new PassThrough();
      let text = '';
      err.on('data', (c: Buffer) => { text += c.toString(); });
      const code = await issueSession({ action: 'new', args: ['L2', '127.0.0.1:22'], config: file, json: false, timeoutMs: 2000 }, new PassThrough(), err);
      assert.equal(code, 1, text);
      assert.doesNotMatch(text, /is not a control port address/, `${cp}: ${text}`);
      assert.match(text, /http:\/\/\[::1\]:9\/sessions/, `${cp}: ${text}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const base = (west: Record<string, unknown>, listener: Record<string, unknown> = { en: 'L' }): string => JSON.stringify({
  west: { nm: 'hub', cp: '127.0.0.1:9701', cpToken: 't', ...west },
  wsts: { sp: 'ws://127.0.0.1:9801' },
  proxy: { 'http://127.0.0.1:9911': listener },
});

test('config: west.access and west.authHook resolve with their defaults', () => {
  const c = parseConfig(base({ access: { remoteAccess: ['http://127.0.0.1:9911'] }, authHook: { url: 'http://127.0.0.1:9000/auth', cache: 0.5 } }));
  assert.deepEqual(c.access, { remoteAccess: ['http://127.0.0.1:9911'], rendezvous: [], keyTtlMs: 60_000, pairWaitMs: 8000, maxWaiting: 256, maxWaitingPerAddress: 8 });
  assert.deepEqual(c.authHook, { url: 'http://127.0.0.1:9000/auth', timeoutMs: 500, cacheMs: 500, denyCacheMs: 500, failOpen: false });
  assert.equal(parseConfig(base({}, { en: 'L', '/x': { ou: 'http://127.0.0.1:1/' } })).access, undefined, 'absent: off');
});

test('config: west.access names listeners of the config and needs cp and cpToken', () => {
  const issues = (text: string): string[] => {
    try {
      parseConfig(text);
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.issues.map((i) => `${i.path}: ${i.message}`);
    }
  };
  assert.match(issues(base({ access: { rendezvous: ['http://127.0.0.1:1'] } })).join('\n'), /west\.access\.rendezvous\[0\]: names no listener of this config/);
  assert.match(issues(base({ cpToken: undefined, access: { rendezvous: ['http://127.0.0.1:9911'] } })).join('\n'), /west\.access: keys are issued by the control port with its token/);
  assert.match(issues(base({ authHook: { url: 'ftp://x' } })).join('\n'), /west\.authHook\.url: must be the http/);
  assert.match(issues(base({ authHook: {} })).join('\n'), /west\.authHook/);
  assert.deepEqual(issues(base({ access: { rendezvous: ['http://127.0.0.1:9911'] } }, { en: 'L' })), [], 'a listener west.access names needs no mappings');
  assert.match(issues(base({}, { en: 'L' })).join('\n'), /has no path mappings/, 'any other still does');
});
