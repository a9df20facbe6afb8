/** How many workers run (src/workers/count.ts), what each runs and who is one (src/workers/split.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { parseWorkersFlag, workerCount } from '../../src/workers/count.js';
import { shareFromEnv, workerPart, WORKER_ENV } from '../../src/workers/split.js';

function config(west: Record<string, unknown> = {}, more: Record<string, unknown> = {}): ReturnType<typeof parseConfig> {
  return parseConfig(JSON.stringify({
    west: { nm: 'site', cp: '127.0.0.1:9990', ...west },
    wsts: { sp: 'ws://127.0.0.1:9801' },
    wstc: { 'ws://127.0.0.1:9802': {} },
    proxy: {
      'http://127.0.0.1:9911': { ea: 'ws://127.0.0.1:9802', '/a': { ou: 'http://127.0.0.1:9921/a' } },
      'http://127.0.0.1:9912': { en: 'peer', '/b': { ou: 'http://127.0.0.1:9921/b' } },
    },
    ...more,
  }), '');
}

test('west.workers: "auto" is 1 on 2 cores or fewer, one per core above; a number is taken as it is', () => {
  assert.equal(workerCount(config(), undefined, 1).count, 1);
  assert.equal(workerCount(config(), undefined, 2).count, 1);
  assert.equal(workerCount(config(), undefined, 8).count, 8);
  assert.equal(workerCount(config({ workers: 'auto' }), undefined, 4).count, 4);
  assert.equal(workerCount(config({ workers: 3 }), undefined, 2).count, 3);
  assert.equal(workerCount(config({ workers: 1 }), undefined, 64).count, 1);
  // --workers overrides the key.
  assert.equal(workerCount(config({ workers: 3 }), 1, 2).count, 1);
  assert.equal(workerCount(config({ workers: 1 }), 'auto', 6).count, 6);
});

test('west.workers: capped so that workers × connections fits one pool (16)', () => {
  const wide = config({ workers: 8 }, { wstc: { 'ws://127.0.0.1:9802': { connections: 4 } } });
  assert.deepEqual(workerCount(wide, undefined, 2), { count: 4, asked: 8, reason: 'a pool holds at most 16 connections (workers × wstc connections)' });
  assert.equal(workerCount(config({ workers: 40 }), undefined, 2).count, 16);
});

test('west.workers: a node that relays between its server and the servers it dials runs one worker', () => {
  const relay = config({ workers: 4, transit: { '*': ['*'] } });
  const n = workerCount(relay, undefined, 2);
  assert.equal(n.count, 1);
  assert.equal(n.asked, 4);
});

test('west.workers: a node with a tunnel over MQTT runs one worker (an MQTT tunnel is one connection per name)', () => {
  const overMqtt = parseConfig(JSON.stringify({
    west: { nm: 'site', workers: 4 },
    wstc: { 'mqtt://127.0.0.1:1883': { mqtt: { server: 'hub' } } },
    proxy: { 'http://127.0.0.1:9911': { ea: 'mqtt://127.0.0.1:1883', '/a': { ou: 'http://127.0.0.1:9921/a' } } },
  }), '');
  const n = workerCount(overMqtt, undefined, 8);
  assert.deepEqual([n.count, n.asked], [1, 4]);
  assert.match(n.reason ?? '', /MQTT/);
});

test('west.workers: what the loader refuses', () => {
  for (const bad of [0, -1, 1.5, '2', 'all', 2000]) {
    assert.throws(() => config({ workers: bad }), (err: unknown) => err instanceof ConfigError && err.message.includes('west.workers'), String(bad));
  }
});

test('--workers: a whole number or auto', () => {
  assert.equal(parseWorkersFlag('auto'), 'auto');
  assert.equal(parseWorkersFlag('4'), 4);
  for (const bad of ['0', '-2', '1.5', 'x', '', '99999']) assert.ok(parseWorkersFlag(bad) instanceof Error, bad);
});

test('workerPart: worker 0 runs everything; the others the ea listeners and the tunnel clients only', () => {
  const c = config();
  assert.equal(workerPart(c, 0), c);
  const other = workerPart(c, 1);
  assert.equal(other.server, undefined);
  assert.equal(other.control, undefined);
  assert.deepEqual(other.listeners.map((l) => l.key), ['http://127.0.0.1:9911']);
  assert.deepEqual(other.clients, c.clients);
});

test('shareFromEnv: only a cluster worker with a well-formed environment is one', () => {
  const env = { [WORKER_ENV.worker]: '1', [WORKER_ENV.workers]: '2', [WORKER_ENV.pool]: 'a'.repeat(32) };
  assert.deepEqual(shareFromEnv(env, true), { id: 'a'.repeat(32), worker: 1, workers: 2 });
  // A process not started by a primary ignores the variables (they cannot turn a node into a part of one).
  assert.equal(shareFromEnv(env, false), undefined);
  assert.equal(shareFromEnv({ ...env, [WORKER_ENV.worker]: '2' }, true), undefined);
  assert.equal(shareFromEnv({ ...env, [WORKER_ENV.workers]: '1', [WORKER_ENV.worker]: '0' }, true), undefined);
  assert.equal(shareFromEnv({ ...env, [WORKER_ENV.pool]: 'short' }, true), undefined);
});
