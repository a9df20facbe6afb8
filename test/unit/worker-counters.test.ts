/** The other workers' /metrics counters at worker 0: live counts summed, an exited worker's kept. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MetricsJson } from '../../src/control/metrics.js';
import { WorkerCounters } from '../../src/workers/counters.js';

function requests(n: number, status = '200'): MetricsJson {
  return [{ name: 'west_requests_total', help: 'h', type: 'counter', aggregator: 'sum', values: [{ value: n, labels: { status } }] }] as unknown as MetricsJson;
}

function total(sets: MetricsJson[], status = '200'): number {
  let n = 0;
  for (const set of sets) for (const m of set) for (const v of m.values) if (v.labels.status === status) n += v.value;
  return n;
}

test('the latest counts of each worker replace its earlier ones', () => {
  const c = new WorkerCounters();
  c.set(1, requests(3));
  c.set(1, requests(5));
  c.set(2, requests(7));
  assert.equal(total(c.all()), 12);
});

test('an exited worker\'s counts stay; its successor counts from 0 on top of them', () => {
  const c = new WorkerCounters();
  c.set(1, requests(5));
  c.gone(1);
  assert.equal(total(c.all()), 5, 'kept after the worker exited');
  c.set(1, requests(2));
  assert.equal(total(c.all()), 7, 'the restarted worker adds to them: the sum never goes down');
  c.gone(1);
  c.set(1, [...requests(1), ...requests(4, '404')]);
  c.gone(1);
  assert.equal(total(c.all()), 8);
  assert.equal(total(c.all(), '404'), 4);
  assert.equal(c.all().length, 1, 'retired counts are folded into one set, not kept per exit');
});

test('a worker gone without a report changes nothing', () => {
  const c = new WorkerCounters();
  c.gone(3);
  assert.deepEqual(c.all(), []);
});
