/**
 * Redis through one hop of a tunnel: redis-server on a loopback port (`--save '' --appendonly
 * no`), a `tcp://` listener at the site whose target is the hub, and `redis-benchmark -q -n
 * 20000` (50 clients, every test it has) against the listener. Each test's figure must be
 * there and above zero; doc/benchmarks.md#redis-through-a-tcp-stream has figures of a run.
 *
 *   redis-benchmark -> site [tcp://] ==> hub -> redis-server
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { missingPrograms, startDaemon, stopDaemons } from '../helpers/daemon.js';
import { Mesh } from '../helpers/mesh.js';
import { freePort } from '../helpers/net.js';
import { run } from '../helpers/sshd.js';
import { tcpListenerAddress } from '../helpers/tcp.js';
import { tempDir } from '../helpers/west.js';

const skip = missingPrograms('redis-server', 'redis-benchmark');

describe('redis-benchmark through a tcp:// listener', { skip }, () => {
  let mesh: Mesh;
  let cleanup: () => Promise<void> = async () => {};
  let listener = { host: '', port: 0 };

  before(async () => {
    const t = await tempDir('west-tcp-redis-');
    cleanup = t.cleanup;
    const port = await freePort();
    await startDaemon('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', t.dir], port);
    mesh = await Mesh.launch(t.dir, [
      { name: 'hub', server: true, west: { egress: { site: [`tcp://127.0.0.1:${port}`] } } },
      { name: 'site', dials: ['hub'], proxy: { 'tcp://127.0.0.1:0': { en: 'hub', to: `127.0.0.1:${port}` } } },
    ]);
    await mesh.route('site', 'hub');
    listener = await tcpListenerAddress(mesh.proc('site'), 'tcp://127.0.0.1:0');
  });

  after(async () => {
    await mesh?.stopAll();
    await stopDaemons();
    await cleanup();
  });

  test('redis-benchmark -q -n 20000 completes every test through the tunnel', async () => {
    const r = await run('redis-benchmark', ['-h', listener.host, '-p', String(listener.port), '-q', '-n', '20000', '--csv'], 300_000);
    assert.equal(r.code, 0, r.stderr);
    // --csv: "test","rps","avg_latency_ms",...; one line per test.
    const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.split(',').map((c) => c.replace(/^"|"$/g, '')));
    const names = rows.map(([name]) => name);
    for (const want of ['PING_INLINE', 'SET', 'GET', 'INCR', 'LPUSH', 'LRANGE_600 (first 600 elements)', 'MSET (10 keys)']) assert.ok(names.includes(want), `${want} in ${names.join(', ')}`);
    for (const [name, rps] of rows) assert.ok(Number(rps) > 0, `${name ?? ''}: ${rps ?? ''} requests per second`);
    const records = mesh.proc('site').events.filter((e) => e.event === 'tcp.access');
    assert.ok(records.length >= 50, `${records.length} connections logged`);
    assert.ok(records.every((e) => e.outcome === 'closed' || e.outcome === 'reset'));
  });
});
