/**
 * Transit policy (doc/security.md#transit): who a stream came from, and whether this node
 * relays it further. Pure; names are canonical.
 *
 * - `west.relays` lists the peers whose relayed streams this node takes. A stream whose OPEN
 *   names an origin (`from`) is believed only from such a peer; from any other it is refused,
 *   so a client cannot pass itself off as another node by writing `from`.
 * - `west.transit` maps an originating node (or "*") to the destinations (or "*") this node
 *   relays its streams to. Absent: this node relays nothing.
 * - `west.learn` maps a peer (or "*") to the destinations (or "*") it may advertise routes to
 *   beyond itself. A peer without an entry: everything when this node dialed it (a tunnel
 *   server it chose and verified), nothing when it dialed in (a client of this node's server
 *   could otherwise attract streams meant for any node by advertising a short path to it).
 */
import { canonicalName } from '../config/types.js';

export interface TransitPolicy {
  transit?: ReadonlyMap<string, readonly string[]> | undefined;
  relays: readonly string[];
}

/** The origin of a stream `peer` opened with `from`, or undefined when `peer` may not vouch for one. */
export function originOf(policy: TransitPolicy, peer: string, from: string | undefined): string | undefined {
  const p = canonicalName(peer);
  if (!from) return p;
  return policy.relays.includes('*') || policy.relays.includes(p) ? canonicalName(from) : undefined;
}

/**
 * May `peer` (canonical) tell this node the way to `dest` (canonical)? `dialed`: this node
 * dialed the peer's tunnel server. The peer's own name is always learned, whatever this says.
 */
export function learnAllowed(learn: ReadonlyMap<string, readonly string[]> | undefined, peer: string, dest: string, dialed: boolean): boolean {
  const list = learn?.get(peer) ?? learn?.get('*');
  if (!list) return dialed;
  return list.includes('*') || list.includes(dest);
}

/** May this node relay a stream that started at `origin` toward `dest`? */
export function transitAllowed(policy: TransitPolicy, origin: string, dest: string): boolean {
  if (!policy.transit) return false;
  const lists = [policy.transit.get(canonicalName(origin)), policy.transit.get('*')];
  const d = canonicalName(dest);
  return lists.some((l) => l !== undefined && (l.includes('*') || l.includes(d)));
}
