/**
 * How far a receive window grows at one grant (flow.ts), on its own, with a clock the test
 * moves: towards twice what the reader's rate moves in a round trip (not at all when the
 * window holds that already): the first time straight there, later by 2 to MAX_GROWTH_STEP
 * times; a stream opened at the size the tunnel learned (openAt); a step takes at most half
 * the budget's room; a slow reader's does not grow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowBudget, MAX_GROWTH_STEP, ReceiveWindow, RttEstimator, type ReceiveWindowOptions } from '../../src/tunnel/flow.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const START = 256 * KIB;

interface Rig { window: ReceiveWindow; clock: { ms: number }; rtt: RttEstimator; sizes: number[] }

function rig(rttMs: number, opts: Partial<ReceiveWindowOptions> = {}): Rig {
  const clock = { ms: 1000 };
  const rtt = new RttEstimator();
  rtt.sample(rttMs);
  const sizes: number[] = [];
  const window = new ReceiveWindow({ initial: START, max: 64 * MIB, rtt, clock: () => clock.ms, onGrow: (n) => sizes.push(n), ...opts });
  return { window, clock, rtt, sizes };
}

/** The peer sends `n` bytes, the reader takes them `tookMs` later, and the receiver grants. */
function drain(r: Rig, n: number, tookMs: number): number {
  assert.ok(r.window.onReceive(n), 'within credit');
  r.clock.ms += tookMs;
  r.window.onConsumed(n);
  return r.window.grant();
}

test('flow growth: the first growth goes straight to twice what the reader moves in a round trip, past MAX_GROWTH_STEP', () => {
  const r = rig(100);
  // A quarter window (64 KiB) in 3.125 ms: 20 MiB/s, 2 MiB per 100 ms round trip, so 4 MiB:
  // sixteen times the window, in one step.
  drain(r, START / 4, 3.125);
  assert.ok(16 > MAX_GROWTH_STEP);
  assert.deepEqual(r.sizes, [16 * START]);
  assert.equal(r.window.credit + r.window.unread, 16 * START, 'the extra is granted at once');
});

test('flow growth: later growths step at most MAX_GROWTH_STEP times over, however fast the reader', () => {
  const r = rig(100);
  drain(r, START / 4, 3.125);
  // A quarter of the grown window in 0.1 ms: the rate asks for far more than 8x.
  drain(r, (16 * START) / 4, 0.1);
  assert.deepEqual(r.sizes, [16 * START, 16 * START * MAX_GROWTH_STEP]);
});

test('flow growth: a reader whose rate asks for a little more than the window has it doubled', () => {
  const r = rig(100);
  // A quarter window in 40 ms: 1.6 MiB/s, 160 KiB per 100 ms round trip; twice that is more
  // than the window.
  drain(r, START / 4, 40);
  assert.deepEqual(r.sizes, [2 * START]);
});

test('flow growth: a reader the window already covers twice over does not grow it, fast as it is against the RTT', () => {
  const r = rig(100);
  // A quarter window in 80 ms: faster than 4 x 1/4 x RTT, but twice what it moves in a round
  // trip (160 KiB) fits in the window.
  drain(r, START / 4, 80);
  assert.deepEqual(r.sizes, []);
});

test('flow growth: the step follows the rate: twice what it moves in a round trip', () => {
  const r = rig(100);
  // A quarter window (64 KiB) in 12.5 ms: 5 MiB/s, 512 KiB per 100 ms round trip, so 1 MiB.
  drain(r, START / 4, 12.5);
  assert.deepEqual(r.sizes, [4 * START]);
});

test('flow growth: a slow reader\'s window does not grow', () => {
  const r = rig(10);
  for (let i = 0; i < 8; i++) drain(r, START / 4, 50);
  assert.deepEqual(r.sizes, []);
});

test('flow growth: a stream opened at the size its tunnel learned is granted the difference at once, and grows from there', () => {
  const r = rig(100);
  assert.equal(r.window.openAt(16 * MIB), 16 * MIB - START, 'the extra credit, to go with the OPEN');
  assert.deepEqual(r.sizes, [16 * MIB]);
  assert.equal(r.window.credit, 16 * MIB);
  // Nothing more to open at: a smaller or equal size, or a second call, grants nothing.
  assert.equal(r.window.openAt(8 * MIB), 0);
  assert.equal(r.window.openAt(16 * MIB), 0);
  // It counts as the first growth: later ones step.
  drain(r, 4 * MIB, 0.1);
  assert.deepEqual(r.sizes, [16 * MIB, 64 * MIB]);
});

test('flow growth: a stream is opened wide only before its first byte, within the cap and half the budget\'s room', () => {
  const late = rig(100);
  assert.ok(late.window.onReceive(1));
  assert.equal(late.window.openAt(16 * MIB), 0, 'bytes arrived: the window grows by its reader\'s rate from here');
  const capped = rig(100, { max: 1 * MIB });
  assert.equal(capped.window.openAt(32 * MIB), 1 * MIB - START);
  const budget = new FlowBudget(32 * MIB, 16 * KIB);
  const tight = rig(100, { budget });
  // The budget holds the initial window already: half of what is left on top of it, and no
  // more than a quarter of the budget is lent ahead of answers (8 MiB of 32).
  assert.equal(tight.window.openAt(4 * MIB), 4 * MIB - START, 'a small target: all of it');
  tight.window.close();
  assert.equal(budget.committed, 0, 'given back when the stream ends');
  assert.equal(budget.speculative, 0);
  const lent = rig(100, { budget });
  assert.equal(lent.window.openAt(32 * MIB), 8 * MIB, 'a quarter of the budget at most');
  assert.equal(budget.committed, START + 8 * MIB);
  lent.window.close();
  assert.equal(budget.committed, 0);
  const full = new FlowBudget(START, 16 * KIB);
  assert.equal(rig(100, { budget: full }).window.openAt(32 * MIB), 0, 'no room left: the initial window');
});

