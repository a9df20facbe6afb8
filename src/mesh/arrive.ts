/**
 * Where a stream a peer opened goes: performed here when it is addressed to this node (`to`
 * empty or one of its names), relayed toward its destination when this node's transit policy
 * allows it, refused otherwise. The origin the far end's egress rules see is the peer's name,
 * or the `from` a relay vouches for when this node takes relayed streams from that peer.
 */
import { WestError, type FailureCode } from '../errors.js';
import type { Logger } from '../log.js';
import { MESH_VERSION } from '../tunnel/frame.js';
import { spreadOver } from '../tunnel/pool.js';
import type { TunnelSession } from '../tunnel/session.js';
import type { TunnelStream } from '../tunnel/stream.js';
import { splice } from './relay.js';
import type { RouteSpeaker } from './speaker.js';
import { originOf, transitAllowed, type TransitPolicy } from './transit.js';

export interface ArrivalContext {
  nodeName: string;
  speaker: RouteSpeaker;
  policy: TransitPolicy;
  /** `west.maxHops`: a relay that would take a stream past it answers 508. */
  maxHops: number;
  log: Logger;
  /** Performs the stream here, judging egress by `origin`. */
  perform(stream: TunnelStream, origin: string): void;
}

/** Performs, relays or refuses a stream `session`'s peer opened. Never throws. */
export function arrive(stream: TunnelStream, session: TunnelSession, ctx: ArrivalContext): void {
  const head = stream.head;
  if (!head) return;
  const refuse = (code: FailureCode, message: string): void => {
    stream.on('error', () => { /* the reset tells the peer */ });
    if (code === 'transit_denied') ctx.log.warn('mesh.transit_denied', { id: head.id, peer: session.peerName, from: head.from, to: head.to, reason: message });
    else ctx.log.debug('mesh.relay_failed', { id: head.id, peer: session.peerName, to: head.to, code, reason: message });
    stream.reset(code, message);
  };
  const origin = originOf(ctx.policy, session.peerName, head.from);
  if (origin === undefined) {
    refuse('transit_denied', `node ${ctx.nodeName} does not take relayed streams from ${session.peerName} (west.relays)`);
    return;
  }
  if (head.to === '' || ctx.speaker.isSelf(head.to)) {
    ctx.perform(stream, origin);
    return;
  }
  if (!transitAllowed(ctx.policy, origin, head.to)) {
    refuse('transit_denied', `node ${ctx.nodeName} does not relay streams from ${origin} to ${head.to} (west.transit)`);
    return;
  }
  if (head.hops + 1 > ctx.maxHops) {
    refuse('hop_limit', `stream passed ${head.hops} nodes on its way to ${head.to}; the limit is ${ctx.maxHops}`);
    return;
  }
  // A pinned path (`via`) names the next hop, which must be a peer; otherwise the routes decide.
  const [pinnedNext, ...pinnedRest] = head.via ?? [];
  const route = ctx.speaker.lookup(pinnedNext ?? head.to);
  if (!route || (pinnedNext !== undefined && route.path.length !== 1)) {
    refuse('no_route', pinnedNext !== undefined
      ? `node ${ctx.nodeName} is not connected to ${pinnedNext}, the next node of the stream's pinned path`
      : `node ${ctx.nodeName} has no route to ${head.to}`);
    return;
  }
  // A route's link is one connection; a pool's connections are one peer (src/tunnel/pool.ts).
  const next = spreadOver(route.link);
  if (route.link === session || next === spreadOver(session)) {
    refuse('loop_detected', `node ${ctx.nodeName} would send the stream to ${head.to} back to ${session.peerName}`);
    return;
  }
  if (route.link.wire < MESH_VERSION) {
    refuse('unsupported', `next hop ${route.link.peerName} speaks an older wire version, which cannot carry the stream's origin`);
    return;
  }
  if (head.kind === 'tcp' && !route.link.supports('tcp')) {
    refuse('unsupported', `next hop ${route.link.peerName} does not carry TCP streams (it did not announce the "tcp" feature)`);
    return;
  }
  let outbound: TunnelStream;
  try {
    const { via: _pinned, ...rest } = head;
    outbound = next.openStream({ ...rest, hops: head.hops + 1, from: origin, ...(pinnedRest.length > 0 ? { via: pinnedRest } : {}) });
  } catch (err) {
    const e = err instanceof WestError ? err : new WestError('internal', ctx.nodeName, String(err));
    refuse(e.code, e.message);
    return;
  }
  ctx.log.debug('mesh.relay', { id: head.id, from: origin, to: head.to, peer: session.peerName, next: route.link.peerName, hops: head.hops + 1 });
  splice(stream, outbound, ctx.nodeName);
}
