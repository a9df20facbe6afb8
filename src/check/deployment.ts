/**
 * A set of configs seen as one deployment: which node serves each tunnel URL, which machine
 * each node shares with others, and which listener an `ou` lands on. Everything is inferred
 * from the configs alone (no names are resolved, nothing is dialled).
 */
import { parseTunnelUrl, serverEndpoint } from '../config/endpoint.js';
import { formatPath } from '../config/messages.js';
import { canonicalName, type ClientConfig, type ListenerConfig, type NodeConfig } from '../config/types.js';
import { accepts, isLoopback, isWildcard } from './hosts.js';
import { learnProblem, meshPath, pinnedPath, transitProblem, type MeshPath } from './mesh-routes.js';

export interface TopoNode {
  /** Position on the command line. */
  index: number;
  file: string;
  config: NodeConfig;
  /** `canonicalName(west.nm)`: how the tree and the chains name the node. */
  name: string;
}

/** One tunnel a node dials (a `wstc` entry, or implied by an `ea`), and who serves it. */
export interface Tunnel {
  client: TopoNode;
  config: ClientConfig;
  /** JSON path where it is declared: `wstc["url"]`, or the first `proxy[...].ea` implying it. */
  at: string;
  /** The name presented to the server, canonical. */
  presents: string;
  /** The node whose `wsts.sp` serves the URL; undefined when no config does. */
  server: TopoNode | undefined;
  /** Further nodes that would serve the URL just as well (the deployment is ambiguous). */
  alsoServedBy: TopoNode[];
  /** A node listening on that address with the other scheme (ws:// versus wss://). */
  otherScheme: TopoNode | undefined;
}

/** A proxy listener of a node. */
export interface ListenerRef {
  node: TopoNode;
  listener: ListenerConfig;
}

export class Deployment {
  readonly nodes: TopoNode[];
  readonly tunnels: Tunnel[];
  /** Union-find parents: nodes known to run on one machine share a root. */
  private readonly machineOf: number[];

  constructor(configs: readonly { file: string; config: NodeConfig }[]) {
    this.nodes = configs.map(({ file, config }, index) => ({ index, file, config, name: canonicalName(config.name) }));
    this.tunnels = this.nodes.flatMap((node) => node.config.clients.map((c) => this.resolveTunnel(node, c)));
    this.machineOf = this.nodes.map((n) => n.index);
    // Only a loopback address proves two nodes share a machine: 127.0.0.1 reaches nothing else.
    for (const t of this.tunnels) {
      const url = parseTunnelUrl(t.config.url);
      if (t.server && url && isLoopback(url.hostname) && !t.config.mqtt) this.join(t.client, t.server);
    }
    this.joinByLoopbackOutgoing();
  }

  /** Who performs a listener's requests: its `ea` tunnel's server, or the peer its `en` names. */
  performerOf(node: TopoNode, listener: Pick<ListenerConfig, 'target' | 'via'>): { node?: TopoNode; why: string; via?: TopoNode[] } {
    const target = listener.target;
    if (target.kind === 'ea') {
      const server = this.tunnelOf(node, target.url)?.server;
      return server ? { node: server, why: '' } : { why: `no server for ${target.url}` };
    }
    const peer = this.peersNamed(node, target.name)[0];
    if (peer) return { node: peer.client, why: '' };
    const routed = this.routeTo(node, target.name, listener.via);
    if (routed && !routed.refused) return { node: routed.dest, why: '', via: routed.path.hops.slice(0, -1) };
    const why = `no peer ${canonicalName(target.name)}`;
    return { why: routed?.refused ? `${why}; ${routed.refused}` : why };
  }

  /**
   * The mesh's route from `node` to the node called `name` once routes have converged, and why
   * the transit policy on the way would refuse it (src/mesh/), with the status requests get
   * then (403; 503 when a node on the way would not learn the route); undefined when there is none.
   */
  routeTo(node: TopoNode, name: string, via?: readonly string[]): { dest: TopoNode; path: MeshPath<TopoNode>; refused?: string; status?: number } | undefined {
    const named = (n: string): TopoNode | undefined => this.nodes.find((x) => x.name === canonicalName(n));
    const dest = named(name);
    if (!dest) return undefined;
    let path: MeshPath<TopoNode> | undefined;
    if (via && via.length > 0) {
      const hops = [...via.map(named), dest];
      if (hops.some((h) => h === undefined)) return undefined;
      const pinned = pinnedPath(this.tunnels, node, hops as TopoNode[]);
      if (typeof pinned === 'string') return { dest, path: { hops: hops as TopoNode[], cost: 0 }, refused: pinned };
      path = pinned;
    } else {
      path = meshPath(this.tunnels, node, dest);
      if (!path) {
        const unlearned = meshPath(this.tunnels, node, dest, false);
        const refused = unlearned && learnProblem(this.tunnels, node, unlearned);
        return unlearned && refused ? { dest, path: unlearned, refused, status: 503 } : undefined;
      }
    }
    const refused = transitProblem(this.tunnels, node, path);
    return { dest, path, ...(refused ? { refused, status: 403 } : {}) };
  }

