import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../../src/tunnel/backoff.js';

const low = (): number => 0;
const high = (): number => 0.999;

const SEQUENCES: { name: string; floor: number; ceiling: number; random: () => number; want: number[] }[] = [
  { name: 'random 0 always gives the floor', floor: 100, ceiling: 1000, random: low, want: [100, 100, 100, 100, 100, 100, 100] },
  // caps 100, 200, 400, 800, 1000, ...; delay = round(floor + 0.999 * (cap - floor))
  { name: 'random 0.999 grows from the floor to just under the ceiling', floor: 100, ceiling: 1000, random: high, want: [100, 200, 400, 799, 999, 999, 999] },
  // caps 250, 500, 1000, 2000, 4000, 8000, 8000
  { name: 'random 0.999 over six doublings', floor: 250, ceiling: 8000, random: high, want: [250, 500, 999, 1998, 3996, 7992, 7992] },
  { name: 'a floor equal to the ceiling never moves', floor: 250, ceiling: 250, random: high, want: [250, 250, 250, 250] },
];

for (const c of SEQUENCES) {
  test(`Backoff: ${c.name}`, () => {
    const b = new Backoff(c.floor, c.ceiling, c.random);
    assert.deepEqual(c.want.map(() => b.next()), c.want);
  });
}

const BOUNDS: { name: string; random: () => number }[] = [
  { name: 'random 0', random: low },
  { name: 'random 0.999', random: high },
  { name: 'random 1 (beyond Math.random\'s range)', random: () => 1 },
  { name: 'Math.random', random: Math.random },
];

for (const c of BOUNDS) {
  test(`Backoff: 100 delays stay within [floor, ceiling] (${c.name})`, () => {
    const b = new Backoff(500, 30_000, c.random);
    const outside = Array.from({ length: 100 }, () => b.next()).filter((d) => !(Number.isInteger(d) && d >= 500 && d <= 30_000));
    assert.deepEqual(outside, []);
  });
}

test('Backoff: delays never decrease with a fixed random()', () => {
  const b = new Backoff(500, 30_000, high);
  const delays = Array.from({ length: 40 }, () => b.next());
  assert.deepEqual(delays, [...delays].sort((x, y) => x - y));
});

test('Backoff: reset() starts over from the floor', () => {
  const b = new Backoff(100, 1000, high);
  const first = [b.next(), b.next(), b.next(), b.next()];
  b.reset();
  const again = [b.next(), b.next(), b.next(), b.next()];
  assert.deepEqual(again, first);
});

test('Backoff: reset() sets attempts back to 0', () => {
  const b = new Backoff(100, 1000, high);
  for (let i = 0; i < 5; i++) b.next();
  b.reset();
  assert.equal(b.attempts, 0);
});

test('Backoff: attempts counts delays handed out', () => {
  const b = new Backoff(100, 1000, high);
  for (let i = 0; i < 3; i++) b.next();
  assert.equal(b.attempts, 3);
});

test('Backoff: a long outage stays at the ceiling (no overflow)', () => {
  const b = new Backoff(250, 8000, high);
  for (let i = 0; i < 10_000; i++) b.next();
  assert.equal(b.next(), 7992);
});

test('Backoff: the defaults start at 500 ms', () => {
  assert.equal(new Backoff(undefined, undefined, high).next(), 500);
});
