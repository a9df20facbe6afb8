import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeFrame, decodeMessage, encodeFrame, encodeData, encodeEnd, FrameError, FrameType, HEADER_SIZE, MAX_STREAM_ID,
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
  { name: 'open of kind tcp (feature tcp)', frame: { type: 'open', stream: 3, head: { kind: 'tcp', method: 'CONNECT', url: 'tcp://[::1]:22', headers: [], hops: 1, to: '', id: 't-1' } } },
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

test('frame layout: type byte, big-endian stream id, big-endian payload length, payload', () => {
  const buf = encodeFrame({ type: 'data', stream: 0x01020304, data: Buffer.from([0xaa, 0xbb]) });
  assert.deepEqual([...buf], [FrameType.data, 1, 2, 3, 4, 0, 0, 0, 2, 0xaa, 0xbb]);
});

test('heads are UTF-8 lines: OPEN, RESPONSE and RESET as doc/protocol.md shows them', () => {
  const text = (f: Frame): string => encodeFrame(f).subarray(HEADER_SIZE).toString('utf8');
  assert.equal(text({ type: 'open', stream: 1, head: OPEN_HEAD }),
    'http\nPOST\nhttp://127.0.0.1:9921/x/a?b=c\n3\n\nreq-1\n\nHost\n127.0.0.1:9921\nX-Dup\n1\nx-dup\n2');
  assert.equal(text({ type: 'response', stream: 2, head: { status: 200, statusMessage: 'OK', headers: ['A', 'b'] } }), '200\nOK\nA\nb');
  assert.equal(text({ type: 'reset', stream: 2, info: { code: 'cancel', node: 'L', message: 'gone\naway' } }), 'cancel\nL\ngone\naway');
});

test('a message carries frames back to back; decodeMessage returns them in order', () => {
  const frames: Frame[] = [
    { type: 'open', stream: 1, head: OPEN_HEAD }, { type: 'data', stream: 1, data: Buffer.from('body') }, { type: 'end', stream: 1 },
  ];
  assert.deepEqual(decodeMessage(Buffer.concat(frames.map(encodeFrame))), frames);
});

test('decodeMessage refuses an empty message, a cut header and a length past the end', () => {
  const end = encodeEnd(1);
  assert.throws(() => decodeMessage(Buffer.alloc(0)), /empty message/);
  assert.throws(() => decodeMessage(Buffer.concat([end, end.subarray(0, 4)])), /message ends inside a frame header/);
  const long = Buffer.from(end);
  long.writeUInt32BE(1, 5);
  assert.throws(() => decodeMessage(long), /frame length runs past the end of its message/);
});

test('a head field with a line feed is refused when encoding, not sent to corrupt the peer', () => {
  assert.throws(() => encodeFrame({ type: 'open', stream: 1, head: { ...OPEN_HEAD, headers: ['X-A', 'a\nb'] } }), /open frame: a field contains a line feed/);
  assert.throws(() => encodeFrame({ type: 'response', stream: 2, head: { status: 200, statusMessage: 'O\nK', headers: [] } }), /response frame: a field/);
});

test('encodeData encodes only the given slice', () => {
  const frame = decodeFrame(encodeData(1, ALL_BYTES, 10, 20));
  assert.deepEqual(frame, { type: 'data', stream: 1, data: ALL_BYTES.subarray(10, 20) });
});

/** A raw frame: type, stream id, payload (a string is UTF-8), length as given or the payload's. */
function raw(type: number, stream: number, payload: string | Buffer = Buffer.alloc(0), length?: number): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const head = Buffer.alloc(HEADER_SIZE);
  head[0] = type;
  head.writeUInt32BE(stream, 1);
  head.writeUInt32BE(length ?? body.length, 5);
  return Buffer.concat([head, body]);
}

function win(increment: Buffer): Buffer {
  return raw(FrameType.window, 1, increment);
}

const { open, response, end, reset, window: windowType } = FrameType;
/** OPEN lines: kind, method, url, hops, to, id, upgrade, then headers. */
const openLines = (...lines: string[]): string => lines.join('\n');

