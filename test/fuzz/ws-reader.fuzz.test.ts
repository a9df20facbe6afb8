/**
 * The tunnel's WebSocket reader (src/tunnel/ws-reader.ts) against ws's Receiver alone (the
 * oracle), on random sequences of WebSocket frames split at random points: bulk DATA messages
 * (some malformed: stream 0, a wrong length, another type, too long), packed small frames,
 * fragmented messages with pings and pongs between the fragments, masked or not as the side
 * requires (zero masks too), and a last bad frame (reserved bits, unknown opcodes, fragmented or
 * long control frames, the wrong masking, a 2^63 length, just over maxPayload, text, a close).
 * Both must give the same west frames with the same payloads, the same pings and pongs, the
 * same close and the same error with its close code; bulk payloads come in few small pieces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Writable } from 'node:stream';
import * as wsModule from 'ws';
import { decodeMessage, encodeData, encodeEnd, encodeWindow, FrameError, FrameType, HEADER_SIZE } from '../../src/tunnel/frame.js';
import { MAX_MESSAGE } from '../../src/tunnel/handshake.js';
import { MAX_VIEWS, MIN_PIECE, WsFrameReader } from '../../src/tunnel/ws-reader.js';
import { fuzzParameters } from '../helpers/fuzz.js';
import { wsFrame } from '../helpers/ws-frames.js';

type Event = string;

function dataEvent(stream: number, payload: Buffer): Event {
  return `data ${stream} ${payload.length} ${createHash('sha256').update(payload).digest('hex').slice(0, 16)}`;
}

function errorEvent(err: Error): Event {
  const status = Object.getOwnPropertySymbols(err).map((s) => (err as unknown as Record<symbol, unknown>)[s]).find((v) => typeof v === 'number');
  return `error ${(err as { code?: string }).code} ${status} ${err.message}`;
}

function messageEvents(data: Buffer, binary: boolean): Event[] {
  if (!binary) return ['text'];
  try {
    return decodeMessage(data, 3).map((f) => f.type === 'data' ? dataEvent(f.stream, f.data) : JSON.stringify(f));
  } catch (err) {
    if (err instanceof FrameError) return [`bad message: ${err.message}`];
    throw err;
  }
}

/** ws's Receiver (exported by ws, not typed by @types/ws). */
const Receiver = (wsModule as unknown as { Receiver: new (opts: object) => Writable }).Receiver;

function receiver(isServer: boolean, events: Event[]): Writable {
  const r = new Receiver({ isServer, maxPayload: MAX_MESSAGE, binaryType: 'nodebuffer' });
  r.on('message', (data: Buffer, binary: boolean) => events.push(...messageEvents(data, binary)));
  r.on('ping', (data: Buffer) => events.push(`ping ${data.toString('hex')}`));
  r.on('pong', (data: Buffer) => events.push(`pong ${data.toString('hex')}`));
  r.on('conclude', (code: number, reason: Buffer) => events.push(`close ${code} ${reason.toString()}`));
  r.on('error', (err: Error) => events.push(errorEvent(err)));
  return r;
}

/** Feeds `chunks` to ws's Receiver alone: the events it gives, once any error has been emitted. */
async function oracle(isServer: boolean, chunks: Buffer[]): Promise<Event[]> {
  const events: Event[] = [];
  const r = receiver(isServer, events);
  let concluded = false;
  r.on('conclude', () => { concluded = true; });
  // As ws does: nothing more is read once the close frame has been, or a frame refused.
  for (const c of chunks) if (!concluded && r.errored === null) r.write(Buffer.from(c));
  await new Promise((resolve) => setImmediate(resolve));
  return events;
}

interface Subject { events: Event[]; smallPieces: number; bigPieces: number; frames: number; maxPieceObjects: number }

/** Feeds `chunks` to the reader in front of a Receiver, as ws-link.ts does. */
export async function throughReader(isServer: boolean, chunks: Buffer[], whole = false): Promise<Subject> {
  const events: Event[] = [];
  const r = receiver(isServer, events);
  const out: Subject = { events, smallPieces: 0, bigPieces: 0, frames: 0, maxPieceObjects: 0 };
  let current: { index: number; stream: number; pieces: Buffer[]; length: number } | undefined;
  const reader = new WsFrameReader(r, {
    dataHead: (stream, length) => {
      out.frames++;
      events.push('');
      current = { index: events.length - 1, stream, pieces: [], length };
      return whole;
    },
    dataPiece: (piece) => {
      assert.ok(current, 'a piece without a head');
      current.pieces.push(Buffer.from(piece));
      if (piece.length < MIN_PIECE) out.smallPieces++;
      else out.bigPieces++;
      const payload = Buffer.concat(current.pieces);
      assert.ok(payload.length <= current.length, 'pieces ran past their frame');
      events[current.index] = dataEvent(current.stream, payload);
      out.maxPieceObjects = Math.max(out.maxPieceObjects, current.pieces.length);
    },
  }, { isServer, maxPayload: MAX_MESSAGE });
  for (const c of chunks) if (!reader.stopped()) reader.push(Buffer.from(c));
  await new Promise((resolve) => setImmediate(resolve));
  return out;
}

