/**
 * One running west node: its tunnel server, tunnel clients, proxy listeners and control port,
 * wired together. Streams a peer opens on any tunnel are performed here (src/proxy/outgoing).
 */
import { EventEmitter } from 'node:events';
import { NodeAccess } from './access/node-access.js';
import { canonicalName, type ClientConfig, type ListenerConfig, type NodeConfig, type TcpListenerConfig } from './config/types.js';
import { securityFindings } from './check/security.js';
import type { MetricsJson } from './control/metrics.js';
import { ControlServer } from './control/server.js';
import type { NodeState } from './control/state.js';
import type { NodeEvents } from './events.js';
import type { Logger } from './log.js';
import { arrive, performArrived, type ArrivalContext } from './mesh/arrive.js';
import { RouteSpeaker } from './mesh/speaker.js';
import { learnAllowed } from './mesh/transit.js';
import { snapshotState } from './node-state.js';
import type { OutgoingContext } from './proxy/far/attempt.js';
import { EgressPolicy } from './proxy/far/egress.js';
import { OriginPools } from './proxy/far/origins.js';
import { performRequest } from './proxy/far/perform.js';
import { ProxyListener } from './proxy/near/listener.js';
import { TcpListener } from './proxy/near/tcp-listener.js';
import { openTcpStream } from './proxy/near/tcp-open.js';
import { describePlan, endpointKey, planReload } from './reload.js';
import { bindStaged, type Staged } from './reload-stage.js';
import { Router } from './routing.js';
import { TunnelClient, type PoolShare } from './tunnel/client.js';
import { FlowBudget, type FlowLimits } from './tunnel/flow.js';
import { MIN_WINDOW } from './tunnel/handshake.js';
import { TunnelServer } from './tunnel/server.js';
import type { TunnelSession } from './tunnel/session.js';
import type { TunnelStream } from './tunnel/stream.js';
import { WestError } from './errors.js';
import { TcpListeners } from './tcp-listeners.js';
import { WazigateSides } from './wazigate/sides.js';

export { VERSION } from './version.js';

export class WestNode {
  /** Requests finished, tunnels up and down: for metrics and the status page. */
  readonly events = new EventEmitter<NodeEvents>();
  readonly startedAt = new Date();
  config: NodeConfig;
  server: TunnelServer | undefined;
  readonly clients = new Map<string, TunnelClient>();
  /** Proxy listeners by endpoint (`host:port`). */
  readonly listeners = new Map<string, ProxyListener>();
  /** `tcp://` listeners (doc/tcp.md). */
  readonly tcpListeners: TcpListeners;
  control: ControlServer | undefined;
  /** The mesh: routes learned over every tunnel (src/mesh/). */
  readonly mesh: RouteSpeaker;
  /** The wazigate-tunnel sides this node plays (src/wazigate/); fixed until a restart. */
  readonly wazigate: WazigateSides;
  private readonly log: Logger;
  /** What a stream a peer opens needs to be performed, relayed or refused (src/mesh/arrive.ts). */
  private readonly arrival: ArrivalContext;
  private readonly outgoing: OutgoingContext;
  private readonly router = new Router(this);
  /** What every receive window of this node draws from (west.memoryBudget). */
  private readonly budget: FlowBudget;
  /** Session keys, rendezvous and the auth hook (src/access/). */
  readonly access: NodeAccess;
  private stopped = false;

  /** @param workers with `west.workers` above 1: the node's pool id and this worker's place (src/workers/). */
  constructor(config: NodeConfig, log: Logger, readonly workers?: PoolShare) {
    this.config = config;
    this.log = log;
    this.budget = new FlowBudget(config.tuning.memoryBudget, MIN_WINDOW);
    this.access = new NodeAccess(config, log, async (binding, id) => {
      try {
        return await this.openTcp({ target: { kind: 'en', name: binding.to } }, binding.target, { id });
      } catch (err) {
        return err instanceof WestError ? err : new WestError('internal', config.name, String(err));
      }
    });
    this.outgoing = {
      nodeName: config.name, egress: undefined, responseTimeoutMs: 0, log, origins: new OriginPools(config.tuning.connectTimeoutMs),
      localListener: (url) => this.router.localListener(url),
      authorize: this.access.authorizeStream,
    };
    this.mesh = new RouteSpeaker(config.name, config.tuning.maxHops, config.clients.map((c) => c.name), log);
    this.arrival = {
      nodeName: config.name, speaker: this.mesh, policy: { relays: [] }, maxHops: config.tuning.maxHops, log,
      perform: (stream, origin) => {
        this.events.emit('performed', { hops: stream.head?.hops ?? 1 });
        performRequest(stream, origin, this.outgoing);
      },
    };
    this.applyTuning();
    if (config.server) this.server = this.makeServer();
    for (const c of config.clients) this.clients.set(c.url, this.makeClient(c));
    for (const l of config.listeners) this.listeners.set(endpointKey(l), this.makeListener(l));
    this.tcpListeners = new TcpListeners((l, tuning) => this.makeTcpListener(l, tuning), config);
    if (config.control) this.control = this.makeControl();
    this.wazigate = new WazigateSides(config, log, () => this.outgoing.egress, (record) => this.events.emit('access', record));
  }

