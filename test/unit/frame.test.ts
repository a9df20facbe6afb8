import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeFrame, encodeFrame, encodeData, FrameError, FrameType, HEADER_SIZE, MAX_STREAM_ID,
  type Frame, type OpenHead,
} from '../../src/tunnel/frame.js';

const OPEN_HEAD: OpenHead = {
  kind: 'http',
  method: 'POST',
  url: 'http://127.0.0.1:9921/x/a?b=c',
  headers: ['Host', '127.0.0.1:9921', 'X-Dup', '1', 'x-dup', '2'],
  hops: 3,
  to: '',
  id: 'req-1',
};

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const ROUND_TRIPS: { name: string; frame: Frame }[] = [
  { name: 'open', frame: { type: 'open', stream: 1, head: OPEN_HEAD } },
  { name: 'open with a destination and unicode', frame: { type: 'open', stream: 7, head: { ...OPEN_HEAD, to: 'site-ü', headers: [] } } },
  { name: 'response', frame: { type: 'response', stream: 2, head: { status: 404, statusMessage: 'Not Found', headers: ['Content-Type', 'text/plain'] } } },
  { name: 'response 100', frame: { type: 'response', stream: 2, head: { status: 100, statusMessage: '', headers: [] } } },
  { name: 'response 999', frame: { type: 'response', stream: 2, head: { status: 999, statusMessage: 'x', headers: [] } } },
  { name: 'data with all 256 byte values', frame: { type: 'data', stream: 3, data: ALL_BYTES } },
  { name: 'empty data', frame: { type: 'data', stream: 3, data: Buffer.alloc(0) } },
  { name: 'end', frame: { type: 'end', stream: 5 } },
  { name: 'reset', frame: { type: 'reset', stream: 9, info: { code: 'cancel', message: 'client went away', node: 'site-L' } } },
  { name: 'window', frame: { type: 'window', stream: 11, increment: 65536 } },
  { name: 'window of 2^32-1', frame: { type: 'window', stream: 11, increment: 0xffff_ffff } },
  { name: 'largest stream id', frame: { type: 'end', stream: MAX_STREAM_ID } },
];

for (const c of ROUND_TRIPS) {
  test(`frame round trip: ${c.name}`, () => {
    assert.deepEqual(decodeFrame(encodeFrame(c.frame)), c.frame);
  });
}

test('frame layout: type byte, big-endian stream id, payload', () => {
  const buf = encodeFrame({ type: 'data', stream: 0x01020304, data: Buffer.from([0xaa, 0xbb]) });
  assert.deepEqual([...buf], [FrameType.data, 1, 2, 3, 4, 0xaa, 0xbb]);
});

test('encodeData encodes only the given slice', () => {
  const frame = decodeFrame(encodeData(1, ALL_BYTES, 10, 20));
  assert.deepEqual(frame, { type: 'data', stream: 1, data: ALL_BYTES.subarray(10, 20) });
});

/** A raw frame: type, stream id, payload (a string is UTF-8, an object is JSON). */
function raw(type: number, stream: number, payload: string | Buffer | object = Buffer.alloc(0)): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  const head = Buffer.alloc(HEADER_SIZE);
  head[0] = type;
  head.writeUInt32BE(stream, 1);
  return Buffer.concat([head, body]);
}

function win(increment: Buffer): Buffer {
  return raw(FrameType.window, 1, increment);
}

const { open, response, end, reset, window: windowType } = FrameType;
const badOpen = (patch: Record<string, unknown>): object => ({ ...OPEN_HEAD, ...patch });
const withoutKey = (key: keyof OpenHead): object => {
  const copy: Record<string, unknown> = { ...OPEN_HEAD };
  delete copy[key];
  return copy;
};

