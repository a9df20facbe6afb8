/**
 * One running west node: its tunnel server, tunnel clients, proxy listeners and control port,
 * wired together. Streams a peer opens on any tunnel are performed here (src/proxy/outgoing).
 */
import { EventEmitter } from 'node:events';
import type { ClientConfig, ListenerConfig, NodeConfig } from './config/types.js';
import { ControlServer } from './control/server.js';
import type { NodeState } from './control/state.js';
import type { NodeEvents } from './events.js';
import type { Logger } from './log.js';
import { snapshotState } from './node-state.js';
import type { OutgoingContext } from './proxy/far/attempt.js';
import { EgressPolicy } from './proxy/far/egress.js';
import { OriginPools } from './proxy/far/origins.js';
import { performRequest } from './proxy/far/perform.js';
import { ProxyListener } from './proxy/near/listener.js';
import { describePlan, endpointKey, planReload } from './reload.js';
import { Router } from './routing.js';
import { TunnelClient } from './tunnel/client.js';
import { TunnelServer } from './tunnel/server.js';
import type { TunnelSession } from './tunnel/session.js';

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
  control: ControlServer | undefined;
  private readonly log: Logger;
  private readonly outgoing: OutgoingContext;
  private readonly router = new Router(this);
  private stopped = false;

  constructor(config: NodeConfig, log: Logger) {
    this.config = config;
    this.log = log;
    this.outgoing = {
      nodeName: config.name, egress: undefined, responseTimeoutMs: 0, log, origins: new OriginPools(config.tuning.connectTimeoutMs),
      localListener: (url) => this.router.localListener(url),
    };
    this.applyTuning();
    if (config.server) this.server = this.makeServer();
    for (const c of config.clients) this.clients.set(c.url, this.makeClient(c));
    for (const l of config.listeners) this.listeners.set(endpointKey(l), this.makeListener(l));
    if (config.control) this.control = this.makeControl();
  }

  /** Binds every port (failing fast if one is taken), then dials the early tunnels. */
  async start(): Promise<void> {
    this.warnIfOpenRelay();
    try {
      await this.server?.listen();
      for (const l of this.listeners.values()) await l.listen();
      await this.control?.listen();
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    for (const client of this.clients.values()) if (client.config.early) client.start();
    this.log.info('node.started', {
      name: this.config.name, server: this.config.server?.url, tunnels: this.clients.size, listeners: this.listeners.size,
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
    const deadline = Date.now() + drainMs;
    while (Date.now() < deadline && this.inFlight() > 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (this.inFlight() > 0) this.log.warn('node.drain_timeout', { inFlight: this.inFlight(), drainMs });
    await Promise.all([...this.listeners.values()].map((l) => l.close()));
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    await this.server?.close();
    await this.control?.close();
    this.outgoing.origins.close();
    this.log.info('node.stopped', { name: this.config.name });
  }

  /**
   * Applies a new config without a restart (SIGHUP): only what changed is touched, so
   * unchanged tunnels stay up and kept listeners keep their connections. New listeners bind
   * first; if one cannot, nothing changes and the error is thrown.
   */
  async reload(next: NodeConfig): Promise<void> {
    const plan = planReload(this.config, next);
    if (plan.refused) throw new Error(plan.refused);

    const added = plan.listeners.add.map((l) => this.makeListener(l, next.tuning));
    try {
      for (const l of added) await l.listen();
    } catch (err) {
      await Promise.all(added.map((l) => l.close()));
      throw err;
    }
    this.config = next;
    this.applyTuning();
    if (plan.tuning) {
      const t = next.tuning;
      const shared = { recvWindow: t.streamWindow, heartbeatMs: t.heartbeatMs, maxStreams: t.maxStreams, idleTimeoutMs: t.idleTimeoutMs };
      this.server?.setTuning(shared);
      for (const c of this.clients.values()) {
        c.setTuning({ ...shared, connectTimeoutMs: t.connectTimeoutMs, reconnectMinMs: t.reconnectMinMs, reconnectMaxMs: t.reconnectMaxMs });
      }
      // Kept listeners take the new tuning with update(); only their header limit is fixed at bind time.
      for (const l of this.listeners.values()) l.update(l.config, t);
    }
    for (const l of added) this.listeners.set(endpointKey(l.config), l);
    for (const l of plan.listeners.update) this.listeners.get(endpointKey(l))?.update(l, next.tuning);
    for (const key of plan.listeners.remove) {
      const l = this.listeners.get(key);
      this.listeners.delete(key);
      if (l) void this.retire(l);
    }

    for (const url of plan.clients.remove) void this.dropClient(url);
    for (const c of plan.clients.replace) await this.dropClient(c.url);
    for (const c of [...plan.clients.add, ...plan.clients.replace]) {
      const client = this.makeClient(c);
      this.clients.set(c.url, client);
      if (c.early) client.start();
    }

    if (plan.rebindServer) {
      await this.server?.close();
      this.server = next.server ? this.makeServer() : undefined;
      await this.server?.listen();
    } else if (plan.serverUpdate && next.server) {
      this.server?.setConfig(next.server);
    }
    if (plan.rebindControl) {
      await this.control?.close();
      this.control = next.control ? this.makeControl() : undefined;
      await this.control?.listen();
    }
    this.log.info('node.reloaded', { source: next.source, ...describePlan(plan) });
  }

  inFlight(): number {
    let n = 0;
    for (const l of this.listeners.values()) n += l.stats.inFlight;
    for (const s of this.sessions()) n += s.streams.size;
    return n;
  }

  /** A snapshot of the live state, for the control port. */
  state(): NodeState {
    return snapshotState(this);
  }

  /** A node that performs peers' requests with no egress allowlist fetches anything it is asked. */
  private warnIfOpenRelay(): void {
    const c = this.config;
    if (c.egress || (!c.server && c.clients.length === 0)) return;
    this.log.warn('security.open_relay', {
      hint: 'peers can make this node fetch any URL; set west.egress to the URLs they may reach (see doc/security.md)',
    });
  }

  private applyTuning(): void {
    const t = this.config.tuning;
    this.outgoing.responseTimeoutMs = t.responseTimeoutMs;
    this.outgoing.origins.setConnectTimeout(t.connectTimeoutMs);
    this.outgoing.egress = this.config.egress ? new EgressPolicy(this.config.egress) : undefined;
  }

  private makeServer(): TunnelServer {
    const { name, tuning } = this.config;
    const server = new TunnelServer({
      config: this.config.server!, localName: name, recvWindow: tuning.streamWindow, heartbeatMs: tuning.heartbeatMs,
      maxStreams: tuning.maxStreams, idleTimeoutMs: tuning.idleTimeoutMs, log: this.log,
    });
    server.on('session', (s) => {
      this.adopt(s);
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
      reconnectMinMs: t.reconnectMinMs, reconnectMaxMs: t.reconnectMaxMs, log: this.log,
    });
    client.on('session', (s) => {
      this.adopt(s);
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
    });
  }

  private makeControl(): ControlServer {
    return new ControlServer({
      endpoint: this.config.control!, state: () => this.state(), events: this.events, log: this.log,
      token: () => this.config.controlToken,
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
    if (this.server) yield* this.server.sessions.values();
    for (const c of this.clients.values()) if (c.session) yield c.session;
  }

  /** Streams a peer opens are requests to perform here (refused once we are draining). */
  private adopt(session: TunnelSession): void {
    session.on('stream', (stream) => {
      if (this.stopped) {
        stream.on('error', () => { /* the reset tells the peer; nothing else to do */ });
        stream.reset('draining', `node ${this.config.name} is shutting down`);
      }
      else performRequest(stream, session.peerName, this.outgoing);
    });
  }
}