test('flow growth: streams opened wide share a quarter of the budget; their answers\' bytes give it back', () => {
  const budget = new FlowBudget(32 * MIB, 16 * KIB);
  // Requests never answered (or answered slowly): the first takes the whole lent share, the
  // rest open at the initial window, and the budget keeps three quarters for every other stream.
  const waiting = Array.from({ length: 12 }, () => rig(100, { budget }));
  const granted = waiting.map((r) => r.window.openAt(32 * MIB));
  assert.deepEqual(granted, [8 * MIB, ...Array.from({ length: 11 }, () => 0)]);
  assert.equal(budget.speculative, 8 * MIB);
  assert.ok(budget.room() >= 32 * MIB - 8 * MIB - 12 * START, 'most of the budget left for the others');
  // The first one's answer arrives: what it uses is no longer lent, and the next may borrow.
  const first = waiting[0]!;
  assert.ok(first.window.onReceive(3 * MIB));
  assert.equal(budget.speculative, 5 * MIB);
  const next = rig(100, { budget });
  assert.equal(next.window.openAt(32 * MIB), 3 * MIB);
  // Streams that end give back what they had not used.
  for (const r of [...waiting, next]) r.window.close();
  assert.equal(budget.speculative, 0);
  assert.equal(budget.committed, 0);
});

test('flow growth: a step takes at most half the budget\'s room, and needs room for a doubling', () => {
  const budget = new FlowBudget(2 * MIB, 16 * KIB);
  const r = rig(100, { budget });
  // At the grant the window holds the 3/4 of its credit not yet used: the room is 2 MiB less
  // that, and a step of 8x (to 2 MiB) is cut to half of it.
  drain(r, START / 4, 0.1);
  assert.deepEqual(r.sizes, [START + (2 * MIB - (3 * START) / 4) / 2]);
  const tight = new FlowBudget(START + START / 2, 16 * KIB);
  const t = rig(100, { budget: tight });
  drain(t, START / 4, 0.1);
  assert.deepEqual(t.sizes, [], 'no room for a doubling: no growth');
});

test('flow growth: judged against the least recent round trip, not one a busy event loop stretched', () => {
  // A loopback tunnel on a busy node: one ping took 10 ms, the link itself 0.2 ms.
  const r = rig(10);
  const rtt = r.rtt;
  rtt.sample(0.2);
  assert.equal(rtt.minMs, 0.2);
  assert.ok((rtt.smoothedMs ?? 0) > 8, 'the smoothed figure still shows the slow ping');
  // A quarter window in 1 ms: fast against 10 ms, slow against 0.2 ms. No growth.
  drain(r, START / 4, 1);
  assert.deepEqual(r.sizes, []);
  // The minimum is over the last few samples: a lasting change of path shows after them.
  for (let i = 0; i < 8; i++) rtt.sample(50);
  assert.equal(rtt.minMs, 50);
});

test('flow growth: a reader back from a pause, draining what waited for it, does not grow the window', () => {
  const r = rig(100);
  // The whole window arrives while the reader is away, then it reads it at once.
  assert.ok(r.window.onReceive(START));
  r.clock.ms += 1000;
  for (let i = 0; i < 4; i++) {
    r.window.onConsumed(START / 4);
    r.window.grant();
  }
  assert.deepEqual(r.sizes, [], 'bytes that waited unread say how fast the reader catches up, not the link');
  // Once caught up, a fast reader grows it again.
  drain(r, START / 4, 0.1);
  drain(r, START / 4, 0.1);
  assert.ok(r.sizes.length > 0);
});

test('flow growth: windows and grants are whole bytes, so the receiver never counts credit the peer does not have', () => {
  // A window whose size had a fraction granted the fraction too, and the wire carried whole
  // bytes: the receiver then counted 0.69 bytes of credit the sender did not have, and under
  // budget pressure waited for them to arrive before granting more (a stream stalled for good
  // in one wave of 1,000 downloads in about fifty).
  const budget = new FlowBudget(4 * MIB, 16 * KIB);
  let seed = 7;
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const windows = Array.from({ length: 8 }, () => rig(37.3, { budget }));
  const peerCredit = windows.map((r) => r.window.credit);
  for (let step = 0; step < 2000; step++) {
    const i = Math.floor(random() * windows.length);
    const r = windows[i]!;
    const n = Math.min(peerCredit[i]!, 1 + Math.floor(random() * 96 * KIB));
    if (n <= 0) continue;
    assert.ok(r.window.onReceive(n));
    peerCredit[i]! -= n;
    r.clock.ms += random() * 3.7;
    r.window.onConsumed(n);
    const granted = r.window.grant();
    assert.ok(Number.isInteger(granted), `grant ${granted}`);
    assert.ok(Number.isInteger(r.window.size), `size ${r.window.size}`);
    peerCredit[i]! += granted;
    assert.equal(r.window.credit, peerCredit[i], 'the receiver counts exactly the credit the peer has');
  }
  assert.ok(windows.some((r) => r.sizes.length > 0), 'some windows grew');
});
