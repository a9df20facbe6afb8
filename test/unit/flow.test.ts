/**
 * Flow control that adapts, through a real session pair: a stream's receive window grows when
 * its reader drains it within a few round trips (RTT from the heartbeat's pings), never past
 * its cap, and not for a slow reader; the tunnel's own window (feature connection-window)
 * holds a sender back across streams; the node's budget cuts grants but every stream finishes;
 * a peer without the feature (a node of the previous release) still interoperates.
 * Time is a fake clock the test moves, so nothing here depends on how fast the machine is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RawData } from 'ws';
import { waitFor } from '../helpers/net.js';
import { body, head, pair, pattern, WAIT_MS, within, type Pair, type PairOptions } from '../helpers/session-pair.js';
import { decodeMessage } from '../../src/tunnel/frame.js';
import type { Feature } from '../../src/tunnel/features.js';
import { FlowBudget, RttEstimator } from '../../src/tunnel/flow.js';
import type { TunnelSession } from '../../src/tunnel/session.js';
import type { TunnelStream } from '../../src/tunnel/stream.js';

const KIB = 1024;
const WINDOW = 64 * KIB;
const CAP = 16 * WINDOW;

/** A clock that moves only when the test says so. */
class FakeClock {
  ms = 1000;
  readonly now = (): number => this.ms;
}

/**
 * A pair on a fake clock whose first RTT sample is `rttMs`: the pings both sessions send as
 * they start are answered after the clock has moved that far.
 */
async function timedPair(clock: FakeClock, rttMs: number, sides: PairOptions = {}, features?: readonly Feature[]): Promise<Pair> {
  const common = { clock: clock.now, maxRecvWindow: CAP, earlyPings: 1 };
  const p = await pair(WINDOW, features, { client: { ...common, ...sides.client }, server: { ...common, ...sides.server } });
  const sampled = Promise.all([p.client, p.server].map((s) => waitForRtt(s)));
  clock.ms += rttMs;
  await sampled;
  return p;
}

async function waitForRtt(session: TunnelSession): Promise<void> {
  await waitFor('an RTT sample', () => session.flow.rtt.smoothedMs !== undefined, WAIT_MS, 2);
}

/** The server answers each stream with `size` bytes of a pattern once the request ends. */
function serveBytes(p: Pair, size: number): void {
  p.server.on('stream', (s) => {
    s.resume();
    s.once('end', () => {
      s.respond({ status: 200, statusMessage: 'OK', headers: [] });
      s.end(pattern(size, 7));
    });
  });
}

test('flow: the RTT comes from the heartbeat\'s ping and pong, smoothed', async () => {
  const clock = new FakeClock();
  const p = await timedPair(clock, 40);
  try {
    assert.equal(p.client.flow.rtt.smoothedMs, 40);
    assert.equal(p.server.flow.rtt.smoothedMs, 40);
  } finally {
    await p.close();
  }
  const rtt = new RttEstimator();
  for (const ms of [100, 100, 20]) rtt.sample(ms);
  assert.equal(rtt.smoothedMs, 90, 'a new sample moves the estimate by an eighth of the difference');
});

test('flow: a reader that drains its window within the RTT has it grown, doubling up to the cap and never past it', async () => {
  const clock = new FakeClock();
  const p = await timedPair(clock, 50);
  try {
    serveBytes(p, 4 * CAP);
    const stream = p.client.openStream(head('fast', 'GET'));
    stream.end();
    // The clock stands still while the bytes flow: every window drains in "no time".
    const got = await body(stream);
    assert.ok(got.equals(pattern(4 * CAP, 7)));
    assert.equal(stream.window.peak, CAP, 'the window grew to the cap');
    assert.equal(p.client.flowState().streamWindowPeak, CAP, 'and the control port sees it');
    // The tunnel's window keeps ahead of its largest stream's (1.5x, within its own cap).
    assert.ok((p.client.flowState().connectionWindow ?? 0) >= 1.5 * CAP);
  } finally {
    await p.close();
  }
});

test('flow: the window grows only by what the cap allows, whatever the reader does', async () => {
  const clock = new FakeClock();
  const p = await timedPair(clock, 50, { client: { maxRecvWindow: 3 * WINDOW } });
  try {
    serveBytes(p, 2 * CAP);
    const stream = p.client.openStream(head('capped', 'GET'));
    stream.end();
    await body(stream);
    assert.equal(stream.window.peak, 3 * WINDOW);
  } finally {
    await p.close();
  }
});

