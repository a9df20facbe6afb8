/**
 * The middle node of a chain whose `ou` is one of its own listeners (sample/case4: L performs
 * http://127.0.0.1:9982/ba, its own listener's address): the far end hands the request to that
 * listener directly instead of sending it out and back in through two sockets and two HTTP
 * parsers (see doc/architecture.md).
 */
import { WestError } from '../../errors.js';
import { loopbackAddress } from '../../net/loopback.js';
import type { Attempt } from '../far/attempt.js';
import { streamFailure, toWestError } from '../shared/failure.js';
import { Exchange, type RequestInfo } from './exchange.js';
import { forwardBody, onResponseHead } from './forward.js';
import type { NearEnd } from './http.js';
import { route } from './route.js';

/**
 * A request this node's own far end was asked to send to this listener over loopback: routed
 * exactly as if it had come in from the loopback address, with the same checks, headers,
 * access record and metrics, but without the round trip through the node's own sockets and
 * HTTP parser. The stream it came in on is spliced to the stream it goes out on; a failure
 * here is answered as this listener would answer it (status, Proxy-Status, body), and one
 * further along the chain travels back as a reset that still names the node where it happened.
 */
export async function relayToListener(near: NearEnd, a: Attempt): Promise<void> {
  const { nodeName, tuning } = near;
  const incoming = a.stream;
  const info: RequestInfo = {
    method: a.method, url: a.target, rawHeaders: a.headers, remoteAddress: loopbackAddress(a.url.hostname), host: a.url.host,
  };
  const ex = new Exchange(near, info, undefined, () => incoming.destroyed);
  let status: number | undefined;
  incoming.once('close', () => ex.end(status, incoming.writableFinished));
  const answer = (err: WestError): void => {
    ex.failed(err);
    if (incoming.destroyed) return;
    status = streamFailure(incoming, a.method, err, tuning);
    a.answered(status);
  };

  const routed = await route(near, ex);
  if (routed.kind === 'abandoned') return;
  if (routed.kind === 'failed') { answer(routed.error); return; }
  const { stream } = routed;
  near.active.add(stream);
  stream.once('close', () => near.active.delete(stream));

  forwardBody(incoming, a.hasBody, stream, (n) => { ex.bytesIn += n; });
  onResponseHead(stream, ex, (head) => {
    status = head.status;
    a.answered(head.status);
    incoming.respond(head);
    stream.on('data', (c: Buffer) => { ex.bytesOut += c.length; });
    stream.on('trailers', (t: string[]) => incoming.setTrailers(t));
    stream.pipe(incoming);
  });
  stream.on('error', (err) => {
    const e = toWestError(err, nodeName);
    if (status === undefined) { answer(e); return; }
    ex.failed(e);
    a.fail(e.code, e.message, e.node);
  });
  stream.on('end', () => {
    if (!stream.response) answer(new WestError('tunnel_lost', nodeName, 'the far end ended the stream without a response'));
  });
  // The requester gave up (or the request failed here), or the answer is complete while the
  // request body is not (the origin answered early): cancel the stream further along.
  incoming.once('close', () => {
    if (!incoming.writableFinished || !stream.writableFinished) stream.destroy();
  });
}
