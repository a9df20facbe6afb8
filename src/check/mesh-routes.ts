/**
 * The mesh's routes of a deployment, computed offline: the route a node's streams to another
 * node take once the mesh has converged (the same order as src/mesh/table.ts: lowest cost, then
 * fewest hops, then the names of the path), and whether the transit policy of every node on it
 * lets the stream through (src/mesh/transit.ts). A node learns a route only from a peer its
 * `west.learn` lets advertise that destination, so a path is taken only where every node on
 * it would have learned it. Every tunnel both ends speak version 3 on is a
 * link; its cost is the dialling side's `wstc[url].cost` one way and 1 the other.
 */
import type { ClientConfig, NodeConfig } from '../config/types.js';
import { learnAllowed, originOf, transitAllowed } from '../mesh/transit.js';

/** What the computation reads of a node and a tunnel of the deployment (deployment.ts). */
export interface RouteNode {
  /** Canonical west.nm. */
  name: string;
  config: NodeConfig;
}
export interface RouteTunnel<N extends RouteNode> {
  client: N;
  server: N | undefined;
  config: ClientConfig;
  /** The name the client presents, canonical. */
  presents: string;
}

export interface MeshPath<N extends RouteNode> {
  /** Nodes after the source, the destination last. */
  hops: N[];
  cost: number;
}

interface Edge<N> {
  to: N;
  cost: number;
  /** The name `to` knows the sender by (the name a client presents, or the server's nm). */
  senderKnownAs: string;
  /** The name the sender knows `to` by, and whether the sender dialed it (`west.learn`). */
  knownAs: string;
  dialed: boolean;
}

/** Deployments are small; past this many partial paths the search gives up. */
const MAX_PATHS = 20_000;

function edges<N extends RouteNode>(tunnels: readonly RouteTunnel<N>[], from: N): Edge<N>[] {
  const out: Edge<N>[] = [];
  for (const t of tunnels) {
    const server = t.server;
    if (!server || server.config.tuning.wireVersion < 3 || t.client.config.tuning.wireVersion < 3) continue;
    if (t.client === from) out.push({ to: server, cost: t.config.cost ?? 1, senderKnownAs: t.presents, knownAs: server.name, dialed: true });
    else if (server === from) out.push({ to: t.client, cost: 1, senderKnownAs: server.name, knownAs: t.presents, dialed: false });
  }
  return out;
}

/**
 * The route `src`'s streams to `dest` take, or undefined when there is none. `learn: false`
 * ignores `west.learn` (to tell a deployment with no way at all from one that refuses a route).
 */
export function meshPath<N extends RouteNode>(tunnels: readonly RouteTunnel<N>[], src: N, dest: N, learn = true): MeshPath<N> | undefined {
  if (src === dest) return undefined;
  const maxHops = src.config.tuning.maxHops;
  let best: MeshPath<N> | undefined;
  let budget = MAX_PATHS;
  const better = (a: MeshPath<N>, b: MeshPath<N>): boolean => {
    if (a.cost !== b.cost) return a.cost < b.cost;
    if (a.hops.length !== b.hops.length) return a.hops.length < b.hops.length;
    return a.hops.map((n) => n.name).join('\n') < b.hops.map((n) => n.name).join('\n');
  };
  const walk = (at: N, path: N[], cost: number): void => {
    if (budget-- <= 0) return;
    for (const e of edges(tunnels, at)) {
      if (e.to === src || path.includes(e.to)) continue;
      // `at` hears of `dest` from `e.to` only where its west.learn lets that peer say so.
      if (learn && e.to !== dest && !learnAllowed(at.config.learn, e.knownAs, dest.name, e.dialed)) continue;
      const next = { hops: [...path, e.to], cost: cost + e.cost };
      if (best && next.cost > best.cost) continue;
      if (e.to === dest) {
        if (!best || better(next, best)) best = next;
        continue;
      }
      if (next.hops.length < maxHops) walk(e.to, next.hops, next.cost);
    }
  };
  walk(src, [], 0);
  return best;
}

/** A pinned path (`via`, then the destination) from `src`: its cost, or which link is missing. */
export function pinnedPath<N extends RouteNode>(tunnels: readonly RouteTunnel<N>[], src: N, hops: N[]): MeshPath<N> | string {
  let at = src;
  let cost = 0;
  for (const next of hops) {
    const e = edges(tunnels, at).find((x) => x.to === next);
    if (!e) return `the pinned path ("via") goes from ${at.name} to ${next.name}, but no tunnel both speak the mesh on joins them`;
    cost += e.cost;
    at = next;
  }
  return { hops, cost };
}

/** Which node on `path` would not learn the route to its end, as a sentence; undefined when all would. */
export function learnProblem<N extends RouteNode>(tunnels: readonly RouteTunnel<N>[], src: N, path: MeshPath<N>): string | undefined {
  const dest = path.hops[path.hops.length - 1];
  if (!dest) return undefined;
  let at = src;
  for (const next of path.hops) {
    const e = edges(tunnels, at).find((x) => x.to === next);
    if (e && next !== dest && !learnAllowed(at.config.learn, e.knownAs, dest.name, e.dialed)) {
      return `${at.name} does not learn the route to ${dest.name} from ${e.knownAs}, a client of its tunnel server (west.learn)`;
    }
    at = next;
  }
  return undefined;
}

/**
 * Why a stream from `src` along `path` would be refused (a sentence naming the node and the
 * setting), or undefined when every node on the way lets it through.
 */
export function transitProblem<N extends RouteNode>(tunnels: readonly RouteTunnel<N>[], src: N, path: MeshPath<N>): string | undefined {
  const dest = path.hops[path.hops.length - 1];
  if (!dest) return undefined;
  let prev = src;
  for (const [i, node] of path.hops.entries()) {
    const knownAs = edges(tunnels, prev).find((e) => e.to === node)?.senderKnownAs ?? prev.name;
    const policy = { transit: node.config.transit, relays: node.config.relays };
    // The first hop takes the stream from its origin; every later one from a relay naming it.
    if (i > 0 && originOf(policy, knownAs, src.name) === undefined) {
      return `${node.name} does not take relayed streams from ${knownAs} (west.relays)`;
    }
    if (node !== dest && !transitAllowed(policy, src.name, dest.name)) {
      return `${node.name} does not relay streams from ${src.name} to ${dest.name} (west.transit)`;
    }
    prev = node;
  }
  return undefined;
}