test('flow: a slow reader\'s window does not grow', async () => {
  const clock = new FakeClock();
  const p = await timedPair(clock, 50);
  try {
    serveBytes(p, 8 * WINDOW);
    const stream = p.client.openStream(head('slow', 'GET'));
    stream.end();
    // Each chunk is read a second after the last: a window takes far longer than the RTT.
    stream.pause();
    let bytes = 0;
    const done = within(new Promise<void>((resolve) => stream.once('end', resolve)), 'the slow body');
    stream.on('readable', () => {
      for (;;) {
        clock.ms += 1000;
        const chunk = stream.read();
        if (chunk === null) break;
        bytes += chunk.length;
      }
    });
    await done;
    assert.equal(bytes, 8 * WINDOW);
    assert.equal(stream.window.peak, WINDOW, 'the window stayed where it started');
  } finally {
    await p.close();
  }
});

test('flow: without an RTT sample the window does not grow', async () => {
  const clock = new FakeClock();
  const p = await pair(WINDOW, undefined, { client: { clock: clock.now, maxRecvWindow: CAP, earlyPings: 1 }, server: { clock: clock.now, earlyPings: 1 } });
  try {
    // Drop whatever the first ping measured: no sample yet.
    p.client.flow.rtt.smoothedMs = undefined;
    p.client.flow.rtt.sample(Number.NaN);
    serveBytes(p, 8 * WINDOW);
    const stream = p.client.openStream(head('unmeasured', 'GET'));
    stream.end();
    // The pong may land during the transfer; whatever it says, the clock stood still: RTT 0.
    await body(stream);
    assert.equal(stream.window.peak, WINDOW);
  } finally {
    await p.close();
  }
});

/** Every frame one side receives, decoded, from its WebSocket. */
function recordFrames(p: Pair, side: 'client' | 'server'): { stream: number; type: string }[] {
  const seen: { stream: number; type: string }[] = [];
  const ws = side === 'client' ? p.clientWs : p.serverWs;
  ws.on('message', (data: RawData) => {
    for (const f of decodeMessage(data as Buffer)) seen.push({ stream: f.stream, type: f.type });
  });
  return seen;
}

test('flow: a peer of the previous release (no connection-window, fixed windows) gets no stream-0 frame and still interoperates both ways', async () => {
  const clock = new FakeClock();
  // The server plays the old node: it announces what the previous release did and never grows
  // its windows; the client (this version) hears that the peer announced nothing new.
  const old: Feature[] = ['informational', 'trailers'];
  const p = await pair(WINDOW, undefined, {
    client: { clock: clock.now, maxRecvWindow: CAP, earlyPings: 1, peerFeatures: new Set(old) },
    server: { clock: clock.now, earlyPings: 1, localFeatures: new Set(old) },
  });
  const toOld = recordFrames(p, 'server');
  try {
    const sampled = waitForRtt(p.client);
    clock.ms += 50;
    await sampled;
    // Uploads to the old node and downloads from it, both well over a window.
    p.server.on('stream', (s) => {
      void body(s).then((b) => { s.respond({ status: 200, statusMessage: 'OK', headers: [] }); s.end(Buffer.concat([b, b])); });
    });
    const stream = p.client.openStream(head('old'));
    const reply = body(stream);
    stream.end(pattern(6 * WINDOW, 3));
    const got = await reply;
    assert.ok(got.equals(Buffer.concat([pattern(6 * WINDOW, 3), pattern(6 * WINDOW, 3)])));
    assert.deepEqual(toOld.filter((f) => f.stream === 0), [], 'nothing on stream 0 reached the old node');
    assert.equal(p.client.flowState().connectionWindow, undefined);
    assert.equal(p.client.sendCredit(), Infinity, 'no tunnel window towards the old node');
    // Growing is the receiver's business: this side grew its window against the old sender.
    assert.ok(stream.window.peak > WINDOW, `the new side's window grew (${stream.window.peak})`);
  } finally {
    await p.close();
  }
});

test('flow: a request opened after the tunnel\'s streams needed a large window starts there, granted with its OPEN', async () => {
  const clock = new FakeClock();
  const p = await timedPair(clock, 50);
  const toServer = recordFrames(p, 'server');
  try {
    serveBytes(p, 4 * CAP);
    const first = p.client.openStream(head('first', 'GET'));
    first.end();
    await body(first);
    assert.equal(first.window.peak, CAP);
    await waitFor('the first stream\'s frames', () => toServer.some((f) => f.stream === first.id && f.type === 'end'), WAIT_MS, 2);
    assert.deepEqual(toServer.filter((f) => f.stream === first.id).slice(0, 2).map((f) => f.type), ['open', 'end'], 'the first opened at the initial window');
    const second = p.client.openStream(head('second', 'GET'));
    assert.equal(second.window.size, CAP, 'opened at what the first needed');
    assert.equal(second.window.credit, CAP, 'and granted at once');
    second.end();
    const got = await body(second);
    assert.ok(got.equals(pattern(4 * CAP, 7)));
    const frames = toServer.filter((f) => f.stream === second.id).map((f) => f.type);
    assert.deepEqual(frames.slice(0, 2), ['open', 'window'], 'a WINDOW right after the OPEN');
  } finally {
    await p.close();
  }
});

