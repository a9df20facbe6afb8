/**
 * Where a stream a peer opened goes: performed here when it is addressed to this node (`to`
 * empty or one of its names), relayed toward its destination when this node's transit policy
 * allows it, refused otherwise. The origin the far end's egress rules see is the peer's name,
 * or the `from` a relay vouches for when this node takes relayed streams from that peer.
 */
import { WestError, type FailureCode } from '../errors.js';
import type { Logger } from '../log.js';
import { encodeReset, MESH_VERSION, type OpenHead } from '../tunnel/frame.js';
import { spreadOver, type PeerOpener } from '../tunnel/pool.js';
import type { TunnelSession } from '../tunnel/session.js';
import type { StreamEnd, TunnelStream } from '../tunnel/stream.js';
import { relayStream } from './relay.js';
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

type Arrival =
  | { kind: 'perform'; origin: string }
  | { kind: 'refuse'; code: FailureCode; message: string }
  | { kind: 'relay'; next: PeerOpener; nextName: string; onward: OpenHead; origin: string };

/** What becomes of a stream `session`'s peer opened with `head`: performed here, relayed, or refused. */
function judge(head: OpenHead, session: TunnelSession, ctx: ArrivalContext): Arrival {
  const refuse = (code: FailureCode, message: string): Arrival => ({ kind: 'refuse', code, message });
  const origin = originOf(ctx.policy, session.peerName, head.from);
  if (origin === undefined) return refuse('transit_denied', `node ${ctx.nodeName} does not take relayed streams from ${session.peerName} (west.relays)`);
  if (head.to === '' || ctx.speaker.isSelf(head.to)) return { kind: 'perform', origin };
  if (!transitAllowed(ctx.policy, origin, head.to)) {
    return refuse('transit_denied', `node ${ctx.nodeName} does not relay streams from ${origin} to ${head.to} (west.transit)`);
  }
  if (head.hops + 1 > ctx.maxHops) return refuse('hop_limit', `stream passed ${head.hops} nodes on its way to ${head.to}; the limit is ${ctx.maxHops}`);
  // A pinned path (`via`) names the next hop, which must be a peer; otherwise the routes decide.
  const pinnedNext = head.via?.[0];
  const route = ctx.speaker.lookup(pinnedNext ?? head.to);
  if (!route || (pinnedNext !== undefined && route.path.length !== 1)) {
    return refuse('no_route', pinnedNext !== undefined
      ? `node ${ctx.nodeName} is not connected to ${pinnedNext}, the next node of the stream's pinned path`
      : `node ${ctx.nodeName} has no route to ${head.to}`);
  }
  // A route's link is one connection; a pool's connections are one peer (src/tunnel/pool.ts).
  const next = spreadOver(route.link);
  if (route.link === session || next === spreadOver(session)) {
    return refuse('loop_detected', `node ${ctx.nodeName} would send the stream to ${head.to} back to ${session.peerName}`);
  }
  if (route.link.wire < MESH_VERSION) {
    return refuse('unsupported', `next hop ${route.link.peerName} speaks an older wire version, which cannot carry the stream's origin`);
  }
  if (head.kind === 'tcp' && !route.link.supports('tcp')) {
    return refuse('unsupported', `next hop ${route.link.peerName} does not carry TCP streams (it did not announce the "tcp" feature)`);
  }
  // The same head (a plain spread: V8 clones it fast, where a rest pattern costs ~10 times more),
  // one hop further, vouched for, its pinned path one node shorter.
  const onward: OpenHead = { ...head, hops: head.hops + 1, from: origin };
  if (head.via !== undefined) {
    if (head.via.length > 1) onward.via = head.via.slice(1);
    else delete onward.via;
  }
  return { kind: 'relay', next, nextName: route.link.peerName, onward, origin };
}

function logRefusal(ctx: ArrivalContext, session: TunnelSession, head: OpenHead, code: FailureCode, message: string): void {
  if (code === 'transit_denied') ctx.log.warn('mesh.transit_denied', { id: head.id, peer: session.peerName, from: head.from, to: head.to, reason: message });
  else ctx.log.debug('mesh.relay_failed', { id: head.id, peer: session.peerName, to: head.to, code, reason: message });
}

/**
 * Asked by `session` at each OPEN its peer sends (TunnelSession.takeOpen): relays the stream
 * (its inbound relay leg, src/mesh/relay.ts) or refuses it with a RESET ('refused'); undefined
 * for a stream to perform here, which becomes a TunnelStream for performArrived. Never throws.
 */
export function arrive(session: TunnelSession, id: number, head: OpenHead, ctx: ArrivalContext): StreamEnd | 'refused' | undefined {
  const judged = judge(head, session, ctx);
  if (judged.kind === 'perform') return undefined;
  const refuse = (code: FailureCode, message: string): 'refused' => {
    logRefusal(ctx, session, head, code, message);
    session.send(encodeReset(id, { code, message, node: ctx.nodeName }));
    return 'refused';
  };
  if (judged.kind === 'refuse') return refuse(judged.code, judged.message);
  let inbound: StreamEnd;
  try {
    inbound = relayStream(session, id, head, judged.next, judged.onward);
  } catch (err) {
    const e = err instanceof WestError ? err : new WestError('internal', ctx.nodeName, String(err));
    return refuse(e.code, e.message);
  }
  ctx.log.debug('mesh.relay', { id: head.id, from: judged.origin, to: head.to, peer: session.peerName, next: judged.nextName, hops: judged.onward.hops });
  return inbound;
}

/** Performs a stream arrive() left to this node, judging egress by where it started. Never throws. */
export function performArrived(stream: TunnelStream, session: TunnelSession, ctx: ArrivalContext): void {
  const head = stream.head;
  if (!head) return;
  const judged = judge(head, session, ctx);
  if (judged.kind === 'perform') {
    ctx.perform(stream, judged.origin);
    return;
  }
  // Only a stream that came without arrive() (a session without takeOpen) can get here.
  const { code, message } = judged.kind === 'refuse' ? judged : { code: 'internal' as const, message: `node ${ctx.nodeName} relays streams only as they open` };
  logRefusal(ctx, session, head, code, message);
  stream.on('error', () => { /* the reset tells the peer */ });
  stream.reset(code, message);
}
