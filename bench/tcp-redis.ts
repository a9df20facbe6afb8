/**
 * Redis through a TCP stream (doc/benchmarks.md#redis-through-a-tcp-stream): `redis-benchmark
 * -q -n 20000` (50 clients, every test) against redis-server directly, then through one hop
 * (a `tcp://` listener at a site whose target is the hub, which connects to redis), and a
 * markdown table of both. Not part of `npm run bench` (a minute of load):
 *
 *   npm run build && node dist/bench/tcp-redis.js
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, stopDaemons } from '../test/helpers/daemon.js';
import { Mesh } from '../test/helpers/mesh.js';
import { freePort } from '../test/helpers/net.js';
import { tcpListenerAddress } from '../test/helpers/tcp.js';

type Figures = Map<string, { rps: number; p50: number }>;

function benchmark(port: number): Figures {
  const r = spawnSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-q', '-n', '20000', '--csv'], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`redis-benchmark exited with ${r.status}: ${r.stderr}`);
  const figures: Figures = new Map();
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
  for (const line of r.stdout.trim().split('\n').slice(1)) {
    const [name = '', rps = '', , , p50 = ''] = line.split(',').map((c) => c.replace(/^"|"$/g, ''));
    figures.set(name, { rps: Number(rps), p50: Number(p50) });
  }
  return figures;
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'west-bench-redis-'));
let mesh: Mesh | undefined;
try {
  const port = await freePort();
  await startDaemon('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], port);
  mesh = await Mesh.launch(dir, [
    { name: 'hub', server: true, west: { egress: { site: [`tcp://127.0.0.1:${port}`] }, heartbeat: 15 } },
    { name: 'site', dials: ['hub'], west: { heartbeat: 15 }, proxy: { 'tcp://127.0.0.1:0': { en: 'hub', to: `127.0.0.1:${port}` } } },
  ]);
  await mesh.route('site', 'hub');
  const listener = await tcpListenerAddress(mesh.proc('site'), 'tcp://127.0.0.1:0');
  const direct = benchmark(port);
  const west = benchmark(listener.port);
  const rows = [...direct].map(([name, d]) => {
    const w = west.get(name);
    return `| ${name} | ${Math.round(d.rps)} | ${w ? Math.round(w.rps) : '-'} | ${w ? `${Math.round((w.rps / d.rps) * 100)} %` : '-'} | ${d.p50.toFixed(3)} | ${w ? w.p50.toFixed(3) : '-'} |`;
  });
  process.stdout.write([
    `cpus: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}`,
    '',
    '| test | direct req/s | through west req/s | west/direct | direct p50 ms | west p50 ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n'));
} finally {
  await mesh?.stopAll();
  await stopDaemons();
  await rm(dir, { recursive: true, force: true });
}
