import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, formatBytes, formatDuration, plural } from '../../src/format.js';
import { isRecord } from '../../src/json.js';

test('formatDuration: two units at most, rounded down', () => {
  const cases: [number, string][] = [[-3, '0s'], [0, '0s'], [9.9, '9s'], [63, '1m 3s'], [3600 * 4 + 12 * 60 + 5, '4h 12m'], [86_400 * 2 + 3 * 3600 + 59, '2d 3h']];
  for (const [s, want] of cases) assert.equal(formatDuration(s), want, `${s} s`);
});

test('formatBytes: binary units, three significant digits', () => {
  const cases: [number, string][] = [[0, '0 B'], [1023, '1023 B'], [1536, '1.50 KiB'], [12.3 * 1024 * 1024, '12.3 MiB'], [500 * 1024 ** 3, '500 GiB'], [3 * 1024 ** 5, '3072 TiB']];
  for (const [n, want] of cases) assert.equal(formatBytes(n), want, `${n} bytes`);
});

test('formatAddress and plural', () => {
  assert.equal(formatAddress('127.0.0.1', 80), '127.0.0.1:80');
  assert.equal(formatAddress('::1', 80), '[::1]:80');
  assert.equal(formatAddress('10.0.0.1', undefined), '10.0.0.1');
  assert.equal(formatAddress(undefined, 80), '?');
  assert.equal(plural(1, 'node'), '1 node');
  assert.equal(plural(0, 'node'), '0 nodes');
});

test('isRecord: objects only', () => {
  assert.equal(isRecord({}), true);
  for (const v of [null, [], 'x', 1, undefined]) assert.equal(isRecord(v), false, JSON.stringify(v));
});
