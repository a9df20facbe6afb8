/** Pretty log lines: colours only when asked (never with NO_COLOR), failed requests stand out. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { colourOnTerminal, isoNow, LineBatch, Logger } from '../../src/log.js';

const ESC = '\u001b[';
const RED = `${ESC}31m`;
const YELLOW = `${ESC}33m`;

function lines(colour: boolean): { log: Logger; out: string[] } {
  const out: string[] = [];
  return { log: new Logger({ level: 'info', format: 'pretty', colour, write: (l) => out.push(l) }), out };
}

test('NO_COLOR set to anything turns colours off', () => {
  assert.equal(colourOnTerminal({ NO_COLOR: '1' }), false);
  assert.equal(colourOnTerminal({ NO_COLOR: 'true' }), false);
});

test('without colour, a pretty line has no escape sequence', () => {
  const { log, out } = lines(false);
  log.info('access', { status: 503, path: '/x' });
  log.error('node.stop_failed', { error: 'e' });
  for (const l of out) assert.ok(!l.includes(ESC), JSON.stringify(l));
});

test('with colour, access lines with 5xx are red, 4xx yellow, 2xx neither', () => {
  const { log, out } = lines(true);
  log.info('access', { status: 200, path: '/ok' });
  log.info('access', { status: 404, path: '/missing' });
  log.info('access', { status: 502, path: '/broken' });
  log.info('perform', { error: 'connect_refused', url: 'http://x/' });
  const [ok, missing, broken, failed] = out;
  assert.ok(!ok!.startsWith(RED) && !ok!.startsWith(YELLOW), JSON.stringify(ok));
  assert.ok(missing!.startsWith(YELLOW), JSON.stringify(missing));
  assert.ok(broken!.startsWith(RED), JSON.stringify(broken));
  assert.ok(failed!.startsWith(RED), JSON.stringify(failed));
});

test('LineBatch writes the lines of one turn in one write, in order, at the end of the turn', async () => {
  const writes: string[] = [];
  const batch = new LineBatch((text) => writes.push(text));
  try {
    batch.write('a');
    batch.write('b');
    assert.deepEqual(writes, []);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(writes, ['a\nb\n']);
    batch.write('c');
    batch.flush();
    assert.deepEqual(writes, ['a\nb\n', 'c\n']);
    batch.flush();
    assert.equal(writes.length, 2, 'nothing held, nothing written');
  } finally {
    batch.close();
  }
});

test('isoNow formats as toISOString does', () => {
  const start = Date.UTC(2026, 11, 31, 23, 59, 58, 990);
  for (const t of [0, 1, 999, 1000, start, start + 9, start + 10, start + 99, start + 100, start + 1010, start + 2345, Date.now()]) {
    assert.equal(isoNow(t), new Date(t).toISOString(), String(t));
  }
});

test('a JSON line: time, level, node and event first, then the fields as given, secrets redacted, undefined left out', () => {
  const lines: string[] = [];
  const log = new Logger({ level: 'info', format: 'json', node: 'n1', write: (l) => lines.push(l) });
  log.info('access', { id: 'x', status: 200, token: 'abc', gone: undefined, error: new Error('boom') });
  const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  assert.deepEqual(Object.keys(line), ['time', 'level', 'node', 'event', 'id', 'status', 'token', 'error']);
  assert.equal(line.token, '[redacted]');
  assert.equal(line.error, 'boom');
  assert.equal(line.event, 'access');
  assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});
