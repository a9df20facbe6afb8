/**
 * The session-facing half of the mesh: every tunnel becomes a link of the route table; over
 * tunnels of wire version 3 this node sends its whole table when the tunnel comes up, then
 * only what changed (announcements and withdrawals, coalesced per turn of the event loop), and
 * applies what the peer sends. A tunnel that closes withdraws everything learned over it at
 * once.
 */
import { canonicalName } from '../config/types.js';
import type { Logger } from '../log.js';
import type { TunnelSession } from '../tunnel/session.js';
import { decodeRoutesPayload, encodeRoutesPayloads } from './advert.js';
import { RouteTable, type Advert, type LearnFilter, type Route } from './table.js';

/** What was last sent to a peer about a destination, to send only changes. */
function key(a: Advert): string {
  return `${a.cost} ${a.path.join(' ')}`;
}

export class RouteSpeaker {
  readonly table: RouteTable<TunnelSession>;
  /** Per version-3 session: destination -> what it was last told. */
  private readonly told = new Map<TunnelSession, Map<string, string>>();
  private readonly dirty = new Set<string>();
  private flushScheduled = false;

  /** `aliases`: the other names this node presents to tunnel servers (`wstc[url].nm`). */
  constructor(self: string, maxHops: number, aliases: readonly string[], private readonly log: Logger) {
    this.table = new RouteTable(canonicalName(self), maxHops, aliases.map(canonicalName));
  }

  /** Whether `name` (as written) is this node. */
  isSelf(name: string): boolean {
    return this.table.isSelf(canonicalName(name));
  }

  /**
   * Makes a live tunnel a link (cost: `wstc[url].cost`, 1 by default; `accepts`: the
   * destinations its peer may advertise, from `west.learn`); forgets it when it closes.
   */
  attach(session: TunnelSession, cost = 1, accepts?: LearnFilter): void {
    if (session.closed) return;
    this.changed(this.table.addLink(session, canonicalName(session.peerName), cost, accepts));
    session.once('close', () => {
      this.told.delete(session);
      this.changed(this.table.removeLink(session));
      // Withdrawals leave at once, not at the end of the turn: the tunnel that is gone no longer matters.
      this.flush();
    });
    if (session.wire < 3) return;
    session.on('routes', (payload) => this.receive(session, payload));
    const told = new Map<string, string>();
    this.told.set(session, told);
    const announced: Advert[] = [];
    for (const dest of this.table.destinations()) {
      const a = this.table.advertFor(session, dest, canonicalName(session.localName));
      if (a) {
        announced.push(a);
        told.set(dest, key(a));
      }
    }
    for (const p of encodeRoutesPayloads({ announced, withdrawn: [] })) session.sendRoutes(p);
  }

  lookup(dest: string): Route<TunnelSession> | undefined {
    return this.table.lookup(canonicalName(dest));
  }

  private receive(session: TunnelSession, payload: Buffer): void {
    try {
      const m = decodeRoutesPayload(payload);
      this.changed(this.table.learn(session, m.announced, m.withdrawn));
    } catch (err) {
      this.log.warn('mesh.routes_refused', { peer: session.peerName, error: err instanceof Error ? err.message : String(err) });
    }
  }

  private changed(dests: string[]): void {
    if (dests.length === 0) return;
    for (const dest of dests) {
      this.dirty.add(dest);
      const r = this.table.lookup(dest);
      if (r) this.log.info('mesh.route', { dest, via: r.link.peerName, path: r.path.join(' '), hops: r.path.length, cost: r.cost });
      else this.log.info('mesh.route', { dest, lost: true });
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Tells every version-3 peer what changed about the dirty destinations. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.dirty.size === 0) return;
    const dests = [...this.dirty];
    this.dirty.clear();
    for (const [session, told] of this.told) {
      if (session.closed) continue;
      const announced: Advert[] = [];
      const withdrawn: string[] = [];
      for (const dest of dests) {
        const a = this.table.advertFor(session, dest, canonicalName(session.localName));
        const before = told.get(dest);
        if (a) {
          const k = key(a);
          if (k === before) continue;
          told.set(dest, k);
          announced.push(a);
        } else if (before !== undefined) {
          told.delete(dest);
          withdrawn.push(dest);
        }
      }
      if (announced.length + withdrawn.length === 0) continue;
      for (const p of encodeRoutesPayloads({ announced, withdrawn })) session.sendRoutes(p);
    }
  }
}
