/**
 * Where a request goes from this node: the tunnel a listener's target names (dialled or
 * awaited), and this node's own listener a far end's URL reaches over loopback. The narrow
 * interface between the proxy layer and the node's tunnels.
 */
import { canonicalName, type ListenerConfig, type NodeConfig } from './config/types.js';
import { WestError } from './errors.js';
import type { RouteSpeaker } from './mesh/speaker.js';
import { boundAcceptsLoopback, isLoopbackHost } from './net/loopback.js';
import type { ProxyListener } from './proxy/near/listener.js';
import type { TunnelClient } from './tunnel/client.js';
import { spreadOver } from './tunnel/pool.js';
import type { TunnelServer } from './tunnel/server.js';
import { MESH_VERSION, type OpenHead } from './tunnel/frame.js';
import type { TunnelSession } from './tunnel/session.js';
import type { TunnelStream } from './tunnel/stream.js';

/** What routing reads of the running node (its live parts change on reload). */
export interface RoutingHost {
  readonly config: NodeConfig;
  readonly server: TunnelServer | undefined;
  readonly clients: ReadonlyMap<string, TunnelClient>;
  readonly listeners: ReadonlyMap<string, ProxyListener>;
  /** The mesh's routes, when this node has them. */
  readonly mesh?: RouteSpeaker;
}

/** What a listener (http or tcp) or `west pipe` names as the way to its far end. */
type Target = Pick<ListenerConfig, 'target' | 'via'>;

/** Where a listener's requests are opened: a tunnel session, or a mesh route through one. */
export interface StreamOpener {
  readonly peerName: string;
  openStream(head: OpenHead): TunnelStream;
}

/**
 * Streams for `dest` opened on the session of the route's next hop, addressed by name (and with
 * the rest of a pinned path, `via`).
 */
function meshPath(session: TunnelSession, dest: string, via: string[] = []): StreamOpener {
  // A route's link is one connection; the streams go over every connection of its pool.
  const opener = spreadOver(session);
  return {
    peerName: session.peerName,
    openStream: (head) => opener.openStream({ ...head, to: dest, ...(via.length > 0 ? { via } : {}) }),
  };
}

/** One wait for a peer name, shared by every request that waits for it. */
interface PeerWait {
  session: Promise<TunnelSession | undefined>;
  waiters: number;
  cancel(): void;
}

export class Router {
  private readonly peerWaits = new Map<string, PeerWait>();

  constructor(private readonly host: RoutingHost) {}

  /**
   * The tunnel session a listener's requests travel through (for `en`, the best route of the
   * mesh to that node: straight to it when it is a peer, else through the next hop), or why
   * there is none: at once when it is connected (every request asks), else once it is dialled
   * or has connected.
   */
  sessionFor(listener: Target): StreamOpener | WestError | Promise<StreamOpener | WestError> {
    const target = listener.target;
    const ready = target.kind === 'ea' ? this.host.clients.get(target.url)?.opener : this.byName(listener, target.name);
    return ready ?? this.sessionLater(listener);
  }

  /** A listener's `en` target as it stands: a pinned path, a route of the mesh, a peer, or nothing yet. */
  private byName(listener: Target, dest: string): StreamOpener | WestError | undefined {
    const via = listener.via ?? [];
    if (via.length > 0) return this.pinned(via, dest);
    const route = this.host.mesh?.lookup(dest);
    if (route) return route.path.length === 1 ? spreadOver(route.link) : meshPath(route.link, route.dest);
    return this.host.server?.get(dest);
  }

  private async sessionLater(listener: Target): Promise<StreamOpener | WestError> {
    const { name, tuning } = this.host.config;
    const target = listener.target;
    if (target.kind === 'ea') {
      const client = this.host.clients.get(target.url);
      if (!client) return new WestError('internal', name, `no tunnel client for ${target.url}`);
      const session = await client.acquire(tuning.connectTimeoutMs, tuning.peerWaitMs);
      if (session) return client.opener ?? session;
      // Why it is down (a refusal naming other addresses, a TLS error) is the operator's
      // business: it is in this node's log (tunnel.redial) and /state.json, not in the answer.
      return new WestError('tunnel_down', name, `tunnel to ${target.url} is not connected`);
    }
    const session = this.byName(listener, target.name) ?? await this.waitForPeer(target.name);
    if (session) return session;
    return new WestError('peer_not_connected', name, `peer ${target.name} is not connected to this node's tunnel server, and no tunnel has a route to it`);
  }

  /** A pinned path (`via`): its first node must be a peer of this node speaking the mesh. */
  private pinned(via: string[], dest: string): StreamOpener | WestError {
    const { name } = this.host.config;
    const [first = '', ...rest] = via;
    const route = this.host.mesh?.lookup(first);
    if (route?.path.length !== 1) {
      return new WestError('no_route', name, `the first node of the pinned path ("via"), ${first}, is not connected to this node`);
    }
    if (route.link.wire < MESH_VERSION) {
      return new WestError('unsupported', name, `the first node of the pinned path ("via"), ${first}, speaks an older wire version, which cannot carry a path`);
    }
    return meshPath(route.link, canonicalName(dest), rest);
  }

  /**
   * The plain-HTTP listener of this node that `url` reaches over loopback: same port, and a
   * loopback host the listener is bound to (or it is bound to every interface).
   */
  localListener(url: URL): ProxyListener | undefined {
    // Asked for every request a far end performs; most far ends have no listener at all.
    if (this.host.listeners.size === 0) return undefined;
    if (url.protocol !== 'http:' || !isLoopbackHost(url.hostname)) return undefined;
    const port = Number(url.port || 80);
    for (const l of this.host.listeners.values()) {
      if (l.port === port && !l.config.tlsMaterial && boundAcceptsLoopback(l.config.host, url.hostname)) return l;
    }
    return undefined;
  }

  /**
   * Waits up to `west.peerWait` for a peer of that name to connect (not at all by default).
   * Every request waiting for one name shares one listener on the server, however many wait.
   */
  private async waitForPeer(name: string): Promise<StreamOpener | undefined> {
    const server = this.host.server;
    const waitMs = this.host.config.tuning.peerWaitMs;
    if (!server || waitMs <= 0) return undefined;
    const key = canonicalName(name);
    let wait = this.peerWaits.get(key);
    if (!wait) {
      wait = this.nextSession(server, key);
      this.peerWaits.set(key, wait);
    }
    const shared = wait;
    shared.waiters++;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), waitMs); });
    try {
      const session = await Promise.race([shared.session, timeout]);
      return session && (server.get(key) ?? session);
    } finally {
      clearTimeout(timer);
      if (--shared.waiters === 0) shared.cancel();
    }
  }

  /** The next session of `key` on `server` (undefined if the wait is cancelled first). */
  private nextSession(server: TunnelServer, key: string): PeerWait {
    let done!: (s: TunnelSession | undefined) => void;
    const session = new Promise<TunnelSession | undefined>((resolve) => { done = resolve; });
    const finish = (s: TunnelSession | undefined): void => {
      server.off('session', onSession);
      if (this.peerWaits.get(key) === wait) this.peerWaits.delete(key);
      done(s);
    };
    const onSession = (s: TunnelSession): void => {
      if (canonicalName(s.peerName) === key) finish(s);
    };
    server.on('session', onSession);
    const wait: PeerWait = { session, waiters: 0, cancel: () => finish(undefined) };
    return wait;
  }
}
