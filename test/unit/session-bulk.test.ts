/**
 * Bulk DATA read in pieces ahead of ws's Receiver (src/tunnel/ws-reader.ts) is judged as a
 * whole frame was: counted against the tunnel's own window for all its bytes and given back
 * on arrival, held by its stream within the stream's window, dropped when its stream is
 * unknown. Raw
 * messages over a real WebSocket pair, so the reader is the one that reads them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeData } from '../../src/tunnel/frame.js';
import { MAX_DATA_FRAME, type TunnelStream } from '../../src/tunnel/stream.js';
import { CONNECTION_WINDOW_STREAMS } from '../../src/tunnel/tunnel-flow.js';
import { body, head, nextStream, withPair, WINDOW, within } from '../helpers/session-pair.js';

test('bulk DATA past the tunnel\'s own window, for streams whose readers take nothing, is held by the streams: the tunnel stays up', () => withPair(async (p) => {
  // Streams whose far ends read nothing: together they are sent more than the tunnel's window.
  const streams = CONNECTION_WINDOW_STREAMS * WINDOW / MAX_DATA_FRAME + 4;
  const farEnds: TunnelStream[] = [];
  p.server.on('stream', (s) => { s.pause(); farEnds.push(s); });
  const opened: TunnelStream[] = [];
  for (let i = 0; i < streams; i++) opened.push(p.client.openStream(head(`fill-${i}`)));
  await within(new Promise<void>((resolve) => {
    const check = (): void => { if (farEnds.length === streams) resolve(); else setImmediate(check); };
    check();
  }), 'every stream to open at the far end');
  for (const [i, s] of opened.entries()) p.clientWs.send(encodeData(s.id, Buffer.alloc(MAX_DATA_FRAME, i)), { binary: true });
  // The tunnel's window had each frame back as it arrived (a reader that stops must not stall
  // the tunnel); each stream holds its frame within its own window.
  await within(new Promise<void>((resolve) => {
    const check = (): void => { if (farEnds.every((s) => s.readableLength === MAX_DATA_FRAME)) resolve(); else setImmediate(check); };
    check();
  }), 'every stream to hold its frame');
  assert.deepEqual([p.client.closed, p.server.closed], [false, false]);
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
