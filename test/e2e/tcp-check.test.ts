/**
 * `west check` understands `tcp://` listeners: it lists them per node, follows each through the
 * mesh to the node that connects, warns when that node's `west.egress` would refuse every
 * connection, and fails on a target no node answers to. Ports clash with http:// listeners.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, tempDir, writeConfig } from '../helpers/west.js';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
let files: string[] = [];

before(async () => {
  ({ dir, cleanup } = await tempDir('west-tcp-check-'));
  files = [
    await writeConfig(dir, 'hub.json', { west: { nm: 'hub', transit: { L: ['L2'] }, egress: {} }, wsts: { sp: 'ws://127.0.0.1:19801' } }),
    await writeConfig(dir, 'L2.json', { west: { nm: 'L2', relays: ['hub'], egress: { L: ['tcp://10.0.0.5:22'] } }, wstc: { 'ws://127.0.0.1:19801': {} } }),
    await writeConfig(dir, 'L.json', {
      west: { nm: 'L', egress: {} }, wstc: { 'ws://127.0.0.1:19801': {} },
      proxy: {
        'tcp://127.0.0.1:2222': { en: 'L2', to: '10.0.0.5:22' },
        'tcp://127.0.0.1:2223': { en: 'L2', to: '10.0.0.5:23' },
        'tcp://127.0.0.1:2224': { en: 'nowhere', to: '10.0.0.5:22' },
      },
    }),
  ];
});

after(async () => {
  await cleanup();
});

test('one file: its tcp listeners are listed', async () => {
  const r = await runCli(['check', files[2] ?? '']);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /tcp listener 127\.0\.0\.1:2222 -> to node L2 -> 10\.0\.0\.5:22\n/);
});

test('a deployment: each tcp listener followed to its node; egress refusals warned, unknown targets fail', async () => {
  const r = await runCli(['check', ...files]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /tcp listeners:\n {4}tcp 127\.0\.0\.1:2222 \(l\): l -> hub -> l2 -> 10\.0\.0\.5:22\n/i);
  assert.match(r.stdout, /tcp 127\.0\.0\.1:2223 \(l\): l -> hub -> l2 -> 10\.0\.0\.5:23 \(refused there\)/i);
  assert.match(r.stdout, /warning: .*L\.json: proxy\["tcp:\/\/127\.0\.0\.1:2223"\]\.to: tcp egress: every connection would be refused: L2's west\.egress does not list "tcp:\/\/10\.0\.0\.5:23" for L/i);
  assert.match(r.stdout, /error: .*L\.json: proxy\["tcp:\/\/127\.0\.0\.1:2224"\]\.en: unknown name: its connections reach no node/);
});
