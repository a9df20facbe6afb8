import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import { Logger } from '../../src/log.js';
import { planReload } from '../../src/reload.js';
import { reload, ReloadQueue } from '../../src/run.js';
import { at } from '../helpers/at.js';
import { waitFor } from '../helpers/net.js';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');
const source = join(fixtures, 'reload.json');

function config(edit: (c: Record<string, any>) => void = () => {}): ReturnType<typeof parseConfig> {
  const c: Record<string, any> = {
    west: { nm: 'G' },
    wsts: { sp: 'wss://127.0.0.1:9801', cert: 'tls/server.crt', key: 'tls/server.key', tokens: { L: 'one' } },
    wstc: { 'ws://127.0.0.1:9802': { token: 'up' } },
    proxy: { 'http://127.0.0.1:9911': { en: 'L', '/px': { ou: 'http://127.0.0.1:9921/x' } } },
  };
  edit(c);
  return parseConfig(JSON.stringify(c), source);
}

const CASES: { name: string; edit: (c: Record<string, any>) => void; want: Partial<Record<string, unknown>> }[] = [
  { name: 'nothing changed', edit: () => {}, want: { rebindServer: false, serverUpdate: false, tuning: false } },
  { name: 'a token revoked', edit: (c) => { c.wsts.tokens = { L: 'two' }; }, want: { rebindServer: false, serverUpdate: true } },
  { name: 'wsts.ca added', edit: (c) => { c.wsts.ca = ['10.0.0.0/8']; }, want: { rebindServer: false, serverUpdate: true } },
  { name: 'claim policy', edit: (c) => { c.wsts.claim = 'refuse'; }, want: { rebindServer: false, serverUpdate: true } },
  { name: 'the same certificate under another path', edit: (c) => { c.wsts.cert = '../fixtures/tls/server.crt'; }, want: { rebindServer: false, serverUpdate: false } },
  { name: 'a new certificate', edit: (c) => { c.wsts.cert = '../../sample/hardened/tls/relay.crt'; c.wsts.key = '../../sample/hardened/tls/relay.key'; }, want: { rebindServer: true } },
  { name: 'server address', edit: (c) => { c.wsts.sp = 'wss://127.0.0.1:9805'; }, want: { rebindServer: true, serverUpdate: false } },
  { name: 'a tuning key', edit: (c) => { c.west.maxStreams = 10; }, want: { tuning: true } },
  { name: 'west.nm', edit: (c) => { c.west.nm = 'G2'; }, want: { refused: 'west.nm changed from "G" to "G2": restart west to rename a node' } },
  { name: 'west.workers', edit: (c) => { c.west.workers = 4; }, want: { refused: 'west.workers changed from "auto" to 4: restart west to change how many workers run' } },
];

for (const c of CASES) {
  test(`planReload: ${c.name}`, () => {
    const plan = planReload(config(), config(c.edit)) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(c.want)) assert.deepEqual(plan[k], v, k);
  });
}

test('planReload: http -> https replaces the listener, a new certificate rotates it in place, a mapping alone updates it', () => {
  const tls = (c: Record<string, any>): void => {
    c.proxy['https://127.0.0.1:9911'] = { ...c.proxy['http://127.0.0.1:9911'], cert: 'tls/server.crt', key: 'tls/server.key' };
    delete c.proxy['http://127.0.0.1:9911'];
  };
  const toTls = planReload(config(), config(tls));
  assert.deepEqual(toTls.listeners.replace.map((l) => l.key), ['https://127.0.0.1:9911']);
  assert.deepEqual([toTls.listeners.add, toTls.listeners.update, toTls.listeners.remove], [[], [], []]);
  const newCert = planReload(config(tls), config((c) => {
    tls(c);
    Object.assign(c.proxy['https://127.0.0.1:9911'], { cert: '../../sample/hardened/tls/relay.crt', key: '../../sample/hardened/tls/relay.key' });
  }));
  assert.deepEqual(newCert.listeners.rotate.map((l) => l.key), ['https://127.0.0.1:9911']);
  assert.deepEqual([newCert.listeners.replace, newCert.listeners.update], [[], []]);
  const mapping = planReload(config(tls), config((c) => { tls(c); c.proxy['https://127.0.0.1:9911']['/py'] = { ou: 'http://127.0.0.1:9921/y' }; }));
  assert.deepEqual([mapping.listeners.replace.length, mapping.listeners.update.length], [0, 1]);
});

test('planReload: a changed mapping updates its listener in place; a changed client token redials that tunnel only', () => {
  const plan = planReload(config(), config((c) => {
    c.proxy['http://127.0.0.1:9911']['/py'] = { ou: 'http://127.0.0.1:9921/y' };
    c.wstc['ws://127.0.0.1:9802'].token = 'up2';
    c.wstc['ws://127.0.0.1:9803'] = {};
  }));
  assert.deepEqual(plan.listeners.update.map((l) => l.key), ['http://127.0.0.1:9911']);
  assert.deepEqual(plan.listeners.add, []);
  assert.deepEqual(plan.clients.replace.map((c) => c.url), ['ws://127.0.0.1:9802']);
  assert.deepEqual(plan.clients.add.map((c) => c.url), ['ws://127.0.0.1:9803']);
});

/** A logger that keeps its lines as objects. */
function recordingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: new Logger({ level: 'debug', format: 'json', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) }) };
}

test('reload: a loader that fails unexpectedly is logged as node.reload_failed (stack at debug), not thrown', async () => {
  const { log, lines } = recordingLogger();
  let applied = 0;
  const node = { reload: async (): Promise<void> => { applied++; } };
  await reload(node, '/etc/west.json', log, async () => { throw new TypeError('something nobody expected'); });
  assert.equal(applied, 0);
  const failed = lines.find((l) => l.event === 'node.reload_failed');
  assert.ok(failed, JSON.stringify(lines));
  assert.equal(failed.level, 'error');
  assert.match(String(failed.error), /something nobody expected/);
  const stack = lines.find((l) => l.event === 'node.reload_failed_stack');
  assert.equal(stack?.level, 'debug');
  assert.match(String(stack?.stack), /TypeError/);
});

test('ReloadQueue: a request during a reload waits for it; more requests fold into the one queued', async () => {
  const { log, lines } = recordingLogger();
  const order: string[] = [];
  const gates: (() => void)[] = [];
  let runs = 0;
  const queue = new ReloadQueue(async () => {
    const n = ++runs;
    order.push(`start ${n}`);
    await new Promise<void>((resolve) => gates.push(resolve));
    order.push(`end ${n}`);
    if (n === 1) throw new Error('the first one fails');
  }, log);
  queue.request();
  queue.request();
  queue.request();
  assert.equal(gates.length, 1, 'a second reload started while the first ran');
  at(gates, 0)();
  await waitFor('the queued reload to start', () => gates.length === 2, 2000);
  queue.request();
  at(gates, 1)();
  await waitFor('the third reload to start', () => gates.length === 3, 2000);
  at(gates, 2)();
  await queue.idle();
  assert.deepEqual(order, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
  assert.equal(lines.filter((l) => l.event === 'node.reload_queued').length, 2);
  assert.equal(lines.filter((l) => l.event === 'node.reload_failed').length, 1);
});
