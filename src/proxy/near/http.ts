/** An ordinary request at a listener: routed, its body streamed to the far end, the answer streamed back. */
import type http from 'node:http';
import { WestError } from '../../errors.js';
import type { ResponseHead } from '../../tunnel/frame.js';
import type { TunnelStream } from '../../tunnel/stream.js';
import { sendFailure, toWestError } from '../shared/failure.js';
import { framesBody, withoutHeader } from '../shared/passes.js';
import { invalidHeaders } from '../shared/validate.js';
import type { ConnectionTable } from './connections.js';
import { Exchange, type ExchangeSink, type RequestInfo } from './exchange.js';
import { forwardBody, onResponseHead } from './forward.js';
import { route, type RouteTable } from './route.js';

export function requestInfo(req: http.IncomingMessage): RequestInfo {
  return { method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders, remoteAddress: req.socket.remoteAddress ?? '', host: req.headers.host };
}

/** The listener as an ordinary request sees it. */
export type NearEnd = RouteTable & ExchangeSink & {
  readonly connections: ConnectionTable;
  /** Streams of exchanges in flight, for the end of a drain. */
  readonly active: Set<TunnelStream>;
};

/** RFC 9112 §3.2: an HTTP/1.1 request must carry Host (Node's own check is off: west answers it). */
export function missingHost(req: http.IncomingMessage, nodeName: string): WestError | undefined {
  return req.httpVersion === '1.1' && req.headers.host === undefined
    ? new WestError('bad_request', nodeName, 'an HTTP/1.1 request without Host')
    : undefined;
}

export async function acceptRequest(near: NearEnd, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const { nodeName, tuning } = near;
  const socket = req.socket;
  // A request pipelined behind one that closes the connection is never served (nor performed).
  if (near.connections.closing(socket)) {
    req.resume();
    return;
  }
  const ex = new Exchange(near, requestInfo(req), undefined, () => res.destroyed);
  let stream: TunnelStream | undefined;
  // A response queued behind another (pipelining) never emits 'close' when the client resets
  // the connection: the connection's close ends it too (see ConnectionTable.begin).
  let ended = false;
  const finished = (): void => {
    if (ended) return;
    ended = true;
    near.connections.end(socket, finished);
    ex.end(res.headersSent ? res.statusCode : undefined, res.writableFinished);
    // The client hung up: cancel the stream, which cancels the work at every further hop. So
    // too when the response is complete but the request body is not (the origin answered
    // early, a 413 say): nobody will read the rest, and the stream must not wait for it.
    if (stream && (!res.writableFinished || !stream.writableFinished)) stream.destroy();
  };
  near.connections.begin(socket, finished);
  res.once('close', finished);
  const fail = (err: WestError): void => {
    ex.failed(err);
    // After a malformed request the rest of the connection cannot be trusted: close it. (A
    // refused but well-framed one, 501 for `gzip, chunked`, leaves the connection usable.)
    if (err.code === 'bad_request') {
      res.shouldKeepAlive = false;
      near.connections.close(socket);
    }
    req.resume();
    sendFailure(res, err, tuning);
  };

  const hasBody = framesBody(req.headers['transfer-encoding'], req.headers['content-length']);
  if (hasBody && !req.complete) {
    // A body the client's parser gives up on (a bad chunk size) never ends: without this the
    // far end would wait for the rest of it, and the client for an answer, until a timeout.
    const broken = (err: WestError): boolean => {
      // The body was whole (its 'end' not yet emitted): the bad bytes are a next request's.
      if (req.complete) return false;
      stream?.destroy();
      fail(err);
      return true;
    };
    near.connections.readingBody(socket, broken);
    req.once('end', () => near.connections.bodyRead(socket, broken));
  }

  const noHost = missingHost(req, nodeName);
  if (noHost) { fail(noHost); return; }
  // Not awaited when route() settled at once (a connected tunnel): a turn of the microtask
  // queue per request saved.
  const routing = route(near, ex);
  const routed = routing instanceof Promise ? await routing : routing;
  if (routed.kind === 'abandoned') return;
  if (routed.kind === 'failed') { fail(routed.error); return; }
  stream = routed.stream;
  if (ended) { // eslint-disable-line @typescript-eslint/no-unnecessary-condition -- finished() may have run while route() was awaited
    stream.destroy();
    return;
  }
  const active = stream;
  relayInformation(req, res, stream);
  forwardBody(req, hasBody, stream, (n) => { ex.bytesIn += n; });
  watchStream(near, ex, active, (head) => {
    writeHead(res, head);
    // What pipe() does, without its per-request listeners: pause the stream (so the far end
    // runs out of window) while the client's socket is full. Node answers false to any write
    // above its 16 KiB high-water mark, and a tunnel frame is up to 64 KiB: pausing on that
    // alone would stop and start the stream around every frame. What the answer holds counts
    // whether it is on the socket or in Node's own buffer (a pipelined answer waiting its
    // turn has no socket yet; Node also wakes the answer on the socket with 'drain' each time
    // the one behind it buffers more).
    active.on('data', (c: Buffer) => {
      ex.bytesOut += c.length;
      if (!res.write(c) && res.writableLength >= CLIENT_QUEUE) active.pause();
    });
    res.on('drain', () => active.resume());
    active.once('end', () => {
      // Trailers reach a client that takes a chunked answer (Node writes none otherwise).
      const trailers = checkedTrailers(active);
      if (trailers) res.addTrailers(pairs(trailers));
      res.end();
    });
  }, fail);
}

