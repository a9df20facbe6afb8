/**
 * The frame-level relay of a middle node: the stream a peer opened (inbound) is spliced onto a
 * stream this node opened toward the next hop (outbound), frame for frame and without parsing
 * HTTP. Bodies flow with each hop's own flow control (a pipe reads one side only as fast as the
 * other side's window lets it write), so a relayed stream holds at most about a window on each
 * side. Heads (1xx and final RESPONSE), TRAILERS and END pass as they come; a RESET on either
 * side ends the other with the same code and the name of the node where it failed.
 */
import { isFailureCode, type ResetCode } from '../errors.js';
import { StreamResetError, type TunnelStream } from '../tunnel/stream.js';

function resetCode(code: string): ResetCode {
  return code === 'cancel' || isFailureCode(code) ? code : 'tunnel_lost';
}

/** Splices `inbound` (a peer opened it here) onto `outbound` (this node opened it onward). */
export function splice(inbound: TunnelStream, outbound: TunnelStream, localName: string): void {
  outbound.on('information', (head: Parameters<TunnelStream['inform']>[0]) => inbound.inform(head));
  outbound.on('response', (head: Parameters<TunnelStream['respond']>[0]) => inbound.respond(head));
  outbound.on('trailers', (headers: string[]) => inbound.setTrailers(headers));
  inbound.on('trailers', (headers: string[]) => outbound.setTrailers(headers));

  // Either side failing ends the other, the failure's code and node kept.
  const pass = (to: TunnelStream) => (err: Error): void => {
    const info = err instanceof StreamResetError
      ? err.info
      : { code: 'internal', message: `relay at ${localName}: ${err.message}`, node: localName };
    to.reset(resetCode(info.code), info.message, info.node);
  };
  outbound.on('error', pass(inbound));
  inbound.on('error', pass(outbound));
  // A stream destroyed without an error (it cannot be here, but a half-done splice must not
  // leave its partner open): cancel the partner.
  inbound.once('close', () => { if (!outbound.destroyed && !inbound.writableFinished) outbound.reset('cancel', `relay at ${localName} closed`); });
  outbound.once('close', () => { if (!inbound.destroyed && !outbound.readableEnded) inbound.reset('tunnel_lost', `relay at ${localName} lost the next hop`); });

  // Each chunk read becomes a frame onward: take frames whole, as they came.
  inbound.wholeFrames = outbound.wholeFrames = true;
  inbound.pipe(outbound);
  outbound.pipe(inbound);
}