const MALFORMED: { name: string; input: Buffer; message: RegExp }[] = [
  { name: 'empty buffer', input: Buffer.alloc(0), message: /0 bytes is shorter than its 9-byte header/ },
  { name: '8 bytes', input: Buffer.from([FrameType.end, 0, 0, 0, 1, 0, 0, 0]), message: /8 bytes is shorter than its 9-byte header/ },
  { name: 'a length longer than the payload', input: raw(end, 1, '', 1), message: /frame length does not match its payload/ },
  { name: 'a length shorter than the payload', input: raw(open, 1, 'http', 2), message: /frame length does not match its payload/ },
  { name: 'stream id 0', input: raw(end, 0), message: /stream id 0 is reserved/ },
  { name: 'unknown type 0x00', input: raw(0x00, 1), message: /unknown frame type 0x00/ },
  { name: 'unknown type 0x08', input: raw(0x08, 1), message: /unknown frame type 0x08/ },
  { name: 'trailers with no fields', input: raw(0x07, 1), message: /trailers frame/ },
  { name: 'unknown type 0xff', input: raw(0xff, 1), message: /unknown frame type 0xff/ },
  { name: 'open with no payload', input: raw(open, 1), message: /open frame: expected 7 fields/ },
  { name: 'open with 6 fields', input: raw(open, 1, openLines('http', 'GET', '/', '1', '', 'id')), message: /open frame: expected 7 fields/ },
  { name: 'open with an odd header list', input: raw(open, 1, openLines('http', 'GET', '/', '1', '', 'id', '', 'Host')), message: /header names and values in pairs/ },
  { name: 'open with JSON (protocol v1)', input: raw(open, 1, JSON.stringify(OPEN_HEAD)), message: /open frame: expected 7 fields/ },
  { name: 'open with kind udp', input: raw(open, 1, openLines('udp', 'GET', '/', '1', '', 'id', '')), message: /open frame: unsupported stream kind "udp"/ },
  { name: 'open with empty hops', input: raw(open, 1, openLines('http', 'GET', '/', '', '', 'id', '')), message: /open frame: "hops" must be an integer in 0\.\.255/ },
  { name: 'open with fractional hops', input: raw(open, 1, openLines('http', 'GET', '/', '1.5', '', 'id', '')), message: /open frame: "hops" must be an integer/ },
  { name: 'open with negative hops', input: raw(open, 1, openLines('http', 'GET', '/', '-1', '', 'id', '')), message: /open frame: "hops" must be an integer/ },
  { name: 'open with hops 256', input: raw(open, 1, openLines('http', 'GET', '/', '256', '', 'id', '')), message: /open frame: "hops" must be an integer in 0\.\.255/ },
  { name: 'open with hops 1e2', input: raw(open, 1, openLines('http', 'GET', '/', '1e2', '', 'id', '')), message: /open frame: "hops" must be an integer/ },
  { name: 'open with hops 007', input: raw(open, 1, openLines('http', 'GET', '/', '007', '', 'id', '')), message: /open frame: "hops" must be an integer/ },
  { name: 'response with no payload', input: raw(response, 2), message: /response frame: expected status and message/ },
  { name: 'response with an odd header list', input: raw(response, 2, '200\nOK\nA'), message: /response frame: expected status and message/ },
  { name: 'response status 99', input: raw(response, 2, '99\n'), message: /response frame: "status" must be an integer in 100\.\.999/ },
  { name: 'response status 1000', input: raw(response, 2, '1000\n'), message: /response frame: "status" must be an integer in 100\.\.999/ },
  { name: 'response status " 200"', input: raw(response, 2, ' 200\nOK'), message: /response frame: "status" must be an integer/ },
  { name: 'end with a payload', input: raw(end, 1, Buffer.from([0])), message: /end frame must have no payload/ },
  { name: 'reset with one line', input: raw(reset, 1, 'cancel'), message: /reset frame: expected code, node and message/ },
  { name: 'reset with two lines', input: raw(reset, 1, 'cancel\nL'), message: /reset frame: expected code, node and message/ },
  { name: 'window with no payload', input: win(Buffer.alloc(0)), message: /window frame payload must be 4 bytes/ },
  { name: 'window with 3 bytes', input: win(Buffer.from([0, 0, 1])), message: /window frame payload must be 4 bytes/ },
  { name: 'window with 5 bytes', input: win(Buffer.from([0, 0, 0, 1, 0])), message: /window frame payload must be 4 bytes/ },
  { name: 'window increment 0', input: win(Buffer.from([0, 0, 0, 0])), message: /window increment must not be 0/ },
  { name: 'window type with open payload', input: raw(windowType, 1, openLines('http', 'GET', '/', '1', '', 'id', '')), message: /window frame payload must be 4 bytes/ },
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
