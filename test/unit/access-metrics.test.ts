import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { AccessMetrics } from '../../src/control/access-metrics.js';
import type { AccessRecord } from '../../src/events.js';

const BOUNDS = [0.001, 0.01, 1];

function record(durationMs: number, status = 200, bytes: { in?: number; out?: number } = {}, mapping = '/m'): AccessRecord {
  return {
    id: 'x', listener: 'http://127.0.0.1:1', mapping, method: 'GET', path: '/m', status, durationMs,
    bytesIn: bytes.in ?? 0, bytesOut: bytes.out ?? 0, client: '127.0.0.1', completed: true,
  };
}

/** The exposition lines of one metric family, without HELP/TYPE. */
async function lines(registry: Registry, prefix: string): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((l) => l.startsWith(prefix));
}

test('access metrics: a duration equal to a bound counts in that bucket (le), buckets are cumulative, +Inf holds all', async () => {
  const registry = new Registry();
  const m = new AccessMetrics(registry, BOUNDS);
  for (const ms of [1, 5, 10, 999, 61_000]) m.record(record(ms));
  const where = 'listener="http://127.0.0.1:1",mapping="/m"';
  assert.deepEqual(await lines(registry, 'west_request_duration_seconds_'), [
    `west_request_duration_seconds_bucket{le="0.001",${where}} 1`,
    `west_request_duration_seconds_bucket{le="0.01",${where}} 3`,
    `west_request_duration_seconds_bucket{le="1",${where}} 4`,
    `west_request_duration_seconds_bucket{le="+Inf",${where}} 5`,
    `west_request_duration_seconds_sum{${where}} ${(1 + 5 + 10 + 999 + 61_000) / 1000}`,
    `west_request_duration_seconds_count{${where}} 5`,
  ]);
});

test('access metrics: requests by status; bytes only where counted or named by the config', async () => {
  const registry = new Registry();
  const m = new AccessMetrics(registry, BOUNDS);
  m.known('http://127.0.0.1:1', '/named');
  m.record(record(1, 200, { out: 100 }));
  m.record(record(1, 200, { in: 7, out: 5 }));
  m.record(record(1, 404, {}, '-'));
  assert.deepEqual(await lines(registry, 'west_requests_total'), [
    'west_requests_total{listener="http://127.0.0.1:1",mapping="/m",status="200"} 2',
    'west_requests_total{listener="http://127.0.0.1:1",mapping="-",status="404"} 1',
  ]);
  assert.deepEqual(await lines(registry, 'west_request_bytes_total'), [
    'west_request_bytes_total{listener="http://127.0.0.1:1",mapping="/named",direction="in"} 0',
    'west_request_bytes_total{listener="http://127.0.0.1:1",mapping="/named",direction="out"} 0',
    'west_request_bytes_total{listener="http://127.0.0.1:1",mapping="/m",direction="in"} 7',
    'west_request_bytes_total{listener="http://127.0.0.1:1",mapping="/m",direction="out"} 105',
  ]);
});
