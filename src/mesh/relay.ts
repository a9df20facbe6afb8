/**
 * The frame-level relay of a middle node: the stream a peer opened (inbound) is joined to a
 * stream this node opens toward the next hop (outbound), frame for frame and without parsing
 * HTTP. Both are relay legs in their sessions (src/tunnel/relay-leg.ts): no Duplex streams, no
 * pipes. Bodies flow with each hop's own flow control, so a relayed stream holds at most about
 * a window on each side; a RESET on either side ends the other with the same code and the
 * name of the node where it failed.
 */
import type { OpenHead } from '../tunnel/frame.js';
import type { PeerOpener } from '../tunnel/pool.js';
import { RelayLeg } from '../tunnel/relay-leg.js';
import type { TunnelSession } from '../tunnel/session.js';

/**
 * Opens `onward` toward `next` and joins it to the stream `session`'s peer opened as `id`
 * (`head`): returns the inbound leg, for `session` to hand that stream's frames to. Throws
 * WestError as openStream does (the tunnel onward is full or gone); nothing is left open then.
 */
export function relayStream(session: TunnelSession, id: number, head: OpenHead, next: PeerOpener, onward: OpenHead): RelayLeg {
  const outbound = next.openWith(onward, (s, outId) => new RelayLeg(s, outId, { window: s.flow.streamWindow(), sendWindow: s.streamSendWindow }));
  const inbound = new RelayLeg(session, id, { head, window: session.flow.streamWindow(), sendWindow: session.streamSendWindow });
  RelayLeg.join(inbound, outbound);
  return inbound;
}
