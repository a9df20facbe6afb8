/**
 * Rendezvous (west.access.rendezvous, doc/remote-access.md#rendezvous), with a real node: keys
 * from `POST /rendezvous` (token required), two WebSocket clients presenting one key are
 * spliced and move 100 MiB each way, hash-checked; a party nobody joins is dropped after
 * `pairWait` (measured); a third presenter is refused; waiting parties are capped per address;
 * a slow reader keeps the node's memory bounded (its RSS, as mesh-line.test.ts measures it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import WebSocket from 'ws';
import { fetchText, waitFor, rawUpgradeLine } from '../helpers/net.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const TOKEN = `cp-${randomBytes(16).toString('hex')}`;
const PAIR_WAIT_S = 0.6;
const LISTENER = 'http://127.0.0.1:0';
let node: WestProcess;
let configFile = '';
let configJson: { west: Record<string, unknown> } & Record<string, unknown>;
let cleanup = async (): Promise<void> => {};

before(async () => {
  let dir: string;
  ({ dir, cleanup } = await tempDir('west-rdv-'));
  configJson = {
    west: {
      nm: 'meet', cp: '127.0.0.1:0', cpToken: TOKEN,
      access: { rendezvous: [LISTENER], pairWait: PAIR_WAIT_S, maxWaitingPerAddress: 3 },
    },
    wsts: { sp: 'ws://127.0.0.1:0' },
    proxy: { [LISTENER]: { en: 'nobody' } },
  };
  configFile = await writeConfig(dir, 'rdv.json', configJson);
  node = await WestProcess.start(configFile);
});

after(async () => {
  await stopAll();
  await cleanup();
});

/** A fresh rendezvous key from the control port: its ws:// URL. */
async function newKey(): Promise<string> {
  const res = await fetchText(`${node.controlUrl()}/rendezvous`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 201, res.text);
  return (JSON.parse(res.text) as { url: string }).url;
}

/** Opens a WebSocket (subprotocol binary); resolves once open, rejects with the HTTP status when refused. */
function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'binary');
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => reject(new Error(`${res.statusCode}: ${body.trim()}`)));
    });
    ws.once('error', reject);
  });
}

const closed = (ws: WebSocket): Promise<{ code: number; at: number }> =>
  new Promise((resolve) => ws.once('close', (code) => resolve({ code, at: Date.now() })));

/** Sends `total` random bytes in 64 KiB messages, waiting whenever 1 MiB is queued; the SHA-256 of what was sent. */
async function sendAll(ws: WebSocket, total: number, progress = { sent: 0 }): Promise<string> {
  const pool = randomBytes(1024 * 1024 + 65_536);
  const hash = createHash('sha256');
  let sent = 0;
  let i = 0;
  while (sent < total) {
    const n = Math.min(65_536, total - sent);
    const off = (i++ * 7919) % (pool.length - n);
    const chunk = pool.subarray(off, off + n);
    hash.update(chunk);
    sent += n;
    progress.sent = sent;
    if (ws.bufferedAmount > 1024 * 1024) await new Promise<void>((r, j) => ws.send(chunk, (e) => (e ? j(e) : r())));
    else ws.send(chunk);
  }
  return hash.digest('hex');
}

/** Reads `total` bytes; `slow`: about 24 MiB/s, pausing the socket between messages. */
function receiveAll(ws: WebSocket, total: number, slow = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let got = 0;
    ws.on('message', (data: Buffer) => {
      hash.update(data);
      got += data.length;
      if (got >= total) resolve(hash.digest('hex'));
      else if (slow) {
        ws.pause();
        setTimeout(() => ws.resume(), Math.ceil(data.length / (24 * 1024)));
      }
    });
    ws.once('close', () => { if (got < total) reject(new Error(`closed after ${got} of ${total} bytes`)); });
  });
}