  sameMachine(a: TopoNode, b: TopoNode): boolean {
    return this.root(a.index) === this.root(b.index);
  }

  /** The tunnel `node` dials for a listener's `ea` URL (as written, like ListenerTarget). */
  tunnelOf(node: TopoNode, url: string): Tunnel | undefined {
    return this.tunnels.find((t) => t.client === node && t.config.url === url);
  }

  /** Tunnels that connect to `server`'s tunnel server presenting `name`. */
  peersNamed(server: TopoNode, name: string): Tunnel[] {
    const want = canonicalName(name);
    return this.tunnels.filter((t) => t.server === server && t.presents === want);
  }

  /**
   * The listener an outgoing URL lands on when `performer` performs it: a loopback host means
   * the performer's own machine (its own listeners first); any other host must be bound exactly.
   */
  listenerFor(performer: TopoNode, ou: URL): ListenerRef | undefined {
    const local = isLoopback(ou.hostname);
    const order = [performer, ...this.nodes.filter((n) => n !== performer)];
    for (const node of order) {
      if (local && !this.sameMachine(node, performer)) continue;
      const listener = listenerOn(node, ou);
      if (listener) return { node, listener };
    }
    return undefined;
  }

  /**
   * A node that performs an `ou` on 127.0.0.1 which lands on no listener of its machine so far,
   * but on exactly one other node's, shares that node's machine. Repeated until nothing joins.
   */
  private joinByLoopbackOutgoing(): void {
    for (let joined = true; joined;) {
      joined = false;
      for (const node of this.nodes) {
        for (const listener of node.config.listeners) {
          const performer = this.performerOf(node, listener).node;
          if (!performer) continue;
          for (const m of listener.mappings) {
            if (!isLoopback(m.outgoing.hostname) || this.listenerFor(performer, m.outgoing)) continue;
            const elsewhere = this.nodes.filter((n) => !this.sameMachine(n, performer) && listenerOn(n, m.outgoing));
            const other = elsewhere.length === 1 ? elsewhere[0] : undefined;
            if (!other) continue;
            this.join(performer, other);
            joined = true;
          }
        }
      }
    }
  }

  private resolveTunnel(client: TopoNode, config: ClientConfig): Tunnel {
    const tunnel: Tunnel = {
      client, config, at: declaredAt(client.config, config.url), presents: canonicalName(config.name),
      server: undefined, alsoServedBy: [], otherScheme: undefined,
    };
    const mqtt = config.mqtt;
    if (mqtt) {
      // Through a broker, the server is found by name: the node of that name serving over MQTT.
      const named = this.nodes.filter((n) => n.name === canonicalName(mqtt.server) && n.config.server?.mqtt);
      tunnel.server = named[0];
      tunnel.alsoServedBy = named.slice(1);
      return tunnel;
    }
    const url = parseTunnelUrl(config.url);
    if (!url) return tunnel;
    const { host, port } = serverEndpoint(url);
    const tls = url.protocol === 'wss:';
    const listening = this.nodes.filter((n) => {
      const sp = n.config.server;
      return sp?.port === port && port !== 0 && !sp.mqtt && accepts(sp.host, host);
    });
    // A server bound to exactly this address is a better answer than one bound to all of them.
    const exact = listening.filter((n) => !isWildcard(n.config.server?.host ?? ''));
    const best = exact.length > 0 ? exact : listening;
    const sameScheme = best.filter((n) => n.config.server?.tls === tls);
    tunnel.server = sameScheme[0];
    tunnel.alsoServedBy = sameScheme.slice(1);
    tunnel.otherScheme = sameScheme.length === 0 ? best[0] : undefined;
    return tunnel;
  }

  private root(i: number): number {
    let r = i;
    for (let up = this.machineOf[r]; up !== undefined && up !== r; up = this.machineOf[r]) r = up;
    return r;
  }

  private join(a: TopoNode, b: TopoNode): void {
    this.machineOf[this.root(a.index)] = this.root(b.index);
  }
}

/**
 * The listener of `node` an outgoing URL lands on, by port, scheme and address. A wildcard
 * listener takes a loopback address, but not a host name: a listener on all interfaces of
 * some machine cannot be told apart from an unrelated server with the same port.
 */
function listenerOn(node: TopoNode, ou: URL): ListenerConfig | undefined {
  const tls = ou.protocol === 'https:';
  const port = ou.port === '' ? (tls ? 443 : 80) : Number(ou.port);
  const local = isLoopback(ou.hostname);
  return node.config.listeners.find((l) => l.port === port && port !== 0 && (l.tlsMaterial !== undefined) === tls &&
    (local || !isWildcard(l.host)) && accepts(l.host, ou.hostname));
}

/** `wstc["url"]` when written there, else the first listener whose `ea` implies it. */
function declaredAt(config: NodeConfig, url: string): string {
  if (config.raw.wstc && Object.hasOwn(config.raw.wstc, url)) return formatPath(['wstc', url]);
  const listener = config.listeners.find((l) => l.target.kind === 'ea' && l.target.url === url);
  return listener ? formatPath(['proxy', listener.key, 'ea']) : formatPath(['wstc', url]);
}
