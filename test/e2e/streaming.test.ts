/**
 * Streaming through real `west` processes: big bodies both ways over the three-hop chain
 * (sample/case4), many concurrent requests over one tunnel (sample/case2), a stalled transfer
 * that must not hold up others on the same tunnel, and cancellation when the client hangs up.
 * Bodies are generated and hashed on the fly; nothing waits on a fixed sleep.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { at } from '../helpers/at.js';
import { fetchText, waitFor } from '../helpers/net.js';
import { Origin, patternSha256 } from '../helpers/origin.js';
import { hashBody, openRequest, patternBody, startRequest, streamRequest } from '../helpers/stream.js';
import { startSamples, stopAll, tempDir } from '../helpers/west.js';

const MiB = 1024 * 1024;
const BIG = 50 * MiB;

interface PeerState { name: string; streams: number; streamsOpened: number; bytesIn: number; bytesOut: number }
interface NodeStateJson {
  server?: { peers: PeerState[] };
  tunnels: { url: string; connected: boolean; streams: number; connects: number }[];
}

/** A sample topology running on free ports, with its origin. */
interface RunningSample {
  origin: Origin;
  /** Port map, sample port -> the port in use. */
  port: (sample: number) => number;
  /** `/state.json` of the node whose control port was `cp` in the sample. */
  state: (sampleCp: number) => Promise<NodeStateJson>;
  close: () => Promise<void>;
}

/**
 * Starts `files` (tunnel servers first) with an origin on the sample's `originPort`, and
 * returns once each `[server, client]` pair of file indexes reports its tunnel connected.
 */
