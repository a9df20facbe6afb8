/**
 * A client that stops reading a download holds it back all the way to the origin, through both
 * kinds of listener: the lean front (http://) and Node's server (https://, src/proxy/near/http.ts).
 * The chain then holds a bounded amount (socket buffers, a window per side), not the whole
 * answer; once the client reads again the download completes intact. Pipelined downloads on
 * one connection that reads nothing are held back too (an answer waiting its turn has no
 * socket yet, and Node keeps what it is given).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { waitFor } from '../helpers/net.js';
import { makeTestPki, pem, type TestPki } from '../helpers/tls.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;
const WAIT_MS = 20_000;
/**
 * What the chain may hold for a client that does not read: kernel buffers of four sockets (up
 * to 32 MiB of receive and 4 MiB of send buffer each here) and a window at each tunnel end.
 */
const HELD_AT_MOST = 192 * MiB;

/** An origin sending SIZE bytes (byte i = i % 256) as fast as its socket takes them, counting them. */
class CountingOrigin {
  /** Bytes written to every answer so far. */
  written = 0;
  private readonly server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': SIZE });
    const block = Buffer.alloc(64 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = i % 256;
    let sent = 0;
    const pump = (): void => {
      while (sent < SIZE && !res.destroyed) {
        sent += block.length;
        this.written += block.length;
        if (!res.write(block)) { res.once('drain', pump); return; }
      }
      res.end();
    };
    pump();
  });

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Polls `read` until it has not moved over a few polls in a row; returns where it stopped. */
async function settled(read: () => number): Promise<number> {
  let last = -1;
  let still = 0;
  await waitFor('the origin to stop sending', () => {
    const now = read();
    still = now === last ? still + 1 : 0;
    last = now;
    return still >= 5;
  }, WAIT_MS, 100);
  return last;
}

describe('a client that stops reading', () => {
  const origin = new CountingOrigin();
  let dir = '';
  let cleanup: (() => Promise<void>) | undefined;
  let pki: TestPki;
  let ca: Buffer;
  const urls = { http: '', https: '' };

  before(async () => {
    const originPort = await origin.listen();
    ({ dir, cleanup } = await tempDir('west-slow-client-'));
    pki = await makeTestPki(dir);
    ca = await pem(pki.ca.cert);
    const ou = `http://127.0.0.1:${originPort}/big`;
    const G = await WestProcess.start(await writeConfig(dir, 'G.json', { west: { nm: 'slow-G', egress: { 'slow-L': [ou] } }, wsts: { sp: 'ws://127.0.0.1:0' } }));
    const server = `ws://127.0.0.1:${G.serverPort()}`;
    const L = await WestProcess.start(await writeConfig(dir, 'L.json', {
      west: { nm: 'slow-L', egress: {} },
      proxy: {
        'http://127.0.0.1:0': { ea: server, '/d': { ou } },
        'https://127.0.0.1:0': { ea: server, cert: pki.server.cert, key: pki.server.key, '/d': { ou } },
      },
    }));
    urls.http = `${L.listenerUrl('http://127.0.0.1:0')}/d`;
    urls.https = `${L.listenerUrl('https://127.0.0.1:0')}/d`;
    await L.waitForEvent('tunnel.connected', undefined, WAIT_MS);
  });

  after(async () => {
    await stopAll();
    await origin.close();
    await cleanup?.();
  });

  for (const kind of ['http', 'https'] as const) {
    test(`over ${kind}://: the origin is held back, and the download completes once the client reads`, async () => {
      const get = kind === 'https' ? https.get : http.get;
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        get(urls[kind], kind === 'https' ? { ca } : {}, resolve).on('error', reject);
      });
      assert.equal(res.statusCode, 200);
      res.pause();
      const start = origin.written;
      const held = await settled(() => origin.written) - start;
      assert.ok(held < HELD_AT_MOST, `the origin sent ${held / MiB} MiB to a client that read nothing`);
      let got = 0;
      let wrong = -1;
      res.on('data', (c: Buffer) => {
        for (let i = 0; i < c.length && wrong < 0; i += 4093) if (c[i] !== (got + i) % 256) wrong = got + i;
        got += c.length;
      });
      res.resume();
      await new Promise<void>((resolve, reject) => { res.on('end', resolve); res.on('error', reject); });
      assert.equal(got, SIZE);
      assert.equal(wrong, -1, 'every byte in place');
    });
  }

  test('three downloads pipelined on one https:// connection that reads nothing are held back', async () => {
    const url = new URL(urls.https);
    const start = origin.written;
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca });
    socket.on('error', () => {}); // what the test asserts is the origin's count, not how the socket ends
    await once(socket, 'secureConnect');
    const get = `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`;
    socket.write(get + get + get);
    socket.pause();
    try {
      const held = await settled(() => origin.written) - start;
      assert.ok(held < HELD_AT_MOST, `the origin sent ${held / MiB} MiB for three answers a client read none of`);
    } finally {
      socket.destroy();
    }
  });
});