/**
 * The far end's head to the client. Node refuses a `Trailer` header on an answer it will not
 * send chunked (to an HTTP/1.0 client, or with a Content-Length): the answer goes without it
 * (no trailers can follow anyway), as the lean front's writer sends it.
 */
export function writeHead(res: http.ServerResponse, head: ResponseHead): void {
  try {
    res.writeHead(head.status, head.statusMessage, head.headers);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_HTTP_TRAILER_INVALID') throw err;
    res.writeHead(head.status, head.statusMessage, withoutHeader(head.headers, 'trailer'));
  }
}

/**
 * The stream an exchange was routed onto, watched until its answer: counted in `active`
 * while open, its response head (once checked, forward.ts) given to `use`, a reset or an end
 * without a response given to `fail`. Shared by acceptRequest and the lean front (h1/).
 */
export function watchStream(near: NearEnd, ex: Exchange, stream: TunnelStream, use: (head: ResponseHead) => void, fail: (err: WestError) => void): void {
  const { nodeName } = near;
  near.active.add(stream);
  stream.once('close', () => near.active.delete(stream));
  onResponseHead(stream, ex, use);
  stream.on('error', (err) => fail(toWestError(err, nodeName)));
  stream.on('end', () => {
    if (!stream.response) fail(new WestError('tunnel_lost', nodeName, 'the far end ended the stream without a response'));
  });
}

/**
 * A stream's trailers, checked like a head (a peer's trailers must not inject anything into
 * the client's answer); undefined when there are none or they are not sound.
 */
export function checkedTrailers(stream: TunnelStream): string[] | undefined {
  return stream.trailers && !invalidHeaders(stream.trailers) ? stream.trailers : undefined;
}

/** A 103's headers grouped by lower-cased name, as writeEarlyHints takes them. */
export function hintsOf(head: ResponseHead): Record<string, string[]> {
  const hints: Record<string, string[]> = {};
  for (let i = 0; i + 1 < head.headers.length; i += 2) {
    const name = (head.headers[i] ?? '').toLowerCase();
    (hints[name] ??= []).push(head.headers[i + 1] ?? '');
  }
  return hints;
}

/**
 * 1xx answers on their way to the client (RFC 9110 §15.2: a proxy forwards them, except to
 * an HTTP/1.0 client). With a far end that sends them (feature `informational`), the origin's
 * own 100 Continue is what lets the client send its body; with an older one, the listener
 * answers an `Expect: 100-continue` itself once routed, as before.
 *
 * RESPONSE frames are not flow-controlled, so a hostile far end could send 1xx heads without
 * end to a client that does not read. Only one 100 is passed per request, and 102/103 (hints
 * a client can do without) are dropped while the client's socket holds more than
 * INFORMATIONAL_QUEUE bytes or while INFORMATIONAL_PENDING of them already wait for a
 * pipelined response ahead to finish: what the listener holds for them stays bounded.
 */
function relayInformation(req: http.IncomingMessage, res: http.ServerResponse, stream: TunnelStream): void {
  if (req.httpVersion === '1.0') return;
  const expectsContinue = /^\s*100-continue\s*$/i.test(req.headers.expect ?? '');
  if (!stream.peerSupports('informational')) {
    if (expectsContinue) whenCurrent(res, () => res.writeContinue());
    return;
  }
  let continued = false;
  let pending = 0;
  const hint = (write: () => void): void => {
    if (res.headersSent) return;
    if (res.socket) {
      if (res.socket.writableLength <= INFORMATIONAL_QUEUE) write();
    } else if (pending < INFORMATIONAL_PENDING) {
      pending++;
      whenCurrent(res, write);
    }
  };
  stream.on('information', (head: ResponseHead) => {
    if (head.status === 100) {
      if (expectsContinue && !continued) {
        continued = true;
        whenCurrent(res, () => res.writeContinue());
      }
    } else if (head.status === 102) {
      hint(() => res.writeProcessing());
    } else if (head.status === 103) {
      const hints = hintsOf(head);
      hint(() => res.writeEarlyHints(hints));
    }
    // Other 1xx codes have no writer in Node's server; they are dropped.
  });
}

/** Bytes an answer holds for its client (two tunnel frames) past which its stream pauses. */
const CLIENT_QUEUE = 128 * 1024;
/** Bytes waiting on the client's socket past which 102 and 103 heads are dropped. */
export const INFORMATIONAL_QUEUE = 64 * 1024;
/** 102/103 heads kept for a response still queued behind a pipelined one. */
const INFORMATIONAL_PENDING = 8;

/**
 * Runs `write` once this response is the connection's current one (a response queued behind
 * another, pipelining, would have a 1xx land after the other's head), and not at all once its
 * own final answer has begun.
 */
function whenCurrent(res: http.ServerResponse, write: () => void): void {
  if (res.headersSent) return;
  if (res.socket) write();
  else res.once('socket', () => { if (!res.headersSent) write(); });
}

/** A flat header list as [name, value] pairs. */
function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] ?? '', flat[i + 1] ?? '']);
  return out;
}