function rss(): number {
  const status = readFileSync(`/proc/${node.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

describe('rendezvous', () => {
  test('keys come from POST /rendezvous with the control token; without it, 401', async () => {
    const none = await fetchText(`${node.controlUrl()}/rendezvous`, { method: 'POST' });
    assert.equal(none.status, 401);
    const wrong = await fetchText(`${node.controlUrl()}/rendezvous`, { method: 'POST', headers: { Authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    const url = await newKey();
    assert.match(url, new RegExp(`^ws://127\\.0\\.0\\.1:${node.listenerUrl().split(':').at(-1) ?? ''}/rendezvous/[A-Za-z0-9_-]{43}$`));
  });

  test('a pair moves 100 MiB each way, hash-checked; a third presenter is refused', async () => {
    const url = await newKey();
    const a = await open(url);
    const b = await open(url);
    await assert.rejects(open(url), /^Error: 403: /, "a third presenter");
    const size = 100 * 1024 * 1024;
    const t0 = Date.now();
    const [aSent, bGot, bSent, aGot] = await Promise.all([sendAll(a, size), receiveAll(b, size), sendAll(b, size), receiveAll(a, size)]);
    const s = (Date.now() - t0) / 1000;
    console.log(`# rendezvous: 100 MiB each way through one node in ${s.toFixed(1)} s (${(200 / s).toFixed(0)} MiB/s both ways together)`);
    assert.equal(bGot, aSent);
    assert.equal(aGot, bSent);
    // Either side closing closes the other.
    const bClosed = closed(b);
    a.close(1000);
    assert.equal((await bClosed).code, 1000);
    await assert.rejects(open(url), /^Error: 403: /, 'a used key is gone');
  });

  test('a party nobody joins is dropped after pairWait (4410), measured', async () => {
    const url = await newKey();
    const t0 = Date.now();
    const a = await open(url);
    const { code, at } = await closed(a);
    const waited = at - t0;
    console.log(`# rendezvous: an unpaired party was dropped after ${waited} ms (pairWait ${PAIR_WAIT_S * 1000} ms)`);
    assert.equal(code, 4410);
    assert.ok(waited >= PAIR_WAIT_S * 1000 - 20, `dropped after ${waited} ms`);
    assert.ok(waited < PAIR_WAIT_S * 1000 + 1500, `dropped only after ${waited} ms`);
    await assert.rejects(open(url), /^Error: 403: /, 'the key went with it');
    await node.waitForEvent('session.unpaired');
  });

  test('parties waiting from one address are capped (maxWaitingPerAddress); unknown keys are refused', async () => {
    const urls = await Promise.all([newKey(), newKey(), newKey(), newKey()]);
    const waiting = await Promise.all(urls.slice(0, 3).map(open));
    await assert.rejects(open(urls[3] ?? ''), /^Error: 503: .*maxWaitingPerAddress/s);
    await Promise.all(waiting.map(closed));
    await assert.rejects(open(`${node.listenerUrl().replace('http', 'ws')}/rendezvous/${randomBytes(32).toString('base64url')}`), /^Error: 403: /);
    await assert.rejects(open(`${node.listenerUrl().replace('http', 'ws')}/rendezvous/short`), /^Error: 403: /);
  });

  test('an upgrade ws refuses (bad Sec-WebSocket-Version) gives its waiting place back at once, not after pairWait', async () => {
    const bad = await Promise.all([newKey(), newKey(), newKey()]);
    for (const url of bad) {
      const answer = await rawUpgradeLine(url, '7');
      assert.match(answer, /^HTTP\/1\.1 400 /, answer);
    }
    // Within pairWait of the three refusals: the cap of 3 from this address must not be full.
    const a = await open(await newKey());
    a.close();
    await closed(a);
  });

  test('a message over 1 MiB closes the sender (1009) and with it the pair', async () => {
    const url = await newKey();
    const a = await open(url);
    const b = await open(url);
    const aClosed = closed(a);
    const bClosed = closed(b);
    a.send(Buffer.alloc(2 * 1024 * 1024));
    assert.equal((await aClosed).code, 1009);
    await bClosed;
  });

  test('a reader that stops: the node stops reading the sender; what is in flight stays bounded, and so does RSS', async () => {
    const url = await newKey();
    const a = await open(url);
    const b = await open(url);
    b.pause();
    const before = rss();
    let peak = before;
    const timer = setInterval(() => { peak = Math.max(peak, rss()); }, 50);
    try {
      const size = 64 * 1024 * 1024;
      const progress = { sent: 0 };
      const sending = sendAll(a, size, progress);
      const receiving = receiveAll(b, size, true);
      // Wait until the sender is stuck: nothing more leaves it for half a second.
      let last = -1;
      let since = Date.now();
      await waitFor('the sender to stall', () => {
        const out = progress.sent - a.bufferedAmount;
        if (out !== last) { last = out; since = Date.now(); }
        return Date.now() - since > 500;
      }, 20_000, 50);
      console.log(`# rendezvous: with the reader stopped, ${(last / 1048576).toFixed(1)} MiB left the sender (kernel buffers both sides and the node's queue)`);
      assert.ok(last < 24 * 1024 * 1024, `${last} bytes left the sender while nobody read: the pair buffers without bound`);
      b.resume();
      const [sent, got] = await Promise.all([sending, receiving]);
      assert.equal(got, sent);
    } finally {
      clearInterval(timer);
    }
    console.log(`# rendezvous: node RSS ${(before / 1048576).toFixed(0)} MiB before, peak ${(peak / 1048576).toFixed(0)} MiB during a stalled then slow 64 MiB transfer`);
    assert.ok(peak < 150 * 1024 * 1024, `RSS peaked at ${peak} bytes`);
    a.close();
    await waitFor('the pair to close', () => b.readyState === WebSocket.CLOSED);
  });

  test('a reload that takes the listener out of west.access stops serving /rendezvous/ there (and issuing its keys)', async () => {
    const url = await newKey();
    const access = configJson.west.access as Record<string, unknown>;
    await writeFile(configFile, JSON.stringify({ ...configJson, west: { ...configJson.west, access: { ...access, rendezvous: [] } }, proxy: { [LISTENER]: { en: 'nobody', '/x': { ou: 'http://127.0.0.1:1/' } } } }));
    const reloads = node.events.filter((e) => e.event === 'node.reloaded').length;
    node.kill('SIGHUP');
    await waitFor('the reload', () => node.events.filter((e) => e.event === 'node.reloaded').length > reloads);
    await assert.rejects(open(url), /^Error: (404|503):/, 'the path is the listener\'s own again');
    const res = await fetchText(`${node.controlUrl()}/rendezvous`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 404);
  });
});
