/** The log-event catalogue and doc/operations.md's table of events say the same thing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LOG_EVENTS, levelsOf, type LogEvent } from '../../src/log-events.js';
import { ROOT } from '../helpers/west.js';

function documented(): Map<string, string> {
  const text = readFileSync(path.join(ROOT, 'doc', 'operations.md'), 'utf8');
  const start = text.indexOf('| event | level | what |');
  assert.ok(start >= 0, 'doc/operations.md has a table of log events');
  const rows = new Map<string, string>();
  for (const line of text.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const [name = '', level = ''] = line.split('|').slice(1).map((c) => c.trim());
    rows.set(name.replace(/`/g, ''), level);
  }
  return rows;
}

test('every log event is documented in doc/operations.md at its level, and nothing else is', () => {
  const rows = documented();
  const events = Object.keys(LOG_EVENTS) as LogEvent[];
  assert.deepEqual([...rows.keys()].sort(), [...events].sort());
  for (const e of events) assert.equal(rows.get(e), levelsOf(e).join(', '), `level of ${e}`);
});
