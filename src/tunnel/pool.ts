/**
 * A peer pool: several tunnel connections between the same two nodes (a client's
 * `wstc[url].connections`), seen by everything above the tunnel as one peer. Streams are
 * spread over the live members: each new stream goes to the member with the fewest streams
 * open (ties: the member that joined first), so a slow stream does not hold up the others'
 * share and a lost member costs only the streams it carried. The pool is down only when its
 * last member is gone.
 *
 * On the wire, a pooled client sends `X-West-Pool: <pool id> <index>/<size>` on each member's
 * upgrade; the pool id is random per client process start (and tunnel), so the server tells
 * another member of the same pool from a rival or restarted instance of the same name. Servers
 * that can pool announce the feature `pool`; without it a client dials one connection only.
 * A pool id is not a credential: every member is admitted (tokens, wsts.ca, certificates) as
 * any client is (doc/security.md).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { WestError } from '../errors.js';
import type { OpenHead } from './frame.js';
import type { TunnelSession } from './session.js';
import type { StreamEnd, TunnelStream } from './stream.js';

export const POOL_HEADER = 'x-west-pool';
/** Most connections in one pool (`wstc[url].connections` is at most this; a server admits no more). */
export const MAX_POOL_MEMBERS = 16;

/** A pool member's place in its pool, as its upgrade says. */
export interface PoolClaim {
  id: string;
  index: number;
  size: number;
}

/** A new pool id: 128 random bits, hex. */
export function newPoolId(): string {
  return randomBytes(16).toString('hex');
}

/** The `X-West-Pool` value of member `index` of `size`. */
export function poolHeaderValue(claim: PoolClaim): string {
  return `${claim.id} ${claim.index}/${claim.size}`;
}

/**
 * The pool a client's upgrade claims: undefined when it sends no `X-West-Pool` (a client of one
 * connection, or an older node), an Error when the header is there but malformed.
 */
export function poolClaimOf(headers: IncomingHttpHeaders): PoolClaim | Error | undefined {
  const value = headers[POOL_HEADER];
  if (value === undefined) return undefined;
  const m = /^([0-9a-zA-Z_-]{16,64}) ([0-9]{1,2})\/([0-9]{1,2})$/.exec(String(value).trim());
  const index = Number(m?.[2]);
  const size = Number(m?.[3]);
  if (!m?.[1] || size < 1 || size > MAX_POOL_MEMBERS || index >= size) {
    return new Error(`X-West-Pool must be "<pool id> <index>/<size>" with a size of 1 to ${MAX_POOL_MEMBERS}`);
  }
  return { id: m[1], index, size };
}

/** Where streams toward a peer are opened: one session, or a pool of them. */
export interface PeerOpener {
  readonly peerName: string;
  openStream(head: OpenHead): TunnelStream;
  /** As openStream, the stream's frames going to what `make` returns (a relay leg, see TunnelSession.openWith). */
  openWith<T extends StreamEnd>(head: OpenHead, make: (session: TunnelSession, id: number) => T): T;
}

/** Which pool a member session belongs to, for the mesh's routes (a route's link is a member). */
const poolOfSession = new WeakMap<TunnelSession, PeerPool>();

/** The opener that spreads streams over `session`'s pool, or the session itself when it has none. */
export function spreadOver(session: TunnelSession): PeerOpener {
  const pool = poolOfSession.get(session);
  return pool && !session.closed ? pool : session;
}

export class PeerPool implements PeerOpener {
  /** Live members, in the order they joined. */
  private readonly live: TunnelSession[] = [];
  /** When the pool's first member joined (it stays up while any member is). */
  readonly connectedAt = new Date();
  /** The members that ever joined: a member that left and redialed counts again. */
  joins = 0;

  /**
   * @param localName this node's name, for the failures it answers
   * @param peerName the peer's name as its first member presented or reported it
   * @param id the pool id (undefined: a client without `X-West-Pool`, a pool of one)
   */
  constructor(private readonly localName: string, readonly peerName: string, readonly id: string | undefined) {}

  /** Live members (a member is gone from the moment its session is closed, whoever hears of it first). */
  get members(): readonly TunnelSession[] {
    return this.live.filter((s) => !s.closed);
  }

  get size(): number {
    return this.members.length;
  }

  /** The member that joined first and is still live (addresses and wire version are shown from it). */
  get first(): TunnelSession | undefined {
    return this.live.find((s) => !s.closed);
  }

  /** Adds a live member; it leaves the pool when it closes. */
  add(session: TunnelSession): void {
    if (session.closed || this.live.includes(session)) return;
    this.live.push(session);
    this.joins++;
    poolOfSession.set(session, this);
    session.once('close', () => {
      const i = this.live.indexOf(session);
      if (i >= 0) this.live.splice(i, 1);
    });
  }

  /** The live member with the fewest streams open (the first joined among equals). */
  pick(): TunnelSession | undefined {
    let best: TunnelSession | undefined;
    for (const s of this.live) {
      if (s.closed) continue;
      if (!best || s.streams.size < best.streams.size) best = s;
    }
    return best;
  }

  openStream(head: OpenHead): TunnelStream {
    const member = this.pick();
    // A pool is handed out only while it has a member; one that has just lost its last answers
    // as a closed session does.
    if (!member) throw new WestError('tunnel_lost', this.localName, `tunnel to ${this.peerName} is closed`);
    return member.openStream(head);
  }

  openWith<T extends StreamEnd>(head: OpenHead, make: (session: TunnelSession, id: number) => T): T {
    const member = this.pick();
    if (!member) throw new WestError('tunnel_lost', this.localName, `tunnel to ${this.peerName} is closed`);
    return member.openWith(head, make);
  }

  /** Closes every member (a rival took the name, or the node stops). */
  close(code: number, reason: string): void {
    for (const s of [...this.live]) s.close(code, reason);
  }

  /** Sums over the live members, for the state and metrics. */
  totals(): { streams: number; streamsOpened: number; bytesIn: number; bytesOut: number } {
    const t = { streams: 0, streamsOpened: 0, bytesIn: 0, bytesOut: 0 };
    for (const s of this.live) {
      t.streams += s.streams.size;
      t.streamsOpened += s.streamsOpened;
      t.bytesIn += s.bytesIn;
      t.bytesOut += s.bytesOut;
    }
    return t;
  }
}
