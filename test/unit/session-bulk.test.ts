/**
 * Bulk DATA read in pieces ahead of ws's Receiver (src/tunnel/ws-reader.ts) is judged as a
 * whole frame was: against the tunnel's own window for all its bytes (an overrun closes the
 * tunnel 1002, with the same reason), and given back at once when its stream is unknown. Raw
 * messages over a real WebSocket pair, so the reader is the one that reads them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeData } from '../../src/tunnel/frame.js';
import { MAX_DATA_FRAME, type TunnelStream } from '../../src/tunnel/stream.js';
import { CONNECTION_WINDOW_STREAMS } from '../../src/tunnel/tunnel-flow.js';
import { body, closeOf, head, nextStream, withPair, WINDOW, within } from '../helpers/session-pair.js';

test('bulk DATA past the tunnel\'s own window closes the tunnel with 1002, as a whole frame did', () => withPair(async (p) => {
  // Streams whose far ends read nothing: each takes its full stream window of the tunnel's.
  const streams = CONNECTION_WINDOW_STREAMS * WINDOW / MAX_DATA_FRAME + 1;
  const farEnds: TunnelStream[] = [];
  p.server.on('stream', (s) => farEnds.push(s));
  const closed = closeOf(p.server);
  const opened: TunnelStream[] = [];
  for (let i = 0; i < streams; i++) opened.push(p.client.openStream(head(`fill-${i}`)));
  // The OPENs leave at the end of this turn; the raw DATA must come after them.
  await within(new Promise<void>((resolve) => {
    const check = (): void => { if (farEnds.length === streams) resolve(); else setImmediate(check); };
    check();
  }), 'every stream to open at the far end');
  for (const [i, s] of opened.entries()) p.clientWs.send(encodeData(s.id, Buffer.alloc(MAX_DATA_FRAME, i)), { binary: true });
  const last = opened[opened.length - 1]?.id;
  const { code, reason } = await closed;
  assert.deepEqual({ code, reason }, { code: 1002, reason: `peer overran the tunnel's flow-control window (${MAX_DATA_FRAME} bytes on stream ${last})` });
  // Every stream but the last holds its frame: the window was counted, not given back.
  assert.deepEqual(farEnds.slice(0, -1).map((s) => s.readableLength), farEnds.slice(0, -1).map(() => MAX_DATA_FRAME));
}));

test('bulk DATA for a stream that is not open is dropped and its window given back', () => withPair(async (p) => {
  // More than the tunnel's whole window, on an id of the right parity that was never opened.
  const frames = CONNECTION_WINDOW_STREAMS * WINDOW / MAX_DATA_FRAME + 4;
  for (let i = 0; i < frames; i++) p.clientWs.send(encodeData(999, Buffer.alloc(MAX_DATA_FRAME, 7)), { binary: true });
  // A stream after them still carries its body: the tunnel is up and its window intact.
  const next = nextStream(p.server);
  const s = p.client.openStream(head('after'));
  const farEnd = await next;
  const got = body(farEnd);
  s.end(Buffer.alloc(3 * MAX_DATA_FRAME, 9));
  assert.deepEqual({ got: (await got).length, closed: [p.client.closed, p.server.closed] }, { got: 3 * MAX_DATA_FRAME, closed: [false, false] });
}));
