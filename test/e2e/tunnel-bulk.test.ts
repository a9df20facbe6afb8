/**
 * Bulk bodies through a real chain, over ws:// and over wss://, now that a bulk DATA message is
 * read in pieces ahead of ws's Receiver (src/tunnel/ws-reader.ts): uploads reach the far end
 * masked (the dialing side masks, the reader unmasks in place), downloads reach the near end
 * unmasked, several at once so their frames interleave on the tunnel. Every byte is hashed at
 * the other end; the tunnel stays up throughout (no protocol error, no redial).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { patternSha256 } from '../helpers/origin.js';
import { streamRequest } from '../helpers/stream.js';
import { tlsFixture } from '../helpers/tls-fixture.js';
import { WestProcess, writeConfig } from '../helpers/west.js';

const MiB = 1024 * 1024;
const WAIT_MS = 20_000;

const fx = tlsFixture('west-tunnel-bulk-');

/** A random body in blocks of odd sizes (so frames and reads fall anywhere), and its hash. */
function randomBody(n: number): { blocks: Buffer[]; sha256: string } {
  const blocks: Buffer[] = [];
  const hash = createHash('sha256');
  for (let left = n, i = 0; left > 0; i++) {
    const block = randomBytes(Math.min(left, 50_000 + (i * 7919) % 40_000));
    hash.update(block);
    blocks.push(block);
    left -= block.length;
  }
  return { blocks, sha256: hash.digest('hex') };
}

for (const scheme of ['ws', 'wss'] as const) {
  describe(`bulk bodies over ${scheme}://`, () => {
    let G: WestProcess;
    let L: WestProcess;
    let listener = '';

    before(async () => {
      const tls = scheme === 'wss' ? { cert: fx.pki.server.cert, key: fx.pki.server.key } : {};
      const gFile = await writeConfig(fx.dir, `bulk-G-${scheme}.json`, { west: { nm: `bulk-G-${scheme}` }, wsts: { sp: `${scheme}://127.0.0.1:0`, ...tls } });
      G = await WestProcess.start(gFile);
      const server = `${scheme}://127.0.0.1:${G.serverPort()}`;
      const key = 'http://127.0.0.1:0';
      const lFile = await writeConfig(fx.dir, `bulk-L-${scheme}.json`, {
        west: { nm: `bulk-L-${scheme}`, egress: {} },
        wstc: { [server]: scheme === 'wss' ? { ca: fx.pki.ca.cert } : {} },
        proxy: { [key]: { ea: server, '/bulk': { ou: `http://127.0.0.1:${fx.origin.port}/bulk` } } },
      });
      L = await WestProcess.start(lFile);
      listener = L.listenerUrl(key);
      await L.waitForEvent('tunnel.connected', undefined, WAIT_MS);
    });

    after(async () => {
      await Promise.all([L?.stop(), G?.stop()]);
    });

    test('large uploads (masked on the wire) and downloads at once arrive intact', async () => {
      const uploads = [randomBody(12 * MiB + 5), randomBody(7 * MiB + 3)];
      const downloads = [16 * MiB + 1, 9 * MiB + 77, 3 * MiB];
      const [up, down] = await Promise.all([
        Promise.all(uploads.map((u) => streamRequest(`${listener}/bulk/echo`, {
          method: 'POST', body: u.blocks, headers: { 'Content-Type': 'application/octet-stream' }, timeoutMs: 60_000,
        }))),
        Promise.all(downloads.map((n) => streamRequest(`${listener}/bulk/bytes/${n}`, { timeoutMs: 60_000, keepBytes: 0 }))),
      ]);
      up.forEach((res, i) => {
        assert.equal(res.status, 200, res.text);
        const seen = JSON.parse(res.text) as { bodyBytes: number; sha256: string };
        const sent = uploads[i]!;
        assert.equal(seen.bodyBytes, sent.blocks.reduce((n, b) => n + b.length, 0));
        assert.equal(seen.sha256, sent.sha256, `upload ${i} arrived altered`);
      });
      down.forEach((res, i) => {
        assert.equal(res.status, 200);
        assert.equal(res.bytes, downloads[i]);
        assert.equal(res.sha256, patternSha256(downloads[i]!), `download ${i} arrived altered`);
      });
      const trouble = [...G.events, ...L.events].filter((e) => e.event === 'tunnel.protocol_error' || e.event === 'tunnel.error' || e.event === 'tunnel.disconnected');
      assert.deepEqual(trouble, []);
    });
  });
}
