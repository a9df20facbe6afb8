/**
 * The outbox a session packs a turn's frames into (src/tunnel/outbox.ts): whatever comes in,
 * what leaves is the same frames in the same order as encoding each one alone would give; small
 * frames share messages of at most BATCH_BYTES, bulk DATA leaves apart with its payload
 * uncopied, and bytes handed out in one turn are never rewritten by the next.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeMessage, encodeData, encodeEnd, encodeText, FrameType, HEADER_SIZE } from '../../src/tunnel/frame.js';
import { BATCH_BYTES, BULK_DATA, Outbox, SLAB_BYTES, type DataParts, type OutboxEntry } from '../../src/tunnel/outbox.js';

type Op =
  | { op: 'push'; frame: Buffer }
  | { op: 'data'; stream: number; payload: Buffer }
  | { op: 'pieces'; stream: number; pieces: Buffer[] }
  | { op: 'text'; stream: number; text: string }
  | { op: 'end'; stream: number };

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('é', '😀', '\ud800', 'a', '\n'), maxLength: 12 }),
  fc.integer({ min: 1000, max: 8000 }).map((n) => 'x'.repeat(n)),
);
const size = fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: BULK_DATA - 20, max: BULK_DATA + 20 }), fc.integer({ min: 1000, max: 40_000 }));
const bytes = size.map((n) => Buffer.alloc(n, n % 251));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('push' as const), frame: bytes.map((p) => encodeData(7, p)) }),
  fc.record({ op: fc.constant('data' as const), stream: fc.integer({ min: 1, max: 0xffff_ffff }), payload: bytes }),
  fc.record({ op: fc.constant('text' as const), stream: fc.integer({ min: 1, max: 0xffff_ffff }), text }),
  fc.record({ op: fc.constant('pieces' as const), stream: fc.integer({ min: 1, max: 0xffff_ffff }), pieces: fc.array(bytes, { minLength: 1, maxLength: 4 }) }),
  fc.record({ op: fc.constant('end' as const), stream: fc.integer({ min: 1, max: 0xffff_ffff }) }),
);

/** What the op would have queued before the outbox: the frame encoded on its own (text frames typed DATA, which decode whatever they hold). */
function alone(o: Op): Buffer {
  if (o.op === 'push') return o.frame;
  if (o.op === 'data') return encodeData(o.stream, o.payload);
  if (o.op === 'pieces') return encodeData(o.stream, Buffer.concat(o.pieces));
  if (o.op === 'end') return encodeEnd(o.stream);
  return encodeText(FrameType.data, o.stream, o.text);
}

function apply(box: Outbox, o: Op): void {
  if (o.op === 'push') box.push(o.frame);
  else if (o.op === 'data') box.data(o.stream, o.payload);
  else if (o.op === 'pieces') box.dataPieces(o.stream, o.pieces, o.pieces.reduce((n, p) => n + p.length, 0));
  else if (o.op === 'end') box.end(o.stream);
  else box.text(FrameType.data, o.stream, o.text);
}

const isParts = (e: OutboxEntry): e is DataParts => !Buffer.isBuffer(e);
const bodyOf = (e: DataParts): Buffer => Buffer.isBuffer(e.body) ? e.body : Buffer.concat(e.body);
const bytesOf = (e: OutboxEntry): Buffer => isParts(e) ? Buffer.concat([e.head, bodyOf(e)]) : e;

test('a turn leaves as the same frames, in order, packed in messages of at most BATCH_BYTES', () => {
  fc.assert(fc.property(fc.array(fc.array(op, { maxLength: 30 }), { minLength: 1, maxLength: 4 }), (turns) => {
    const box = new Outbox();
    const handedOut: { entry: Buffer; copy: Buffer }[] = [];
    for (const ops of turns) {
      if (ops.length % 3 === 2) box.release();
      for (const o of ops) apply(box, o);
      const expected = Buffer.concat(ops.map(alone));
      assert.equal(box.bytes, expected.length, 'bytes counts what was queued');
      assert.equal(box.empty, ops.length === 0);
      const entries = box.take();
      assert.equal(box.bytes, 0);
      assert.ok(box.empty);
      assert.deepEqual(Buffer.concat(entries.map(bytesOf)), expected, 'the same bytes in the same order');
      for (const e of entries) {
        // Each message is whole frames: the decoder takes it on its own.
        assert.doesNotThrow(() => decodeMessage(bytesOf(e)));
        if (isParts(e)) {
          assert.ok(bodyOf(e).length >= BULK_DATA, 'only bulk DATA leaves apart');
          const uncopied = (o: Op): boolean => (o.op === 'data' && o.payload === e.body) ||
            (o.op === 'pieces' && (Buffer.isBuffer(e.body) ? o.pieces.length === 1 && o.pieces[0] === e.body : e.body.every((p, i) => p === o.pieces[i])));
          assert.ok(ops.some(uncopied), 'a bulk payload is not copied');
        } else if (e.length > BATCH_BYTES) {
          assert.equal(decodeMessage(e).length, 1, 'a message past the batch size is one frame');
        }
        if (!isParts(e)) handedOut.push({ entry: e, copy: Buffer.from(e) });
      }
      // Bytes already handed to the socket must stay as they were while it writes them.
      for (const h of handedOut) assert.ok(h.entry.equals(h.copy), 'a message handed out is never rewritten');
    }
  }), { numRuns: 300, includeErrorInReport: true });
});

test('small frames of one turn share one message', () => {
  const box = new Outbox();
  box.text(FrameType.open, 1, 'http\nGET\nhttp://o/\n1\n\nid\n');
  box.push(encodeData(1, Buffer.from('x')));
  box.data(3, Buffer.from('hello'));
  const entries = box.take();
  assert.equal(entries.length, 1);
  assert.equal(decodeMessage(entries[0] as Buffer).length, 3);
});

test('a turn larger than a slab leaves as several messages of whole frames', () => {
  const box = new Outbox();
  const frames: Buffer[] = [];
  for (let i = 0; i < 3 * SLAB_BYTES / 100; i++) {
    const payload = Buffer.alloc(100 - HEADER_SIZE, i);
    box.data(i + 1, payload);
    frames.push(encodeData(i + 1, payload));
  }
  const entries = box.take() as Buffer[];
  assert.ok(entries.length >= 3 && entries.every((e) => e.length <= SLAB_BYTES));
  assert.deepEqual(Buffer.concat(entries), Buffer.concat(frames));
  for (const e of entries) assert.equal(decodeMessage(e).length * 100, e.length, 'whole frames');
});

test('an idle outbox lets its slab go, and what it handed out stays as it was', () => {
  const box = new Outbox();
  box.data(1, Buffer.from('first'));
  const [first] = box.take() as Buffer[];
  box.release();
  box.data(3, Buffer.from('second'));
  const [second] = box.take() as Buffer[];
  assert.deepEqual(first, encodeData(1, Buffer.from('first')));
  assert.deepEqual(second, encodeData(3, Buffer.from('second')));
});

test('a message closes before it would pass BATCH_BYTES', () => {
  const box = new Outbox();
  const payload = Buffer.alloc(BULK_DATA - 1 - HEADER_SIZE);
  const n = Math.ceil((BATCH_BYTES * 2) / (BULK_DATA - 1));
  for (let i = 0; i < n; i++) box.data(1, payload);
  const entries = box.take();
  for (const e of entries) assert.ok(Buffer.isBuffer(e) && e.length <= BATCH_BYTES);
  assert.equal(entries.reduce((sum, e) => sum + (e as Buffer).length, 0), n * (BULK_DATA - 1));
});