/** A message's bytes as one west DATA frame (optionally with a wrong type, stream or length). */
function bulkMessage(stream: number, size: number, flaw: 'none' | 'stream0' | 'length' | 'type'): Buffer {
  const frame = encodeData(flaw === 'stream0' ? 0 : stream, randomBytes(size));
  if (flaw === 'length') frame.writeUInt32BE(size - 1, 5);
  if (flaw === 'type') frame[0] = FrameType.end;
  return frame;
}

function packedMessage(stream: number, n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(i % 3 === 0 ? encodeData(stream, randomBytes(1 + i * 37)) : i % 3 === 1 ? encodeWindow(stream, 1000 + i) : encodeEnd(stream));
  return Buffer.concat(parts);
}

type Item =
  | { kind: 'bulk'; stream: number; size: number; flaw: 'none' | 'stream0' | 'length' | 'type'; fragments: number }
  | { kind: 'packed'; stream: number; n: number; fragments: number }
  | { kind: 'ping' | 'pong'; size: number };

const item: fc.Arbitrary<Item> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('bulk' as const), stream: fc.integer({ min: 1, max: 4 }), size: fc.oneof(fc.integer({ min: 16 * 1024 - 2, max: 64 * 1024 + 2 }), fc.constantFrom(16 * 1024, 64 * 1024)), flaw: fc.constantFrom('none' as const, 'none' as const, 'none' as const, 'stream0' as const, 'length' as const, 'type' as const), fragments: fc.constantFrom(1, 1, 1, 2, 3) }, { noNullPrototype: true }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('packed' as const), stream: fc.integer({ min: 1, max: 4 }), n: fc.integer({ min: 1, max: 6 }), fragments: fc.constantFrom(1, 1, 2) }, { noNullPrototype: true }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('ping' as const, 'pong' as const), size: fc.integer({ min: 0, max: 125 }) }, { noNullPrototype: true }) },
);

const BAD = ['none', 'rsv1', 'rsv2', 'opcode3', 'opcode0', 'fragmented-ping', 'long-ping', 'wrong-mask', 'len2^63', 'over-max', 'text', 'close', 'close-1', 'bulk-then-rsv'] as const;
type Bad = typeof BAD[number];

/** The bytes of a sequence, as the peer of side `isServer` would send them (masked to a server). */
function build(isServer: boolean, items: Item[], bad: Bad, zeroMask: boolean): Buffer {
  const mask = (): Buffer | null => isServer ? (zeroMask ? Buffer.alloc(4) : randomBytes(4)) : null;
  const out: Buffer[] = [];
  const message = (payload: Buffer, fragments: number, between: () => void): void => {
    const cut = Math.ceil(payload.length / fragments);
    for (let i = 0; i < fragments; i++) {
      if (i > 0) between();
      out.push(wsFrame({ fin: i === fragments - 1, opcode: i === 0 ? 2 : 0, payload: payload.subarray(i * cut, Math.min(payload.length, (i + 1) * cut)), mask: mask() }));
    }
  };
  const ping = (): void => { out.push(wsFrame({ opcode: 9, payload: randomBytes(3), mask: mask() })); };
  for (const it of items) {
    if (it.kind === 'bulk') message(bulkMessage(it.stream, it.size, it.flaw), it.fragments, ping);
    else if (it.kind === 'packed') message(packedMessage(it.stream, it.n), it.fragments, () => out.push(wsFrame({ opcode: 10, payload: randomBytes(2), mask: mask() })));
    else out.push(wsFrame({ opcode: it.kind === 'ping' ? 9 : 10, payload: randomBytes(it.size), mask: mask() }));
  }
  const bulk = bulkMessage(1, 20_000, 'none');
  switch (bad) {
    case 'none': break;
    case 'rsv1': out.push(wsFrame({ rsv: 4, opcode: 2, payload: bulk, mask: mask() })); break;
    case 'rsv2': out.push(wsFrame({ rsv: 2, opcode: 2, payload: bulk, mask: mask() })); break;
    case 'opcode3': out.push(wsFrame({ opcode: 3, payload: bulk, mask: mask() })); break;
    case 'opcode0': out.push(wsFrame({ opcode: 0, payload: bulk, mask: mask() })); break;
    case 'fragmented-ping': out.push(wsFrame({ fin: false, opcode: 9, payload: randomBytes(4), mask: mask() })); break;
    case 'long-ping': out.push(wsFrame({ opcode: 9, payload: randomBytes(126), mask: mask() })); break;
    case 'wrong-mask': out.push(wsFrame({ opcode: 2, payload: bulk, mask: isServer ? null : randomBytes(4) })); break;
    case 'len2^63': out.push(wsFrame({ opcode: 2, payload: bulk, mask: mask(), length: 2 ** 63 })); break;
    case 'over-max': out.push(wsFrame({ opcode: 2, payload: bulk, mask: mask(), length: MAX_MESSAGE + 1 })); break;
    case 'text': out.push(wsFrame({ opcode: 1, payload: Buffer.from('hello'), mask: mask() })); break;
    case 'close': out.push(wsFrame({ opcode: 8, payload: Buffer.from([0x03, 0xe8, 0x68, 0x69]), mask: mask() })); break;
    case 'close-1': out.push(wsFrame({ opcode: 8, payload: Buffer.from([0x03]), mask: mask() })); break;
    case 'bulk-then-rsv': out.push(wsFrame({ rsv: 1, opcode: 2, payload: bulk, mask: mask() })); break;
  }
  // Whatever follows a refused frame or a close must never reach a stream.
  if (bad !== 'none') out.push(wsFrame({ opcode: 2, payload: bulkMessage(2, 30_000, 'none'), mask: mask() }));
  return Buffer.concat(out);
}

