/**
 * Today's frame codec against the one it replaced (frame-reference.ts), on random heads and
 * messages: every frame encodes to the same bytes (or both refuse it with the same FrameError),
 * and every message, valid or mangled, decodes to the same frames (or both refuse it with the
 * same message). Both wire versions; heads with non-ASCII text, lone surrogates and line feeds
 * in any field, so both of the encoder's paths (ASCII and UTF-8) and its line-feed check run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as codec from '../../src/tunnel/frame.js';
import { FrameError, FrameType, HEADER_SIZE, type Frame, type OpenHead, type ResponseHead } from '../../src/tunnel/frame.js';
import { fuzzParameters } from '../helpers/fuzz.js';
import * as reference from './frame-reference.js';

/** Mostly ASCII (the common case), sometimes anything: line feeds, é, emoji, lone surrogates. */
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('\n', 'é', '\u00ff', '😀', '\ud800', '\udfff', '\r', ' ', 'a', ''), maxLength: 8 }) },
);
const headers = fc.array(fc.tuple(text, text), { maxLength: 8 }).map((pairs) => pairs.flat());
const stream = fc.integer({ min: 1, max: 0xffff_ffff });
const version = fc.constantFrom(2, 3);

const openHead: fc.Arbitrary<OpenHead> = fc.record({
  kind: fc.constantFrom('http' as const, 'tcp' as const),
  method: text, url: text, headers, hops: fc.integer({ min: 0, max: 255 }), to: text, id: text,
  upgrade: text, from: text,
  via: fc.array(fc.oneof(text, fc.constantFrom('a', 'b-2')), { maxLength: 3 }),
}, { requiredKeys: ['kind', 'method', 'url', 'headers', 'hops', 'to', 'id'], noNullPrototype: true });
const responseHead: fc.Arbitrary<ResponseHead> = fc.record({ status: fc.integer({ min: 100, max: 999 }), statusMessage: text, headers }, { noNullPrototype: true });

/** What a codec call gave: its value, or the FrameError it threw (anything else fails the test). */
function outcome<T>(call: () => T): T | string {
  try {
    return call();
  } catch (err) {
    if (err instanceof FrameError) return `FrameError: ${err.message}`;
    throw err;
  }
}

function sameOutcome<T>(ours: () => T, theirs: () => T): void {
  assert.deepEqual(outcome(ours), outcome(theirs));
}

const anyFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ type: fc.constant('open' as const), stream, head: openHead }, { noNullPrototype: true }),
  fc.record({ type: fc.constant('response' as const), stream, head: responseHead }, { noNullPrototype: true }),
  fc.record({ type: fc.constant('data' as const), stream, data: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) }, { noNullPrototype: true }),
  fc.record({ type: fc.constant('end' as const), stream }, { noNullPrototype: true }),
  fc.record({ type: fc.constant('reset' as const), stream, info: fc.record({ code: text, message: text, node: text }, { noNullPrototype: true }) }, { noNullPrototype: true }),
  fc.record({ type: fc.constant('window' as const), stream: fc.oneof(stream, fc.constant(0)), increment: fc.integer({ min: 1, max: 0xffff_ffff }) }, { noNullPrototype: true }),
  fc.record({ type: fc.constant('trailers' as const), stream, headers }, { noNullPrototype: true }),
);

/** A frame as the reference encodes it, or, for one it refuses, a head of raw lines. */
function bytesOf(frame: Frame, v: number): Buffer {
  const encoded = outcome(() => frame.type === 'open' ? reference.encodeOpen(frame.stream, frame.head, v) : reference.encodeFrame(frame));
  return typeof encoded === 'string' ? rawFrame(FrameType.open, frame.stream, Buffer.from('http\nGET\n/\n1\n\nid\n\n\n')) : encoded;
}

function rawFrame(type: number, id: number, payload: Buffer, length = payload.length): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE + payload.length);
  buf[0] = type;
  buf.writeUInt32BE(id, 1);
  buf.writeUInt32BE(length, 5);
  payload.copy(buf, HEADER_SIZE);
  return buf;
}

/** A message of frames, some of them mangled: a byte changed, the end cut, junk appended. */
const message = fc.tuple(
  fc.array(anyFrame, { minLength: 0, maxLength: 5 }), version,
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }),
  fc.oneof(fc.constant(0), fc.nat({ max: 40 })),
  fc.oneof(fc.constant(Buffer.alloc(0)), fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a))),
).map(([frames, v, flips, cut, junk]) => {
  const buf = Buffer.concat([...frames.map((f) => bytesOf(f, v)), junk]);
  for (const [at, byte] of flips) if (buf.length > 0) buf[at % buf.length] = byte;
  return { buf: buf.subarray(0, Math.max(0, buf.length - cut)), version: v };
});

test('OPEN heads encode to the same bytes as the reference codec, or are refused alike', () => {
  fc.assert(fc.property(stream, openHead, version, (id, head, v) => {
    sameOutcome(() => codec.encodeOpen(id, head, v), () => reference.encodeOpen(id, head, v));
  }), fuzzParameters(10));
});

test('RESPONSE, TRAILERS and RESET heads encode to the same bytes as the reference codec', () => {
  fc.assert(fc.property(stream, responseHead, headers, text, text, text, (id, head, trailers, code, node, why) => {
    sameOutcome(() => codec.encodeResponse(id, head), () => reference.encodeResponse(id, head));
    sameOutcome(() => codec.encodeTrailers(id, trailers), () => reference.encodeTrailers(id, trailers));
    sameOutcome(() => codec.encodeReset(id, { code, node, message: why }), () => reference.encodeReset(id, { code, node, message: why }));
  }), fuzzParameters(10));
});

test('messages, valid or mangled, decode to the same frames as with the reference codec', () => {
  fc.assert(fc.property(message, ({ buf, version: v }) => {
    sameOutcome(() => codec.decodeMessage(buf, v), () => reference.decodeMessage(buf, v));
    sameOutcome(() => codec.decodeFrame(buf, v), () => reference.decodeFrame(buf, v));
  }), fuzzParameters(30));
});

test('frames of any type, head lines of any count and content decode as with the reference codec', () => {
  const lines = fc.array(fc.oneof(text, fc.constantFrom('http', 'tcp', '200', '0', '255', '256', '01', 'a  b', 'a b')), { maxLength: 14 });
  const payload = fc.oneof(lines.map((l) => Buffer.from(l.join('\n'))), fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a)));
  const type = fc.oneof(fc.constantFrom(...Object.values(FrameType)), fc.integer({ min: 0, max: 255 }));
  fc.assert(fc.property(type, fc.oneof(stream, fc.constant(0)), payload, version, (t, id, p, v) => {
    const buf = rawFrame(t, id, p);
    sameOutcome(() => codec.decodeMessage(buf, v), () => reference.decodeMessage(buf, v));
  }), fuzzParameters(30));
});
