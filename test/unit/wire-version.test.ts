/** Wire version negotiation in the WebSocket subprotocol (doc/protocol.md#handshake), case by case. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { offeredSubprotocols, pickSubprotocol, versionOf } from '../../src/tunnel/handshake.js';
import { decodeMessage, encodeOpen, encodeRoutes, FrameError, type OpenHead } from '../../src/tunnel/frame.js';

test('a client offers this version and the previous one, newest first', () => {
  assert.deepEqual(offeredSubprotocols(), ['west.v3', 'west.v2']);
  assert.deepEqual(offeredSubprotocols(2), ['west.v2']);
});

const PICKS: { offered: string[]; max?: number; want: string | undefined }[] = [
  { offered: ['west.v3', 'west.v2'], want: 'west.v3' },
  { offered: ['west.v2', 'west.v3'], want: 'west.v3' },
  { offered: ['west.v2'], want: 'west.v2' },
  { offered: ['west.v3'], want: 'west.v3' },
  { offered: ['west.v3', 'west.v2'], max: 2, want: 'west.v2' },
  { offered: ['west.v3'], max: 2, want: undefined },
  { offered: ['west.v1'], want: undefined },
  { offered: ['west.v4', 'west.v3'], want: 'west.v3' },
  { offered: ['west.v9', 'west.v03', 'WEST.V3', 'x'], want: undefined },
  { offered: [], want: undefined },
];
for (const c of PICKS) {
  test(`the server picks ${c.want ?? 'nothing'} from [${c.offered.join(', ')}]${c.max ? ` speaking at most v${c.max}` : ''}`, () => {
    assert.equal(pickSubprotocol(c.offered, c.max), c.want);
  });
}

test('versionOf reads only the versions this release speaks', () => {
  assert.equal(versionOf('west.v2'), 2);
  assert.equal(versionOf('west.v3'), 3);
  assert.equal(versionOf('west.v1'), undefined);
  assert.equal(versionOf(''), undefined);
  assert.equal(versionOf(undefined), undefined);
});

const HEAD: OpenHead = { kind: 'http', method: 'GET', url: 'http://o/x', headers: ['A', 'b'], hops: 2, to: 'L2', id: 'r1', from: 'site-A', via: ['hub', 'site-B'] };

test('an OPEN carries `from` and `via` in version 3 only; version 2 has seven lines, as before', () => {
  const [v3] = decodeMessage(encodeOpen(1, HEAD, 3), 3);
  assert.deepEqual(v3, { type: 'open', stream: 1, head: HEAD });
  const [v2] = decodeMessage(encodeOpen(1, HEAD, 2), 2);
  const { from: _from, via: _via, ...without } = HEAD;
  assert.deepEqual(v2, { type: 'open', stream: 1, head: without });
  // The line count is part of the format: read as the other version, an OPEN means something
  // else (which is why the version is negotiated, never guessed).
  assert.notDeepEqual(decodeMessage(encodeOpen(1, HEAD, 3), 2), [v3]);
  assert.throws(() => decodeMessage(encodeOpen(1, { ...HEAD, via: ['a', ''] }, 3), 3), FrameError);
});

test('ROUTES is a version-3 frame on stream 0; version 2 refuses it as before', () => {
  const frame = encodeRoutes(Buffer.from('{}'));
  const [f] = decodeMessage(frame, 3);
  assert.equal(f?.type, 'routes');
  assert.equal(f?.stream, 0);
  assert.throws(() => decodeMessage(frame, 2), FrameError);
  const onStream = Buffer.from(frame);
  onStream.writeUInt32BE(5, 1);
  assert.throws(() => decodeMessage(onStream, 3), /stream 0/);
});