/** `bytes` split at the given points (fractions of its length), plus some tiny reads. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from && p < bytes.length) {
      chunks.push(bytes.subarray(from, p));
      from = p;
    }
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

test('the WebSocket reader gives what ws\'s Receiver gives, however the bytes are split', async () => {
  await fc.assert(fc.asyncProperty(
    fc.boolean(), fc.array(item, { minLength: 1, maxLength: 8 }), fc.constantFrom(...BAD), fc.boolean(),
    fc.oneof(
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }),
      // Reads of a few bytes each: frame headers split everywhere.
      fc.integer({ min: 1, max: 23 }).map((step) => Array.from({ length: 60 }, (_, i) => (i * step) / 60_000)),
    ),
    async (isServer, items, bad, zeroMask, cuts) => {
      const bytes = build(isServer, items, bad, zeroMask && isServer);
      const chunks = split(bytes, cuts);
      const expected = await oracle(isServer, chunks);
      const got = await throughReader(isServer, chunks);
      assert.deepEqual(got.events, expected);
      // Small pieces are gathered: at most one more small piece than big ones per frame.
      assert.ok(got.smallPieces <= got.bigPieces + got.frames, `${got.smallPieces} small pieces for ${got.frames} frames`);
    },
  ), fuzzParameters(15));
});

test('a bulk frame read one byte at a time reaches its stream in a few gathered pieces', async () => {
  for (const isServer of [true, false]) {
    const payload = bulkMessage(5, 64 * 1024, 'none');
    const bytes = wsFrame({ opcode: 2, payload, mask: isServer ? randomBytes(4) : null });
    const chunks = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    const got = await throughReader(isServer, chunks);
    // (ws's Receiver itself takes seconds over this: it walks its list of one-byte reads each time.)
    assert.deepEqual(got.events, [dataEvent(5, payload.subarray(HEADER_SIZE))]);
    assert.equal(got.frames, 1);
    assert.equal(got.maxPieceObjects, 1, 'a frame of many small reads arrives as one buffer');
  }
});

test('a bulk frame over 16 KiB reads (as TLS gives them) arrives as one buffer; over two reads, as two views', async () => {
  const payload = bulkMessage(9, 64 * 1024, 'none');
  const bytes = wsFrame({ opcode: 2, payload, mask: null });
  const tls = await throughReader(false, Array.from({ length: Math.ceil(bytes.length / 16384) }, (_, i) => bytes.subarray(i * 16384, (i + 1) * 16384)));
  assert.deepEqual({ events: tls.events, pieces: tls.maxPieceObjects }, { events: [dataEvent(9, payload.subarray(HEADER_SIZE))], pieces: 1 });
  const plain = await throughReader(false, [bytes.subarray(0, 40_000), bytes.subarray(40_000)]);
  assert.deepEqual({ events: plain.events, pieces: plain.maxPieceObjects }, { events: [dataEvent(9, payload.subarray(HEADER_SIZE))], pieces: MAX_VIEWS });
  // A relayed stream asks for its frames whole.
  const relayed = await throughReader(false, [bytes.subarray(0, 40_000), bytes.subarray(40_000)], true);
  assert.deepEqual({ events: relayed.events, pieces: relayed.maxPieceObjects }, { events: [dataEvent(9, payload.subarray(HEADER_SIZE))], pieces: 1 });
});

test('masked payloads are unmasked in place in the buffers they arrived in', async () => {
  const payload = bulkMessage(7, 40_000, 'none');
  const bytes = wsFrame({ opcode: 2, payload, mask: randomBytes(4) });
  const pieces: Buffer[] = [];
  const r = new Receiver({ isServer: true, maxPayload: MAX_MESSAGE, binaryType: 'nodebuffer' });
  const reader = new WsFrameReader(r, { dataHead: () => false, dataPiece: (p) => pieces.push(p) }, { isServer: true, maxPayload: MAX_MESSAGE });
  const chunks = [bytes.subarray(0, 30_001), bytes.subarray(30_001)];
  for (const c of chunks) reader.push(c);
  assert.deepEqual(Buffer.concat(pieces), payload.subarray(HEADER_SIZE));
  assert.ok(pieces.every((p) => chunks.some((c) => c.buffer === p.buffer)), 'every piece is a view of a read buffer');
});
