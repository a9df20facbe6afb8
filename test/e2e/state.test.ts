/**
 * `west state http://host:cp` against a real running node: its tunnel server and peer, a
 * connected and a down tunnel, listeners with their mappings and status counts; `--json`; and
 * one clear line (exit 1) when the address is not a west control port.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { at } from '../helpers/at.js';
import type { NodeState } from '../../src/control/state.js';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { CLI, retryIfPortTaken, ROOT, runCli, stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

type PublishedState = Omit<NodeState, 'raw'>;

const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

let cleanup: () => Promise<void>;
let origin: Origin;
let node: WestProcess;
const ports = { cp: 0, sp: 0, up: 0, down: 0, dead: 0, originPort: 0 };
let cpUrl: string;

async function state(): Promise<PublishedState> {
  return JSON.parse((await fetchText(`${cpUrl}/state.json`)).text) as PublishedState;
}

before(async () => {
  const made = await tempDir('west-state-');
  cleanup = made.cleanup;
  origin = new Origin();
  ports.originPort = await origin.listen();
  // One node that tunnels to itself (as the demo does), plus a tunnel to a server that is not
  // there and a listener whose peer never connects. The control port and the first listener
  // are the OS's pick; the tunnel server is named by the node's own `ea`, and the second
  // listener needs a key of its own, so those are picked before the start.
  node = await retryIfPortTaken(async () => {
    for (const k of ['sp', 'down', 'dead'] as const) ports[k] = await freePort();
    return WestProcess.start(await writeConfig(made.dir, 'node.json', {
      west: { nm: 'ws://state.example', cp: '127.0.0.1:0' },
      wsts: { sp: `ws://127.0.0.1:${ports.sp}` },
      wstc: { [`ws://127.0.0.1:${ports.dead}`]: {} },
      proxy: {
        'http://127.0.0.1:0': {
          ea: `ws://127.0.0.1:${ports.sp}`,
          '/o': { ou: `http://127.0.0.1:${ports.originPort}/o` },
          '/ca': { ou: `http://127.0.0.1:${ports.originPort}/ca`, ca: ['127.0.0.1'] },
        },
        [`http://127.0.0.1:${ports.down}`]: { en: 'absent-peer', '/p': { ou: `http://127.0.0.1:${ports.originPort}/p` } },
      },
    }));
  });
  ports.cp = node.bound().control!;
  ports.up = node.bound().listeners.get('http://127.0.0.1:0')!;
  cpUrl = `http://127.0.0.1:${ports.cp}`;
  await waitFor('the tunnel to itself', async () => (await state()).tunnels.some((t) => t.connected));
  await waitFor('the dead tunnel to report an error', async () => (await state()).tunnels.some((t) => t.lastError !== undefined));

  const up = `http://127.0.0.1:${ports.up}`;
  for (const p of ['/o/echo', '/o/echo', '/o/status/404']) assert.ok([200, 404].includes((await fetchText(up + p)).status));
  assert.equal((await fetchText(`http://127.0.0.1:${ports.down}/p`)).status, 503);
  await waitFor('four finished requests', async () => (await state()).listeners.reduce((n, l) => n + Object.values(l.statuses).reduce((a, b) => a + b, 0), 0) === 4);
});

after(async () => {
  await stopAll();
  await origin.close();
  await cleanup();
});

describe('west state on a running node', () => {
  test('prints the node, its tunnel server and peer, both tunnels, listeners and counts', async () => {
    const r = await runCli(['state', cpUrl], 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const out = r.stdout;
    const line = (re: RegExp): void => assert.match(out, re, out);
    line(new RegExp(`^node ws://state\\.example: west ${version.replace(/\./g, '\\.')}, pid ${node.child.pid}, up [0-9dhms ]+ \\(started \\d{4}-`, 'm'));
    line(new RegExp(`^control port 127\\.0\\.0\\.1:${ports.cp}$`, 'm'));
    line(new RegExp(`^tunnel server ws://127\\.0\\.0\\.1:${ports.sp}: 1 peer connected$`, 'm'));
    line(/^ {2}ws:\/\/state\.example from 127\.0\.0\.1:\d+ since \S+ \([0-9dhms ]+ ago\), streams 0 \(\d+ opened\), in \d/m);
    line(/^tunnels: 1 of 2 connected$/m);
    line(new RegExp(`^ {2}ws://127\\.0\\.0\\.1:${ports.sp} as ws://state\\.example: connected to \\S+ at 127\\.0\\.0\\.1:${ports.sp} since `, 'm'));
    line(new RegExp(`^ {2}ws://127\\.0\\.0\\.1:${ports.dead} as ws://state\\.example: DOWN \\(\\w+\\), connects 0$`, 'm'));
    line(/^ {4}last error: .*ECONNREFUSED/m);
    line(/^listeners: 2$/m);
    line(new RegExp(`^ {2}127\\.0\\.0\\.1:${ports.up} -> ea ws://127\\.0\\.0\\.1:${ports.sp} \\(connected\\)$`, 'm'));
    line(/^ {4}requests 3, in flight 0; statuses 200: 2, 404: 1$/m);
    line(new RegExp(`^ {4}/o -> http://127\\.0\\.0\\.1:${ports.originPort}/o$`, 'm'));
    line(new RegExp(`^ {4}/ca -> http://127\\.0\\.0\\.1:${ports.originPort}/ca \\(ca 127\\.0\\.0\\.1\\)$`, 'm'));
    line(new RegExp(`^ {2}127\\.0\\.0\\.1:${ports.down} -> en absent-peer \\(NOT connected\\)$`, 'm'));
    line(/^ {4}requests 1, in flight 0; statuses 503: 1$/m);
    line(/^requests: 4, in flight 0; statuses 200: 2, 404: 1, 503: 1$/m);
  });

  test('--json prints /state.json as the node serves it', async () => {
    const r = await runCli(['state', '--json', cpUrl], 30_000);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as PublishedState;
    const live = await state();
    assert.equal(printed.name, 'ws://state.example');
    assert.equal(printed.pid, live.pid);
    assert.deepEqual(printed.listeners.map((l) => [l.key, l.statuses]), live.listeners.map((l) => [l.key, l.statuses]));
    assert.deepEqual(printed.tunnels.map((t) => [t.url, t.connected]), live.tunnels.map((t) => [t.url, t.connected]));
    assert.equal('raw' in printed, false);
  });

  for (const form of ['host:port', ':port', 'http://host:port/'] as const) {
    test(`the control port may be given as ${form}`, async () => {
      const target = form === 'host:port' ? `127.0.0.1:${ports.cp}` : form === ':port' ? `:${ports.cp}` : `${cpUrl}/`;
      const r = await runCli(['state', target], 30_000);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^node ws:\/\/state\.example: /);
    });
  }
});

describe('west state on something that is not a west control port', { concurrency: 4 }, () => {
  /** Runs `west state <args>` and checks it failed with exactly one line on stderr matching `re`. */
  async function failsWith(args: string[], re: RegExp): Promise<void> {
    const r = await runCli(['state', ...args], 30_000);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.stdout, '');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(at(lines, 0), /^west state: /);
    assert.match(at(lines, 0), re);
  }

  test('nothing listens there: connection refused', async () => {
    const port = await freePort();
    await failsWith([`http://127.0.0.1:${port}`], new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/state\\.json: connection refused`));
  });

  test('a proxy listener instead of the control port: it answered 404', async () => {
    await failsWith([`http://127.0.0.1:${ports.up}`], /answered 404; is 127\.0\.0\.1:\d+ a west control port \(west\.cp\)\?/);
  });

  test('an HTTP server that answers JSON, but not a node state', async () => {
    await failsWith([`http://127.0.0.1:${ports.originPort}`], /did not answer with a west node's state/);
  });

  test('a server that accepts and never answers: a bounded wait', async () => {
    const held = new Set<net.Socket>();
    const silent = net.createServer((socket) => { held.add(socket); });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      await failsWith(['--timeout', '0.3', `127.0.0.1:${port}`], /no answer from 127\.0\.0\.1:\d+ within 0\.3 s/);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('a control port that wants a token: says so, and WEST_CP_TOKEN is sent as a bearer token', async () => {
    const minimal = { name: 'guarded', version, pid: 1, startedAt: new Date().toISOString(), uptimeS: 3, control: undefined, server: undefined, tunnels: [], listeners: [] };
    const guarded = http.createServer((req, res) => {
      const ok = req.headers.authorization === 'Bearer s3cret';
      res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' });
      res.end(ok ? JSON.stringify(minimal) : '{"error":"token required"}');
    });
    await new Promise<void>((resolve) => guarded.listen(0, '127.0.0.1', resolve));
    const target = `127.0.0.1:${(guarded.address() as net.AddressInfo).port}`;
    try {
      await failsWith([target], /answered 401: the control port wants a token \(west\.cpToken\); put it in WEST_CP_TOKEN/);
      const r = await runWithEnv(['state', target], { WEST_CP_TOKEN: 's3cret' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^node guarded: west /);
      assert.match(r.stdout, /^tunnels: none$/m);
      assert.match(r.stdout, /^requests: 0, in flight 0; statuses none$/m);
    } finally {
      guarded.closeAllConnections();
      await new Promise<void>((resolve) => guarded.close(() => resolve()));
    }
  });

  test('a real node with west.cpToken: refused without WEST_CP_TOKEN, shown with it', async () => {
    const { dir, cleanup: done } = await tempDir('west-state-token-');
    try {
      const file = await writeConfig(dir, 'guarded.json', { west: { nm: 'guarded-node', cp: '127.0.0.1:0', cpToken: 'n0de-t0ken' } });
      const guarded = await WestProcess.start(file);
      const cp = guarded.bound().control!;
      await failsWith([`:${cp}`], /answered 401: the control port wants a token/);
      const r = await runWithEnv(['state', `:${cp}`], { WEST_CP_TOKEN: 'n0de-t0ken' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^node guarded-node: west /);
      await guarded.stop();
    } finally {
      await done();
    }
  });

  test('not an http:// address', async () => {
    await failsWith(['ftp://127.0.0.1:21'], /is not an http:\/\/ address/);
  });
});

/** `west <args>` with extra environment variables (runCli passes none), bounded. */
function runWithEnv(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}
