/**
 * An upgrade request (WebSocket and the like) at a listener: routed like any request; after
 * the origin's 101 the client's socket and the stream are spliced into one byte pipe, and any
 * other answer is relayed and the connection closed.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WestError } from '../../errors.js';
import { rawResponseHead, sendRawFailure, toWestError } from '../shared/failure.js';
import { headerValues } from '../shared/passes.js';
import { Exchange, type ExchangeSink } from './exchange.js';
import { onResponseHead } from './forward.js';
import { missingHost, requestInfo } from './http.js';
import { route, type RouteTable } from './route.js';

export async function acceptUpgrade(near: RouteTable & ExchangeSink, req: http.IncomingMessage, socket: Duplex, early: Buffer): Promise<void> {
  const { nodeName, tuning } = near;
  // Node's server drops its own 'error' listener before it hands over an upgrade's socket:
  // without this one, a client that resets while we wait for the far end crashes the node.
  socket.on('error', () => socket.destroy());
  const protocol = headerValues(req.rawHeaders, 'upgrade')[0] ?? '';
  const ex = new Exchange(near, requestInfo(req), protocol, () => socket.destroyed);
  // The record is of the handshake: a 101 ends it at once (the connection may live for
  // hours); anything else when the client's connection closes.
  let answered: number | undefined;
  socket.once('close', () => ex.end(answered, answered !== undefined && socket.writableFinished));
  const fail = (err: WestError): void => {
    ex.failed(err);
    if (answered !== undefined || socket.destroyed) {
      socket.destroy();
      return;
    }
    answered = sendRawFailure(socket, err, tuning);
  };

  const noHost = missingHost(req, nodeName);
  if (noHost) { fail(noHost); return; }
  const routed = await route(near, ex);
  if (routed.kind === 'abandoned') return;
  if (routed.kind === 'failed') { fail(routed.error); return; }
  const { stream } = routed;
  // The client's bytes go into the stream from now on: the far end hands them to the origin
  // only after a 101 (and drops them otherwise), and reading the socket is how a client that
  // leaves before the answer is noticed (Node hands the socket over unread).
  if (early.length > 0) stream.write(early);
  socket.pipe(stream);
  onResponseHead(stream, ex, (head) => {
    answered = head.status;
    if (head.status === 101) {
      socket.write(rawResponseHead(101, head.statusMessage, head.headers));
      ex.end(101, true);
      stream.pipe(socket);
      return;
    }
    // The origin declined to switch: relay its answer, then close (no framing to reuse).
    socket.unpipe(stream);
    socket.write(rawResponseHead(head.status, head.statusMessage, [...head.headers, 'Connection', 'close']));
    stream.end();
    stream.on('data', (c: Buffer) => { ex.bytesOut += c.length; });
    stream.pipe(socket);
  });
  stream.on('error', (err) => fail(toWestError(err, nodeName)));
  // Either side closing closes the other.
  socket.on('close', () => { if (!stream.destroyed) stream.destroy(); });
  // A stream that ended cleanly ends the socket through the pipe (what was written still goes
  // out); one cut short cuts the socket.
  stream.on('close', () => { if (answered === 101 && !socket.destroyed && !stream.readableEnded) socket.destroy(); });
}
