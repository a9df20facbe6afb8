/**
 * Protocol upgrades (WebSocket and the like) at the far end: after the origin's 101 the
 * stream is a plain byte pipe between the origin's socket and, at the near end, the client's.
 */
import { splice } from '../shared/splice.js';
import type { Attempt } from './attempt.js';
import { originRequest } from './node-client.js';

/**
 * Performs an upgrade request with Node's client: after the origin's 101 the stream and the
 * origin's socket are spliced; any other answer is relayed as a response.
 */
export function performUpgrade(a: Attempt, protocol: string): void {
  const origin = originRequest(a, [...a.headers, 'Connection', 'Upgrade', 'Upgrade', protocol], () => false);
  if (!origin) return;
  origin.req.on('upgrade', (res, socket, early) => {
    origin.answered();
    a.answered(101);
    // A 101 keeps its Connection/Upgrade headers: the client needs them to switch too.
    a.stream.respond({ status: 101, statusMessage: res.statusMessage ?? '', headers: res.rawHeaders });
    splice(socket, a.stream, early);
  });
  origin.req.end();
}
