/**
 * The middle node of a chain whose `ou` is one of its own listeners (sample/case4: L performs
 * http://127.0.0.1:9982/ba, its own listener's address): the far end hands the request to that
 * listener directly instead of sending it out and back in through two sockets and two HTTP
 * parsers (see doc/architecture.md).
 */
import { WestError } from '../errors.js';
import type { Attempt } from './attempt.js';
import { failureAnswer, toWestError } from './failure.js';
import { forwardBody, onResponseHead, type AccessRecord, type ProxyListener, type RequestInfo } from './listener.js';
import { hasRequestBody, requestIdOf } from './passes.js';

/** The address a loopback connection to `hostname` comes from. */
function loopbackFrom(hostname: string): string {
  return hostname === '[::1]' ? '::1' : '127.0.0.1';
}

/**
 * A request this node's own far end was asked to send to this listener over loopback (the
 * middle node of a chain, whose `ou` is its own listener): routed exactly as if it had come
 * in from the loopback address, with the same checks, headers, access line and metrics,
 * but without the round trip through the node's own sockets and HTTP parser. The stream it
 * came in on is spliced to the stream it goes out on; a failure here is answered as this
 * listener would answer it (status, Proxy-Status, body), and one further along the chain
 * travels back as a reset that still names the node where it happened.
 */
export async function relay(listener: ProxyListener, a: Attempt): Promise<void> {
  const { nodeName, tuning } = listener;
  const incoming = a.stream;
  const started = process.hrtime.bigint();
  const info: RequestInfo = {
    method: a.method, url: a.url.pathname + a.url.search, rawHeaders: a.headers, remoteAddress: loopbackFrom(a.url.hostname), host: a.url.host,
  };
  const requestId = requestIdOf(a.headers);
  listener.stats.requests++;
  listener.stats.inFlight++;
  let status = 499;
  let mapping = '-';
  let bytesIn = 0;
  let bytesOut = 0;
  let failure: AccessRecord['failure'];
  incoming.once('close', () => {
    listener.stats.inFlight--;
    listener.finish({
      id: requestId, listener: listener.config.key, mapping, method: info.method, path: info.url, status,
      durationMs: Number(process.hrtime.bigint() - started) / 1e6, bytesIn, bytesOut,
      client: info.remoteAddress, completed: incoming.writableFinished, failure,
    });
  });
  const answer = (err: WestError): void => {
    failure ??= { code: err.code, node: err.node, message: err.message };
    if (incoming.destroyed) return;
    const f = failureAnswer(err, tuning.retryAfterS);
    status = f.status;
    a.answered(f.status);
    incoming.resume();
    incoming.respond({ status: f.status, statusMessage: '', headers: f.headers });
    incoming.end(a.method === 'HEAD' ? undefined : f.body);
  };

  const routed = await listener.route(info, requestId, undefined, () => incoming.destroyed, (path) => { mapping = path; });
  if (routed === undefined) return;
  if (routed instanceof WestError) return answer(routed);
  const { stream } = routed;

  forwardBody(incoming, hasRequestBody(a.headers), stream, (n) => { bytesIn += n; });
  onResponseHead(stream, (head) => {
    status = head.status;
    a.answered(head.status);
    incoming.respond(head);
    stream.on('data', (c: Buffer) => { bytesOut += c.length; });
    stream.pipe(incoming);
  });
  stream.on('error', (err) => {
    const e = toWestError(err, nodeName);
    if (!stream.response) return answer(e);
    failure ??= { code: e.code, node: e.node, message: e.message };
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
