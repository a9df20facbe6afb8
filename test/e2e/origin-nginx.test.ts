/**
 * nginx (Debian's) as an origin through one hop, the far end reaching it with its own
 * HTTP/1.1 client: a static file (Content-Length, sendfile), the same file gzip-compressed on
 * the fly (chunked), HEAD, a conditional GET answered 304 and a 404, all compared byte for byte
 * with what nginx gives directly; then many requests, which share a few kept-alive connections.
 *
 *   client -> site [http listener] ==> hub -> nginx
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { missingPrograms, startDaemon, stopDaemons } from '../helpers/daemon.js';
import { Mesh } from '../helpers/mesh.js';
import { fetchText, freePort, type FetchResult } from '../helpers/net.js';
import { tempDir } from '../helpers/west.js';

const skip = missingPrograms('nginx');

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function nginxConf(dir: string, port: number): string {
  const at = (name: string): string => path.join(dir, name);
  return `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
pid ${at('nginx.pid')};
error_log ${at('error.log')} warn;
events { worker_connections 256; }
http {
  log_format conn '$connection $request';
  access_log ${at('access.log')} conn;
  client_body_temp_path ${at('client_body')};
  proxy_temp_path ${at('proxy')};
  fastcgi_temp_path ${at('fastcgi')};
  uwsgi_temp_path ${at('uwsgi')};
  scgi_temp_path ${at('scgi')};
  types { text/plain txt; application/octet-stream bin; }
  gzip on;
  gzip_types text/plain;
  gzip_min_length 0;
  gzip_proxied any;
  server {
    listen 127.0.0.1:${port};
    root ${at('www')};
  }
}
`;
}

describe('nginx as the origin of one hop', { skip }, () => {
  let mesh: Mesh;
  let cleanup: () => Promise<void> = async () => {};
  let direct = '';
  let proxied = '';
  let nginxDir = '';
  const binary = randomBytes(3 * 1024 * 1024 + 17);
  const text = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i} of a compressible text\n`).join(''));

  before(async () => {
    const t = await tempDir('west-nginx-origin-');
    cleanup = t.cleanup;
    const dir = nginxDir = path.join(t.dir, 'nginx');
    await mkdir(path.join(dir, 'www'), { recursive: true });
    await writeFile(path.join(dir, 'www', 'file.bin'), binary);
    await writeFile(path.join(dir, 'www', 'text.txt'), text);
    const port = await freePort();
    await writeFile(path.join(dir, 'nginx.conf'), nginxConf(dir, port));
    await startDaemon('nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], port);
    direct = `http://127.0.0.1:${port}`;
    mesh = await Mesh.launch(t.dir, [
      { name: 'hub', server: true },
      { name: 'site', dials: ['hub'], proxy: { 'http://127.0.0.1:0': { en: 'hub', '/': { ou: `${direct}/` } } } },
    ]);
    await mesh.route('site', 'hub');
    proxied = mesh.proc('site').listenerUrl();
  });

  after(async () => {
    await mesh?.stopAll();
    await stopDaemons();
    await cleanup();
  });

  /** The same request to nginx directly and through the hop. */
  async function both(p: string, opts: Parameters<typeof fetchText>[1] = {}): Promise<[FetchResult, FetchResult]> {
    return [await fetchText(`${direct}${p}`, opts), await fetchText(`${proxied}${p}`, opts)];
  }

  test('a static file (Content-Length) arrives byte for byte', async () => {
    const [d, p] = await both('/file.bin');
    assert.equal(p.status, 200);
    assert.equal(p.headers['content-length'], String(binary.length));
    assert.equal(sha256(p.body), sha256(binary));
    assert.equal(sha256(d.body), sha256(binary));
  });

  test('the same text gzip-compressed on the fly (chunked): the bytes nginx sends directly, and they unzip to the file', async () => {
    const [d, p] = await both('/text.txt', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(p.status, 200);
    assert.equal(p.headers['content-encoding'], 'gzip');
    assert.equal(d.headers['transfer-encoding'], 'chunked', 'nginx answers chunked when it compresses');
    assert.equal(p.headers['content-length'], undefined);
    assert.equal(sha256(p.body), sha256(d.body));
    assert.equal(sha256(gunzipSync(p.body)), sha256(text));
  });

  test('HEAD, a conditional GET (304) and a missing file (404) answer as nginx does', async () => {
    const [dh, ph] = await both('/file.bin', { method: 'HEAD' });
    assert.equal(ph.status, 200);
    assert.equal(ph.body.length, 0);
    assert.equal(ph.headers['content-length'], dh.headers['content-length']);
    const etag = dh.headers.etag;
    assert.ok(etag);
    const [, p304] = await both('/file.bin', { headers: { 'if-none-match': etag } });
    assert.equal(p304.status, 304);
    assert.equal(p304.body.length, 0);
    const [d404, p404] = await both('/nothing-here');
    assert.equal(p404.status, 404);
    assert.equal(sha256(p404.body), sha256(d404.body));
  });

  test('200 requests, 8 at a time, share kept-alive connections to nginx', async () => {
    const log = (): Promise<string[]> => readFile(path.join(nginxDir, 'access.log'), 'utf8').then((t) => t.trim().split('\n'));
    const before = (await log()).length;
    for (let round = 0; round < 25; round++) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => fetchText(`${proxied}/text.txt?round=${round}`)));
      for (const a of answers) assert.equal(sha256(a.body), sha256(text));
    }
    const lines = (await log()).slice(before).filter((l) => l.includes('/text.txt?round='));
    assert.equal(lines.length, 200);
    const connections = new Set(lines.map((l) => l.split(' ')[0]));
    assert.ok(connections.size <= 16, `200 requests came over ${connections.size} connections`);
  });
});
