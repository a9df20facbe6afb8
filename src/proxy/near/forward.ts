/** The two halves of carrying an exchange over its stream, shared by the listener and the relay. */
import type { Readable } from 'node:stream';
import type { ResponseHead } from '../../tunnel/frame.js';
import type { TunnelStream } from '../../tunnel/stream.js';
import { failureInAnswer } from '../shared/failure.js';
import { invalidResponseHead } from '../shared/validate.js';
import type { Exchange } from './exchange.js';

/** Sends a request body into the stream (piped, counted), or ends the stream at once when there is none. */
export function forwardBody(body: Readable, hasBody: boolean, stream: TunnelStream, count: (bytes: number) => void): void {
  if (hasBody) {
    body.on('data', (c: Buffer) => count(c.length));
    body.pipe(stream);
  } else {
    body.resume();
    stream.end();
  }
}

/**
 * Calls `use` with the far end's response head when it arrives; a head HTTP would not allow
 * (CR in a value, a bad status) resets the stream instead and is never written anywhere. A
 * failure answered further along the chain (its Proxy-Status names an error) is noted on the
 * exchange, so this node's log and metrics show it too.
 */
export function onResponseHead(stream: TunnelStream, ex: Exchange, use: (head: ResponseHead) => void): void {
  stream.once('response', (head: ResponseHead) => {
    const invalid = invalidResponseHead(head.status, head.statusMessage, head.headers);
    if (invalid) {
      stream.reset('origin_error', `the far end sent an invalid response head: ${invalid}`);
      return;
    }
    const further = failureInAnswer(head.status, head.headers);
    if (further) ex.failed(further);
    use(head);
  });
}