async function startSample(files: string[], originPort: number, tunnels: [number, number][]): Promise<RunningSample> {
  const tmp = await tempDir();
  const origin = new Origin();
  const close = async (): Promise<void> => {
    await stopAll();
    await origin.close();
    await tmp.cleanup();
  };
  try {
    const started = await startSamples(tmp.dir, files, { server: origin, samplePort: originPort });
    const { ports } = started;
    const nodes = files.map((f) => started.nodes.get(f)!);
    for (const [server, client] of tunnels) {
      await at(nodes, client).waitForEvent('tunnel.connected');
      await at(nodes, server).waitForEvent('tunnel.client_connected');
    }
    const port = (sample: number): number => ports.get(sample)!;
    const state = async (sampleCp: number): Promise<NodeStateJson> =>
      JSON.parse((await fetchText(`http://127.0.0.1:${port(sampleCp)}/state.json`)).text) as NodeStateJson;
    return { origin, port, state, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Streams in flight on every tunnel of a node, as its control port reports them. */
function openStreams(s: NodeStateJson): number {
  return (s.server?.peers ?? []).reduce((n, p) => n + p.streams, 0) + s.tunnels.reduce((n, t) => n + t.streams, 0);
}

describe('three-hop chain (case4: G:9981/baz -> L :9982/ba -> L2 performs :9983/a)', () => {
  let chain: RunningSample;
  let entry = '';
  /** Control ports of G, L, L2 in the sample. */
  const CONTROL = [9701, 9702, 9703];

  before(async () => {
    chain = await startSample(['case4/G.json', 'case4/L.json', 'case4/L2.json'], 9983, [[0, 1], [1, 2]]);
    entry = `http://127.0.0.1:${chain.port(9981)}/baz`;
  });

  after(async () => {
    await chain?.close();
  });

  /** Bytes G has received from L over their tunnel. */
  const bytesAtEntry = async (): Promise<number> => (await chain.state(9701)).server!.peers.reduce((n, p) => n + p.bytesIn, 0);

  it('streams a 50 MiB upload to the origin (chunked, from a generator)', async () => {
    const res = await streamRequest(`${entry}/upload?big=1`, {
      method: 'POST', body: patternBody(BIG), headers: { 'Content-Type': 'application/octet-stream' }, timeoutMs: 45_000,
    });
    assert.equal(res.status, 200, res.text);
    const seen = JSON.parse(res.text) as { bodyBytes: number; sha256: string; url: string };
    assert.equal(seen.url, '/a/upload?big=1');
    assert.equal(seen.bodyBytes, BIG);
    assert.equal(seen.sha256, patternSha256(BIG));
  });

  it('streams a 50 MiB download, every byte intact', async () => {
    const res = await streamRequest(`${entry}/bytes/${BIG}`, { timeoutMs: 45_000, keepBytes: 0 });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(BIG));
    assert.equal(res.bytes, BIG);
    assert.equal(res.sha256, patternSha256(BIG));
  });

  it('a paused 50 MiB download holds the chain back and does not hold up a small request', async (t) => {
    const order: string[] = [];
    const baseline = await bytesAtEntry();
    const big = await openRequest(`${entry}/bytes/${BIG}?paused=1`, { timeoutMs: 45_000 });
    try {
      assert.equal(big.res.statusCode, 200);
      big.res.once('end', () => order.push('big done'));
      // The client reads nothing: wait until the tunnel's byte count stops moving.
      let last = -1;
      const held = await waitFor('the paused download to stop moving through the tunnel', async () => {
        const now = await bytesAtEntry() - baseline;
        const still = now === last && now > 0;
        last = now;
        return still ? now : 0;
      }, 15_000, 100);
      t.diagnostic(`G received ${(held / MiB).toFixed(1)} MiB of the paused download before back-pressure held it`);
      assert.ok(held < BIG / 2, `back-pressure: G received ${held} of ${BIG} bytes while the client read nothing`);

      const small = await fetchText(`${entry}/small?while=paused`);
      order.push('small done');
      assert.equal(small.status, 200, small.text);
      assert.equal((JSON.parse(small.text) as { url: string }).url, '/a/small?while=paused');
      assert.equal(big.res.readableEnded, false);
      assert.ok(await bytesAtEntry() - baseline < BIG, 'the big download is still held back');

      const body = await hashBody(big.res, 0);
      assert.equal(body.bytes, BIG);
      assert.equal(body.sha256, patternSha256(BIG));
      assert.deepEqual(order, ['small done', 'big done']);
    } finally {
      big.req.destroy();
    }
  });

  it('a stalled origin response does not hold up a small request on the same tunnels', async () => {
    const stall = await openRequest(`${entry}/stall?n=1`);
    try {
      assert.equal(stall.res.statusCode, 200);
      stall.res.resume();
      const [first] = await once(stall.res, 'data') as [Buffer];
      assert.ok(first.length > 0);
      let stallEnded = false;
      stall.res.once('end', () => { stallEnded = true; });

      const small = await fetchText(`${entry}/small?while=stalled`);
      assert.equal(small.status, 200, small.text);
      assert.equal(stallEnded, false, 'the stalled response is still open');
    } finally {
      stall.req.destroy();
    }
    const seen = await waitFor('the origin to see the stalled request cancelled',
      () => chain.origin.seen.find((s) => s.url === '/a/stall?n=1' && s.aborted));
    assert.equal(seen.aborted, true);
  });

  it('a client that hangs up mid-download cancels the work at the origin and frees every hop', async () => {
    const dl = await openRequest(`${entry}/bytes/${BIG}?cancel=1`, { timeoutMs: 45_000 });
    let got = 0;
    try {
      assert.equal(dl.res.statusCode, 200);
      dl.res.on('data', (c: Buffer) => { got += c.length; });
      dl.res.resume();
      await waitFor('the first MiB of the download', () => got >= MiB);
    } finally {
      dl.req.destroy();
    }
    assert.ok(got < BIG);
    const seen = await waitFor('the origin to see the download cancelled',
      () => chain.origin.seen.find((s) => s.url === `/a/bytes/${BIG}?cancel=1` && s.done));
    assert.equal(seen.aborted, true, 'the origin response was cut off, not sent in full');
    for (const cp of CONTROL) {
      await waitFor(`node with sample control port ${cp} to release its streams`, async () => openStreams(await chain.state(cp)) === 0);
    }
  });

  it('a client that hangs up before any response cancels the pending origin request', async () => {
    const { req, response } = startRequest(`${entry}/hang?cancel=2`);
    let answered = false;
    response.then(() => { answered = true; }, () => { /* cancelled below, as intended */ });
    const seen = await waitFor('the origin to receive the hanging request', () => chain.origin.seen.find((s) => s.url === '/a/hang?cancel=2'));
    assert.equal(answered, false, 'no response yet');
    req.destroy();
    await waitFor('the origin to see the hanging request cancelled', () => seen.aborted);
    for (const cp of CONTROL) {
      await waitFor(`node with sample control port ${cp} to release its streams`, async () => openStreams(await chain.state(cp)) === 0);
    }
  });
});

describe('concurrent requests over one tunnel (case2: G:9931/pa -> L performs :9941/a)', () => {
  let sample: RunningSample;

  before(async () => {
    sample = await startSample(['case2/G.json', 'case2/L.json'], 9941, [[0, 1]]);
  });

  after(async () => {
    await sample?.close();
  });

  it('100 parallel requests all answer 200 with their own bodies', async () => {
    const base = `http://127.0.0.1:${sample.port(9931)}/pa`;
    const N = 100;
    const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
      if (i % 2 === 0) {
        const body = `request ${i} `.repeat(50 * (i + 1));
        const res = await fetchText(`${base}/echo?i=${i}`, { method: 'POST', body });
        assert.equal(res.status, 200, `#${i}: ${res.text}`);
        const seen = JSON.parse(res.text) as { url: string; sha256: string; bodyBytes: number };
        assert.equal(seen.url, `/a/echo?i=${i}`);
        assert.equal(seen.bodyBytes, Buffer.byteLength(body));
        assert.equal(seen.sha256, createHash('sha256').update(body).digest('hex'));
      } else {
        const n = 1000 + i * 9973;
        const res = await streamRequest(`${base}/bytes/${n}?i=${i}`, { keepBytes: 0 });
        assert.equal(res.status, 200, `#${i}`);
        assert.equal(res.bytes, n, `#${i} length`);
        assert.equal(res.sha256, patternSha256(n), `#${i} body`);
      }
      return i;
    }));
    assert.equal(results.length, N);
    assert.equal(sample.origin.seen.length, N);

    // All of them went over the one tunnel L dialed, never a second one.
    const g = await sample.state(9701);
    assert.equal(g.server!.peers.length, 1);
    assert.ok(at(g.server!.peers, 0).streamsOpened >= N, `streams opened on the tunnel: ${at(g.server!.peers, 0).streamsOpened}`);
    const l = await sample.state(9702);
    assert.equal(l.tunnels.length, 1);
    assert.equal(at(l.tunnels, 0).connects, 1);
  });
});
