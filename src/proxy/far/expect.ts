/**
 * A request with `Expect: 100-continue` at the far end (undici does not send Expect): the
 * origin decides. Its 100 Continue travels back to the client (feature `informational`) and
 * only then does the body flow; an origin that answers first (413, 401) gets no body, and its
 * answer reaches the client instead of a broken upload.
 */
import type { Attempt } from './attempt.js';
import { originRequest } from './node-client.js';

export function performExpectingContinue(a: Attempt): void {
  const { stream } = a;
  let sending = false;
  // A chunked body stays marked chunked: Node's client would send a GET's body unframed.
  const origin = originRequest(a, a.headers, () => sending);
  if (!origin) return;
  const { req } = origin;
  const hasBody = a.hasBody;
  // No body: the request side has only its END to give, and must be read to finish the stream.
  if (!hasBody) stream.resume();
  req.on('information', (info) => {
    stream.inform({ status: info.statusCode, statusMessage: info.statusMessage, headers: info.rawHeaders });
  });
  const send = (): void => {
    clearTimeout(patience);
    if (stream.response || sending || stream.destroyed) return;
    sending = true;
    if (hasBody) stream.pipe(req);
    else req.end();
  };
  req.on('continue', send);
  // An origin that ignores Expect (an HTTP/1.0 server) would wait for the body for ever: as
  // curl does, send it anyway after a second (RFC 9110 §10.1.1).
  const patience = setTimeout(send, CONTINUE_PATIENCE_MS);
  stream.once('close', () => clearTimeout(patience));
}

/** How long to wait for the origin's 100 Continue before sending the body regardless. */
const CONTINUE_PATIENCE_MS = 1000;
