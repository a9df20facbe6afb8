/**
 * Lookups a test expects to succeed: a missing item fails the test with a message that says
 * what was missing, where a non-null assertion would fail later with "cannot read properties
 * of undefined".
 */
import assert from 'node:assert/strict';

/** Item `i` of a list (negative counts from the end). */
export function at<T>(xs: readonly T[], i: number, what = 'item'): T {
  const x = xs.at(i);
  if (x === undefined) assert.fail(`expected ${what} ${i} in a list of ${xs.length}`);
  return x;
}

/** Entry `key` of a record. */
export function entry<T>(record: Readonly<Partial<Record<string, T>>>, key: string): T {
  const x = record[key];
  if (x === undefined) assert.fail(`expected an entry ${JSON.stringify(key)}`);
  return x;
}
