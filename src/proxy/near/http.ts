/** An ordinary request at a listener: routed, its body streamed to the far end, the answer streamed back. */
import type http from 'node:http';
import { WestError } from '../../errors.js';
import { sendFailure, toWestError } from '../shared/failure.js';
import { framesBody } from '../shared/passes.js';
import { Exchange, type ExchangeSink, type RequestInfo } from './exchange.js';
import { forwardBody, onResponseHead } from './forward.js';
import { route, type RouteTable } from './route.js';

export function requestInfo(req: http.IncomingMessage): RequestInfo {
  return { method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders, remoteAddress: req.socket.remoteAddress ?? '', host: req.headers.host };
}

export async function acceptRequest(near: RouteTable & ExchangeSink, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const { nodeName, tuning } = near;
  const ex = new Exchange(near, requestInfo(req), undefined, () => res.destroyed);
  res.once('close', () => ex.end(res.headersSent ? res.statusCode : undefined, res.writableFinished));
  const fail = (err: WestError): void => {
    ex.failed(err);
    // After a refused framing the rest of the connection cannot be parsed: close it.
    if (err.code === 'bad_request' || err.code === 'unsupported') res.shouldKeepAlive = false;
    req.resume();
    sendFailure(res, err, tuning.retryAfterS);
  };

  const routed = await route(near, ex);
  if (routed.kind === 'abandoned') return;
  if (routed.kind === 'failed') return fail(routed.error);
  const { stream } = routed;

  forwardBody(req, framesBody(req.headers['transfer-encoding'], req.headers['content-length']), stream, (n) => { ex.bytesIn += n; });
  onResponseHead(stream, (head) => {
    res.writeHead(head.status, head.statusMessage, head.headers);
    // What pipe() does, without its per-request listeners: pause the stream (so the far end
    // runs out of window) while the client's socket is full.
    stream.on('data', (c: Buffer) => {
      ex.bytesOut += c.length;
      if (!res.write(c)) stream.pause();
    });
    res.on('drain', () => stream.resume());
    stream.once('end', () => res.end());
  });
  stream.on('error', (err) => fail(toWestError(err, nodeName)));
  stream.on('end', () => {
    if (!stream.response) fail(new WestError('tunnel_lost', nodeName, 'the far end ended the stream without a response'));
  });
  // The client hung up: cancel the stream, which cancels the work at every further hop. So
  // too when the response is complete but the request body is not (the origin answered
  // early, a 413 say): nobody will read the rest, and the stream must not wait for it.
  res.once('close', () => {
    if (!res.writableFinished || !stream.writableFinished) stream.destroy();
  });
}