const MALFORMED: { name: string; input: Buffer; message: RegExp }[] = [
  { name: 'empty buffer', input: Buffer.alloc(0), message: /0 bytes is shorter than its 5-byte header/ },
  { name: '4 bytes', input: Buffer.from([FrameType.end, 0, 0, 1]), message: /4 bytes is shorter than its 5-byte header/ },
  { name: 'stream id 0', input: raw(end, 0), message: /stream id 0 is reserved/ },
  { name: 'unknown type 0x00', input: raw(0x00, 1), message: /unknown frame type 0x00/ },
  { name: 'unknown type 0x07', input: raw(0x07, 1), message: /unknown frame type 0x07/ },
  { name: 'unknown type 0xff', input: raw(0xff, 1), message: /unknown frame type 0xff/ },
  { name: 'open with invalid JSON', input: raw(open, 1, '{"kind":'), message: /open frame payload is not valid JSON/ },
  { name: 'open with no payload', input: raw(open, 1), message: /open frame payload is not valid JSON/ },
  { name: 'open with invalid UTF-8', input: raw(open, 1, Buffer.from([0xff, 0xfe])), message: /open frame payload is not valid JSON/ },
  { name: 'open with an array', input: raw(open, 1, '[]'), message: /open frame payload must be a JSON object/ },
  { name: 'open with null', input: raw(open, 1, 'null'), message: /open frame payload must be a JSON object/ },
  { name: 'open with a string', input: raw(open, 1, '"http"'), message: /open frame payload must be a JSON object/ },
  { name: 'open with a number', input: raw(open, 1, '42'), message: /open frame payload must be a JSON object/ },
  { name: 'open without kind', input: raw(open, 1, withoutKey('kind')), message: /open frame: unsupported stream kind undefined/ },
  { name: 'open with kind tcp', input: raw(open, 1, badOpen({ kind: 'tcp' })), message: /open frame: unsupported stream kind "tcp"/ },
  { name: 'open without method', input: raw(open, 1, withoutKey('method')), message: /open frame: "method" must be a string/ },
  { name: 'open with numeric method', input: raw(open, 1, badOpen({ method: 1 })), message: /open frame: "method" must be a string/ },
  { name: 'open without url', input: raw(open, 1, withoutKey('url')), message: /open frame: "url" must be a string/ },
  { name: 'open with null url', input: raw(open, 1, badOpen({ url: null })), message: /open frame: "url" must be a string/ },
  { name: 'open without headers', input: raw(open, 1, withoutKey('headers')), message: /open frame: "headers" must be a flat list of name\/value strings/ },
  { name: 'open with odd-length headers', input: raw(open, 1, badOpen({ headers: ['Host'] })), message: /open frame: "headers" must be a flat list/ },
  { name: 'open with a non-string header', input: raw(open, 1, badOpen({ headers: ['Content-Length', 5] })), message: /open frame: "headers" must be a flat list/ },
  { name: 'open with headers as an object', input: raw(open, 1, badOpen({ headers: { Host: 'a' } })), message: /open frame: "headers" must be a flat list/ },
  { name: 'open without hops', input: raw(open, 1, withoutKey('hops')), message: /open frame: "hops" must be an integer in 0\.\.255/ },
  { name: 'open with string hops', input: raw(open, 1, badOpen({ hops: '1' })), message: /open frame: "hops" must be an integer/ },
  { name: 'open with fractional hops', input: raw(open, 1, badOpen({ hops: 1.5 })), message: /open frame: "hops" must be an integer/ },
  { name: 'open with negative hops', input: raw(open, 1, badOpen({ hops: -1 })), message: /open frame: "hops" must be an integer in 0\.\.255/ },
  { name: 'open with hops 256', input: raw(open, 1, badOpen({ hops: 256 })), message: /open frame: "hops" must be an integer in 0\.\.255/ },
  { name: 'open without to', input: raw(open, 1, withoutKey('to')), message: /open frame: "to" must be a string/ },
  { name: 'open without id', input: raw(open, 1, withoutKey('id')), message: /open frame: "id" must be a string/ },
  { name: 'response with invalid JSON', input: raw(response, 2, 'nope'), message: /response frame payload is not valid JSON/ },
  { name: 'response with an array', input: raw(response, 2, '[200]'), message: /response frame payload must be a JSON object/ },
  { name: 'response status 99', input: raw(response, 2, { status: 99, statusMessage: '', headers: [] }), message: /response frame: "status" must be an integer in 100\.\.999/ },
  { name: 'response status 1000', input: raw(response, 2, { status: 1000, statusMessage: '', headers: [] }), message: /response frame: "status" must be an integer in 100\.\.999/ },
  { name: 'response status as a string', input: raw(response, 2, { status: '200', statusMessage: '', headers: [] }), message: /response frame: "status" must be an integer/ },
  { name: 'response without statusMessage', input: raw(response, 2, { status: 200, headers: [] }), message: /response frame: "statusMessage" must be a string/ },
  { name: 'response with odd-length headers', input: raw(response, 2, { status: 200, statusMessage: 'OK', headers: ['a', 'b', 'c'] }), message: /response frame: "headers" must be a flat list/ },
  { name: 'end with a payload', input: raw(end, 1, Buffer.from([0])), message: /end frame must have no payload/ },
  { name: 'reset with invalid JSON', input: raw(reset, 1, '{'), message: /reset frame payload is not valid JSON/ },
  { name: 'reset without code', input: raw(reset, 1, { message: 'm', node: 'n' }), message: /reset frame: "code" must be a string/ },
  { name: 'reset without node', input: raw(reset, 1, { code: 'cancel', message: 'm' }), message: /reset frame: "node" must be a string/ },
  { name: 'window with no payload', input: win(Buffer.alloc(0)), message: /window frame payload must be 4 bytes/ },
  { name: 'window with 3 bytes', input: win(Buffer.from([0, 0, 1])), message: /window frame payload must be 4 bytes/ },
  { name: 'window with 5 bytes', input: win(Buffer.from([0, 0, 0, 1, 0])), message: /window frame payload must be 4 bytes/ },
  { name: 'window increment 0', input: win(Buffer.from([0, 0, 0, 0])), message: /window increment must not be 0/ },
  { name: 'window type with open payload', input: raw(windowType, 1, OPEN_HEAD), message: /window frame payload must be 4 bytes/ },
];

for (const c of MALFORMED) {
  test(`decodeFrame rejects ${c.name}`, () => {
    assert.throws(() => decodeFrame(c.input), (err: unknown) => {
      assert.ok(err instanceof FrameError, `expected FrameError, got ${String(err)}`);
      assert.equal(err.name, 'FrameError');
      assert.match(err.message, c.message);
      return true;
    });
  });
}
