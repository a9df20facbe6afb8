/**
 * Paths that walk out of a mapping's prefix once an origin decodes them (`/py/..%2fsecret.txt`
 * with `/py` -> `http://origin/x`): refused 400 at the listener and at the far end, before
 * anything is forwarded. The origin is python's http.server, which decodes `%2F` and then
 * resolves `..`, serving a directory that holds a secret file outside the mapped one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { silentLogger } from '../../src/log.js';
import type { OutgoingContext } from '../../src/proxy/far/attempt.js';
import { EgressPolicy } from '../../src/proxy/far/egress.js';
import { OriginPools } from '../../src/proxy/far/origins.js';
import { performRequest } from '../../src/proxy/far/perform.js';
import type { TunnelStream } from '../../src/tunnel/stream.js';
import { freePort, waitFor } from '../helpers/net.js';
import { body, failure, pair, resetCode, within, type Pair } from '../helpers/session-pair.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const SECRET = 'the secret outside /x\n';
const PUBLIC = 'public inside /x\n';

/** python3 -m http.server on 127.0.0.1, serving `root`; every request line it logs is kept. */
class PythonOrigin {
  readonly requests: string[] = [];
  private child: ChildProcess | undefined;
  port = 0;

  async start(root: string): Promise<void> {
    this.port = await freePort();
    this.child = spawn('python3', ['-u', '-m', 'http.server', String(this.port), '--bind', '127.0.0.1', '--directory', root], { stdio: ['ignore', 'ignore', 'pipe'] });
    let partial = '';
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      partial += c;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      // `127.0.0.1 - - [date] "GET /x/a HTTP/1.1" 200 -`
      for (const line of lines) {
        const m = /"([A-Z]+ \S+) HTTP\/[\d.]+"/.exec(line);
        if (m) this.requests.push(m[1]!);
      }
    });
    await waitFor('python http.server to listen', () => new Promise<boolean>((resolve) => {
      const s = net.connect(this.port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    }), 10_000, 50);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child?.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

/** GET with the target sent exactly as given (curl --path-as-is). */
function getAsIs(port: number, target: string): Promise<{ status: number; text: string; proxyStatus: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, proxyStatus: res.headers['proxy-status'] as string | undefined }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${target} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const py = new PythonOrigin();
let root = '';
let dir = '';
let cleanup: () => Promise<void> = async () => {};

before(async () => {
  ({ dir, cleanup } = await tempDir('west-paths-'));
  root = path.join(dir, 'www');
  await mkdir(path.join(root, 'x'), { recursive: true });
  await writeFile(path.join(root, 'secret.txt'), SECRET);
  await writeFile(path.join(root, 'x', 'public.txt'), PUBLIC);
  await writeFile(path.join(root, 'x', 'a b.txt'), 'spaced\n');
  await py.start(root);
});

after(async () => {
  await stopAll();
  await py.stop();
  await cleanup();
});

describe('at the listener', () => {
  let lp = 0;

  before(async () => {
    const sp = await freePort();
    lp = await freePort();
    const ou = `http://127.0.0.1:${py.port}/x`;
    const config = await writeConfig(dir, 'self.json', {
      west: { nm: 'self', egress: { '*': [ou] } },
      wsts: { sp: `ws://127.0.0.1:${sp}` },
      proxy: { [`http://127.0.0.1:${lp}`]: { ea: `ws://127.0.0.1:${sp}`, '/py': { ou } } },
    });
    const node = await WestProcess.start(config);
    await node.waitForEvent('tunnel.connected');
  });

  test('plain paths reach the origin byte for byte', async () => {
    const ok = await getAsIs(lp, '/py/public.txt');
    assert.equal(ok.status, 200);
    assert.equal(ok.text, PUBLIC);
    const spaced = await getAsIs(lp, '/py/a%20b.txt');
    assert.equal(spaced.status, 200);
    assert.ok(py.requests.includes('GET /x/a%20b.txt'), py.requests.join('\n'));
  });

  const refused = [
    '/py/..%2fsecret.txt', '/py/..%2Fsecret.txt', '/py/%2e%2e%2fsecret.txt', '/py/%2E%2E/secret.txt', '/py/.%2e/secret.txt',
    '/py/../secret.txt', '/py/./public.txt', '/py/..%5csecret.txt', '/py/..\\secret.txt', '/py/a%2fb', '/py/..;/secret.txt',
    '/py/public.txt/..',
  ];
  for (const target of refused) {
    test(`${target}: 400 bad_request, the origin sees nothing`, async () => {
      const before = py.requests.length;
      const res = await getAsIs(lp, target);
      assert.equal(res.status, 400, `${res.status} ${res.text}`);
      assert.match(res.proxyStatus ?? '', /"self"; error=http_request_error/);
      assert.doesNotMatch(res.text, /secret outside/);
      // Nothing was forwarded: a good request afterwards is the only one python logs.
      assert.equal((await getAsIs(lp, '/py/public.txt')).status, 200);
      assert.deepEqual(py.requests.slice(before), ['GET /x/public.txt']);
    });
  }

  test('a query may hold what a path may not', async () => {
    const res = await getAsIs(lp, '/py/public.txt?next=..%2f..%2fetc');
    assert.equal(res.status, 200);
    assert.equal(res.text, PUBLIC);
  });
});

describe('at the far end, from a tunnel peer', () => {
  let tunnel: Pair;
  let ctx: OutgoingContext;

  before(async () => {
    tunnel = await pair();
    const ou = `http://127.0.0.1:${py.port}/x`;
    ctx = {
      nodeName: 'far', egress: new EgressPolicy(new Map([['*', [ou]]])), responseTimeoutMs: 5000,
      log: silentLogger, origins: new OriginPools(2000),
    };
    tunnel.server.on('stream', (s: TunnelStream) => performRequest(s, 'near', ctx));
  });

  after(async () => {
    await tunnel.close();
    ctx.origins.close();
  });

  function open(url: string): TunnelStream {
    const stream = tunnel.client.openStream({ kind: 'http', method: 'GET', url, headers: [], hops: 1, to: '', id: `peer-${url}` });
    stream.end();
    return stream;
  }

  test('an allowed path is performed', async () => {
    const stream = open(`http://127.0.0.1:${py.port}/x/public.txt`);
    const [head] = await within(once(stream, 'response'), 'the response') as [{ status: number }];
    assert.equal(head.status, 200);
    assert.equal((await body(stream)).toString(), PUBLIC);
  });

  for (const tail of ['..%2fsecret.txt', '..%2Fsecret.txt', '%2e%2e/secret.txt', '..%5csecret.txt', '..\\secret.txt', '..;/secret.txt']) {
    test(`an OPEN for /x/${tail} is reset bad_request before the origin sees it`, async () => {
      const before = py.requests.length;
      const stream = open(`http://127.0.0.1:${py.port}/x/${tail}`);
      assert.equal(resetCode(await failure(stream)), 'bad_request');
      const ok = open(`http://127.0.0.1:${py.port}/x/public.txt`);
      ok.resume();
      await within(once(ok, 'end'), 'the good request');
      assert.deepEqual(py.requests.slice(before), ['GET /x/public.txt']);
    });
  }
});