test('flow: a tunnel whose streams never needed more than the initial window opens new ones without a WINDOW', async () => {
  const clock = new FakeClock();
  const p = await timedPair(clock, 50);
  const toServer = recordFrames(p, 'server');
  try {
    serveBytes(p, WINDOW / 8); // under a quarter window: no grant, so no growth
    for (const name of ['a', 'b']) {
      const s = p.client.openStream(head(name, 'GET'));
      s.end();
      await body(s);
      assert.equal(s.window.peak, WINDOW);
    }
    await waitFor('both streams\' frames', () => toServer.filter((f) => f.type === 'end').length === 2, WAIT_MS, 2);
    assert.deepEqual(toServer.filter((f) => f.stream !== 0).map((f) => f.type), ['open', 'end', 'open', 'end']);
  } finally {
    await p.close();
  }
});

/** Streams the server holds unread, each with its window full. */
async function stalledStreams(p: Pair, n: number, stalled: TunnelStream[]): Promise<TunnelStream[]> {
  const mine: TunnelStream[] = [];
  for (let i = 0; i < n; i++) {
    const s = p.client.openStream(head(`stall-${i}`));
    s.on('error', () => {});
    s.write(pattern(2 * WINDOW, i));
    mine.push(s);
  }
  await waitFor('the stalled streams to fill their windows', () => stalled.length === n && stalled.every((s) => s.readableLength === WINDOW), WAIT_MS, 5);
  return mine;
}

test('flow: readers that stop reading do not hold the tunnel\'s window: another stream keeps moving', async () => {
  const p = await pair(WINDOW);
  try {
    const stalled: TunnelStream[] = [];
    let fast: TunnelStream | undefined;
    p.server.on('stream', (s) => {
      if (s.head?.url.includes('/stall-')) { s.pause(); stalled.push(s); return; }
      fast = s;
    });
    // The tunnel's window opens at 16 stream windows: 20 streams whose readers never read hold
    // more than all of it unread, each within its own window.
    const mine = await stalledStreams(p, 20, stalled);
    for (const s of mine) assert.equal(s.sendCredit, 0, 'each stalled stream used its own window');
    // The tunnel's window had those bytes back as they arrived.
    await waitFor('the tunnel\'s window to come back', () => p.client.sendCredit() >= 16 * WINDOW, WAIT_MS, 5);
    const next = p.client.openStream(head('next'));
    next.write(pattern(4 * WINDOW, 9));
    next.end();
    await waitFor('the far end to see the new stream', () => fast !== undefined, WAIT_MS, 5);
    assert.ok(fast);
    const got = await within(body(fast), 'the new stream\'s body while 20 readers stay stalled');
    assert.ok(got.equals(pattern(4 * WINDOW, 9)));
    assert.ok(stalled.every((s) => s.readableLength === WINDOW), 'the stalled readers still hold their bytes, unread');
  } finally {
    await p.close();
  }
});

test('flow: the budget cuts grants under many streams, never below the floor, and every stream completes', async () => {
  const clock = new FakeClock();
  const budget = new FlowBudget(4 * WINDOW, 16 * KIB);
  const calls: { want: number; holding: number; got: number }[] = [];
  const allow = budget.allow.bind(budget);
  budget.allow = (want, holding) => {
    const got = allow(want, holding);
    calls.push({ want, holding, got });
    return got;
  };
  const p = await timedPair(clock, 50, { client: { budget } });
  try {
    const n = 24;
    serveBytes(p, 6 * WINDOW);
    const streams = Array.from({ length: n }, (_, i) => p.client.openStream(head(`many-${i}`, 'GET')));
    for (const s of streams) s.end();
    const bodies = await within(Promise.all(streams.map((s) => body(s))), 'every body', 4 * WAIT_MS);
    for (const b of bodies) assert.ok(b.equals(pattern(6 * WINDOW, 7)));
    assert.ok(calls.some((c) => c.got < c.want), 'some grants were cut to fit the budget');
    for (const c of calls) assert.ok(c.got >= Math.min(c.want, budget.floor - c.holding), `a grant of ${c.got} fell below the floor (${JSON.stringify(c)})`);
    assert.equal(budget.committed, 0, 'finished streams give their share back');
  } finally {
    await p.close();
  }
});