  /** Binds every port (failing fast if one is taken), then dials the early tunnels. */
  async start(): Promise<void> {
    this.warnIfOpenRelay();
    for (const f of securityFindings(this.config)) this.log.warn(f.event, f.fields);
    try {
      await this.server?.listen();
      for (const l of this.listeners.values()) await l.listen();
      await this.tcpListeners.listen();
      await this.wazigate.listen();
      await this.control?.listen();
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    for (const client of this.clients.values()) if (client.config.early) client.start();
    this.log.info('node.started', {
      name: this.config.name, server: this.config.server?.url, tunnels: this.clients.size, listeners: this.listeners.size,
      tcpListeners: this.tcpListeners.size || undefined,
      control: this.control ? this.control.port : undefined,
    });
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `drainMs`, then closes
   * everything. Idempotent.
   */
  async stop(drainMs = this.config.tuning.drainTimeoutMs): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const l of this.listeners.values()) l.stopAccepting();
    this.tcpListeners.stopAccepting();
    const deadline = Date.now() + drainMs;
    while (Date.now() < deadline && this.inFlight() > 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (this.inFlight() > 0) {
      this.log.warn('node.drain_timeout', { inFlight: this.inFlight(), drainMs });
      // What has no answer yet gets one (503 draining) rather than a cut connection; give
      // those answers a moment to leave before the sockets close.
      for (const l of this.listeners.values()) l.abortInFlight();
      this.tcpListeners.abortInFlight();
      const flushBy = Date.now() + 1000;
      while (Date.now() < flushBy && [...this.listeners.values()].some((l) => l.stats.inFlight > 0)) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await Promise.all([...this.listeners.values()].map((l) => l.close()));
    await this.tcpListeners.close();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    await this.wazigate.close();
    await this.server?.close();
    await this.control?.close();
    this.access.close();
    this.outgoing.origins.close();
    this.log.info('node.stopped', { name: this.config.name });
  }

  /**
   * Applies a new config without a restart (SIGHUP), all or nothing: everything the new config
   * binds (listeners, a moved tunnel server or control port) is bound first, on the side; if
   * one cannot be, what was opened is closed, anything unbound to make room is bound again,
   * and the error is thrown with nothing changed. Only then is the new config swapped in.
   * Only what changed is touched, so unchanged tunnels stay up and kept listeners keep their
   * connections.
   */
  async reload(next: NodeConfig): Promise<void> {
    const plan = planReload(this.config, next);
    if (plan.refused) throw new Error(plan.refused);
    const stagedTcp = await this.tcpListeners.stage(next, next.tuning.drainTimeoutMs);
    let staged: Staged;
    try {
      staged = await bindStaged({
        config: this.config, listeners: this.listeners, server: this.server, control: this.control, log: this.log,
        makeListener: (l, tuning) => this.makeListener(l, tuning),
        makeServer: (config) => this.makeServer(config),
        makeControl: (endpoint) => this.makeControl(endpoint),
        restore: (parts) => {
          if (parts.server) this.server = parts.server;
          if (parts.control) this.control = parts.control;
        },
      }, plan, next);
    } catch (err) {
      await stagedTcp.rollback();
      throw err;
    }
    stagedTcp.commit();

    const old = { server: this.server, control: this.control };
    this.config = next;
    this.applyTuning();
    this.access.setConfig(next);
    if (plan.tuning) {
      const t = next.tuning;
      const shared = { recvWindow: t.streamWindow, heartbeatMs: t.heartbeatMs, maxStreams: t.maxStreams, idleTimeoutMs: t.idleTimeoutMs, wireVersion: t.wireVersion, flow: this.flowLimits() };
      this.server?.setTuning(shared);
      for (const c of this.clients.values()) {
        c.setTuning({ ...shared, connectTimeoutMs: t.connectTimeoutMs, reconnectMinMs: t.reconnectMinMs, reconnectMaxMs: t.reconnectMaxMs });
      }
      // Kept listeners take the new tuning with update(); only their header limit is fixed at bind time.
      for (const l of this.listeners.values()) l.update(l.config, t);
    }
    for (const l of plan.listeners.update) this.listeners.get(endpointKey(l))?.update(l, next.tuning);
    for (const l of plan.listeners.rotate) this.listeners.get(endpointKey(l))?.rotateCertificate(l, next.tuning);
    for (const key of [...plan.listeners.remove, ...plan.listeners.replace.map(endpointKey)]) {
      const l = this.listeners.get(key);
      this.listeners.delete(key);
      if (l) void this.retire(l);
    }
    for (const l of staged.listeners) this.listeners.set(endpointKey(l.config), l);

    for (const url of plan.clients.remove) void this.dropClient(url);
    for (const c of plan.clients.replace) await this.dropClient(c.url);
    for (const c of [...plan.clients.add, ...plan.clients.replace]) {
      const client = this.makeClient(c);
      this.clients.set(c.url, client);
      if (c.early) client.start();
    }

    if (plan.rebindServer) {
      this.server = staged.server;
      await old.server?.close();
    } else if (plan.serverUpdate && next.server) {
      this.server?.setConfig(next.server);
    }
    if (plan.rebindControl) {
      this.control = staged.control;
      await old.control?.close();
    }
    this.log.info('node.reloaded', { source: next.source, ...describePlan(plan) });
  }

  /**
   * Requests in progress here: exchanges at this node's listeners, and requests peers opened
   * that this node performs. (A stream a listener opened is its exchange's, not one more.)
   */
  inFlight(): number {
    let n = this.tcpListeners.open();
    for (const l of this.listeners.values()) n += l.stats.inFlight;
    n += this.wazigate.inFlight();
    for (const s of this.sessions()) for (const stream of s.streams.values()) if (stream.head) n++;
    return n;
  }

  /** With `west.workers` above 1, worker 0 adds the other workers' counts here (src/workers/). */
  stateWith: ((state: NodeState) => NodeState) | undefined;
  /** With `west.workers` above 1, at worker 0: the other workers' counters and histograms for `/metrics`. */
  countsWith: (() => MetricsJson[]) | undefined;

  /** A snapshot of the live state, for the control port. */
  state(): NodeState {
    const state = snapshotState(this);
    return this.stateWith ? this.stateWith(state) : state;
  }

  /** A node that performs peers' requests with no egress allowlist fetches anything it is asked. */
  private warnIfOpenRelay(): void {
    const c = this.config;
    if (c.egress || (!c.server && c.clients.length === 0)) return;
    this.log.warn('security.open_relay', {
      hint: 'peers can make this node fetch any URL; set west.egress to the URLs they may reach (see doc/security.md)',
    });
  }

  /** Window growth caps and the budget, from the tuning, for the tunnels' sessions. */
  private flowLimits(): FlowLimits {
    const t = this.config.tuning;
    return { maxRecvWindow: t.maxStreamWindow, maxConnectionWindow: t.maxConnectionWindow, budget: this.budget };
  }

  private applyTuning(): void {
    const t = this.config.tuning;
    this.budget.limit = t.memoryBudget;
    this.outgoing.responseTimeoutMs = t.responseTimeoutMs;
    this.outgoing.origins.setConnectTimeout(t.connectTimeoutMs);
    this.outgoing.egress = this.config.egress ? new EgressPolicy(this.config.egress) : undefined;
    this.arrival.policy = { transit: this.config.transit, relays: this.config.relays };
    this.arrival.maxHops = t.maxHops;
  }

  private makeServer(config = this.config): TunnelServer {
    const { name, tuning, server: serverConfig } = config;
    if (!serverConfig) throw new Error('makeServer: this node has no tunnel server (wsts.sp)');
    const server = new TunnelServer({
      config: serverConfig, localName: name, recvWindow: tuning.streamWindow, heartbeatMs: tuning.heartbeatMs,
      maxStreams: tuning.maxStreams, idleTimeoutMs: tuning.idleTimeoutMs, wireVersion: tuning.wireVersion, log: this.log, flow: this.flowLimits(),
      authorize: this.access.authorizeTunnel,
      connectTimeoutMs: tuning.connectTimeoutMs,
    });
    server.on('session', (s) => {
      this.adopt(s, 1, false);
      this.events.emit('tunnel', { side: 'server', peer: s.peerName, up: true });
      s.once('close', (code, reason) => this.events.emit('tunnel', { side: 'server', peer: s.peerName, up: false, code, reason }));
    });
    return server;
  }

  private makeClient(c: ClientConfig): TunnelClient {
    const t = this.config.tuning;
    const client = new TunnelClient({
      config: c, recvWindow: t.streamWindow, heartbeatMs: t.heartbeatMs, connectTimeoutMs: t.connectTimeoutMs,
      maxStreams: t.maxStreams, idleTimeoutMs: t.idleTimeoutMs,
      reconnectMinMs: t.reconnectMinMs, reconnectMaxMs: t.reconnectMaxMs, wireVersion: t.wireVersion, log: this.log, flow: this.flowLimits(),
      ...(this.workers ? { share: this.workers } : {}),
    });
    client.on('session', (s) => {
      this.adopt(s, c.cost ?? 1, true);
      this.events.emit('tunnel', { side: 'client', peer: s.peerName, url: c.url, up: true });
      s.once('close', (code, reason) => this.events.emit('tunnel', { side: 'client', peer: s.peerName, url: c.url, up: false, code, reason }));
    });
    client.on('dial-failed', (reason) => this.events.emit('dial-failed', { url: c.url, reason }));
    return client;
  }

  private makeListener(l: ListenerConfig, tuning = this.config.tuning): ProxyListener {
    return new ProxyListener({
      config: l, nodeName: this.config.name, tuning, log: this.log,
      resolveSession: (cfg) => this.router.sessionFor(cfg),
      onAccess: (record) => this.events.emit('access', record),
      takeUpgrade: (key, req, socket, head) => this.access.takeUpgrade(key, req, socket, head),
    });
  }

  private makeTcpListener(l: TcpListenerConfig, tuning = this.config.tuning): TcpListener {
    return new TcpListener({
      config: l, nodeName: this.config.name, tuning, log: this.log,
      open: (cfg, id) => this.openTcp(cfg, cfg.to, { id }),
      onRecord: (record) => this.events.emit('tcp', record),
    });
  }

  /**
   * Opens a TCP stream to `to` (`host:port`, or parsed) at the node `target` names: a node of
   * the mesh by name (`{ target: { kind: 'en', name } }`, optionally a pinned `via`), or the
   * server of one of this node's tunnel clients (`{ kind: 'ea', url }`). Waits for the tunnel
   * as a listener's request would (west.peerWait, a dial on first use), then for the far end
   * to connect (at most `timeoutMs`, default west.responseTimeout). Resolves with the stream,
   * a Duplex with half-close (see near/tcp-open.ts); rejects with a WestError when refused.
   */
  async openTcp(
    target: Pick<TcpListenerConfig, 'target' | 'via'>, to: TcpListenerConfig['to'] | string, opts: { id?: string; timeoutMs?: number } = {},
  ): Promise<TunnelStream> {
    const opener = await this.router.sessionFor(target);
    if (opener instanceof WestError) throw opener;
    return openTcpStream(opener, to, { nodeName: this.config.name, timeoutMs: opts.timeoutMs ?? this.config.tuning.responseTimeoutMs, ...(opts.id ? { id: opts.id } : {}) });
  }

  private makeControl(endpoint = this.config.control): ControlServer {
    if (!endpoint) throw new Error('makeControl: this node has no control port (west.cp)');
    return new ControlServer({
      endpoint, state: () => this.state(), events: this.events, log: this.log,
      otherCounts: () => this.countsWith?.() ?? [],
      token: () => this.config.controlToken,
      keys: this.access.issuer((key) => [...this.listeners.values()].find((l) => l.key === key)?.port),
    });
  }

  /** A listener that left the config: stop accepting, let its requests finish, then close. */
  private async retire(listener: ProxyListener): Promise<void> {
    listener.stopAccepting();
    const deadline = Date.now() + this.config.tuning.drainTimeoutMs;
    while (listener.stats.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await listener.close();
  }

  private async dropClient(url: string): Promise<void> {
    const client = this.clients.get(url);
    this.clients.delete(url);
    await client?.close();
  }

  private *sessions(): Iterable<TunnelSession> {
    if (this.server) yield* this.server.sessions();
    for (const c of this.clients.values()) {
      if (c.pool) yield* c.pool.members;
      else if (c.session) yield c.session;
    }
  }

  /**
   * A tunnel is a link of the mesh; streams its peer opens are requests to perform here or to
   * relay (src/mesh/arrive.ts), refused once we are draining. `dialed`: this node dialed the
   * peer's tunnel server (which decides what the peer may advertise by default, `west.learn`).
   */
  private adopt(session: TunnelSession, cost: number, dialed: boolean): void {
    const peer = canonicalName(session.peerName);
    // Read at each advert, so a reload's west.learn applies to what peers say next.
    this.mesh.attach(session, cost, (dest) => learnAllowed(this.config.learn, peer, dest, dialed));
    // Relayed and refused streams are taken at their OPEN; the rest are performed here.
    session.takeOpen = (id, head) => (this.stopped ? undefined : arrive(session, id, head, this.arrival));
    session.on('stream', (stream) => {
      if (this.stopped) {
        stream.on('error', () => { /* the reset tells the peer; nothing else to do */ });
        stream.reset('draining', `node ${this.config.name} is shutting down`);
      }
      else performArrived(stream, session, this.arrival);
    });
  }
}
