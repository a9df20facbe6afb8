/**
 * One running west node: its tunnel server, tunnel clients, proxy listeners and control port,
 * wired together. Streams a peer opens on any tunnel are performed here (src/proxy/outgoing).
 */
import { EventEmitter } from 'node:events';
import { canonicalName, type ListenerConfig, type NodeConfig } from './config/types.js';
import { ControlServer } from './control/server.js';
import type { NodeState } from './control/state.js';
import { WestError } from './errors.js';
import type { NodeEvents } from './events.js';
import type { Logger } from './log.js';
import { ProxyListener } from './proxy/listener.js';
import { makeAgents, performRequest, type OutgoingContext } from './proxy/outgoing.js';
import { TunnelClient } from './tunnel/client.js';
import { TunnelServer } from './tunnel/server.js';
import type { TunnelSession } from './tunnel/session.js';

export const VERSION = '0.1.0';

export class WestNode {
  /** Requests finished, tunnels up and down: for metrics and the status page. */
  readonly events = new EventEmitter<NodeEvents>();
  readonly config: NodeConfig;
  readonly startedAt = new Date();
  server: TunnelServer | undefined;
  readonly clients = new Map<string, TunnelClient>();
  readonly listeners: ProxyListener[] = [];
  control: ControlServer | undefined;
  private readonly log: Logger;
  private readonly outgoing: OutgoingContext;
  private stopped = false;

  constructor(config: NodeConfig, log: Logger) {
    this.config = config;
    this.log = log;
    const { tuning } = config;
    this.outgoing = {
      nodeName: config.name,
      responseTimeoutMs: tuning.responseTimeoutMs,
      connectTimeoutMs: tuning.connectTimeoutMs,
      log,
      ...makeAgents(),
    };
    if (config.server) {
      this.server = new TunnelServer({
        config: config.server, localName: config.name, recvWindow: tuning.streamWindow, heartbeatMs: tuning.heartbeatMs, log,
      });
      this.server.on('session', (s) => {
        this.adopt(s);
        this.events.emit('tunnel', { side: 'server', peer: s.peerName, up: true });
        s.once('close', (code, reason) => this.events.emit('tunnel', { side: 'server', peer: s.peerName, up: false, code, reason }));
      });
    }
    for (const c of config.clients) {
      const client = new TunnelClient({
        config: c, recvWindow: tuning.streamWindow, heartbeatMs: tuning.heartbeatMs, connectTimeoutMs: tuning.connectTimeoutMs, log,
      });
      client.on('session', (s) => {
        this.adopt(s);
        this.events.emit('tunnel', { side: 'client', peer: s.peerName, url: c.url, up: true });
        s.once('close', (code, reason) => this.events.emit('tunnel', { side: 'client', peer: s.peerName, url: c.url, up: false, code, reason }));
      });
      client.on('dial-failed', (reason) => this.events.emit('dial-failed', { url: c.url, reason }));
      this.clients.set(c.url, client);
    }
    for (const l of config.listeners) {
      this.listeners.push(new ProxyListener({
        config: l, nodeName: config.name, tuning, log, resolveSession: (cfg) => this.resolveSession(cfg),
        onAccess: (record) => this.events.emit('access', record),
      }));
    }
    if (config.control) this.control = new ControlServer({ endpoint: config.control, state: () => this.state(), events: this.events, log });
  }

  /** Binds every port (failing fast if one is taken), then dials the early tunnels. */
  async start(): Promise<void> {
    if (this.config.server?.tls) {
      throw new Error(`wsts.sp ${this.config.server.url}: a wss:// tunnel server needs a certificate and key, ` +
        'and this version has no settings for them yet; listen on ws:// behind a TLS terminator instead');
    }
    try {
      await this.server?.listen();
      for (const l of this.listeners) await l.listen();
      await this.control?.listen();
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    for (const client of this.clients.values()) if (client.config.early) client.start();
    this.log.info('node.started', {
      name: this.config.name, server: this.config.server?.url, tunnels: this.clients.size, listeners: this.listeners.length,
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
    for (const l of this.listeners) l.stopAccepting();
    const deadline = Date.now() + drainMs;
    while (Date.now() < deadline && this.inFlight() > 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (this.inFlight() > 0) this.log.warn('node.drain_timeout', { inFlight: this.inFlight(), drainMs });
    await Promise.all(this.listeners.map((l) => l.close()));
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    await this.server?.close();
    await this.control?.close();
    this.outgoing.httpAgent.destroy();
    this.outgoing.httpsAgent.destroy();
    this.log.info('node.stopped', { name: this.config.name });
  }

  inFlight(): number {
    let n = 0;
    for (const l of this.listeners) n += l.stats.inFlight;
    for (const s of this.sessions()) n += s.streams.size;
    return n;
  }

  private *sessions(): Iterable<TunnelSession> {
    if (this.server) yield* this.server.sessions.values();
    for (const c of this.clients.values()) if (c.session) yield c.session;
  }

  /** Streams a peer opens are requests to perform here (refused once we are draining). */
  private adopt(session: TunnelSession): void {
    session.on('stream', (stream) => {
      if (this.stopped) stream.reset('draining', `node ${this.config.name} is shutting down`);
      else performRequest(stream, this.outgoing);
    });
  }

  private async resolveSession(listener: ListenerConfig): Promise<TunnelSession | WestError> {
    const name = this.config.name;
    const target = listener.target;
    if (target.kind === 'ea') {
      const client = this.clients.get(target.url);
      if (!client) return new WestError('internal', name, `no tunnel client for ${target.url}`);
      const session = await client.acquire(this.config.tuning.connectTimeoutMs);
      if (session) return session;
      const why = client.lastError ? `: ${client.lastError}` : '';
      return new WestError('tunnel_down', name, `tunnel to ${target.url} is not connected${why}`);
    }
    const session = this.server?.get(target.name);
    if (session) return session;
    return new WestError('peer_not_connected', name, `peer ${target.name} is not connected to this node's tunnel server`);
  }

  /** A snapshot of the live state, for the control port. */
  state(): NodeState {
    const c = this.config;
    return {
      name: c.name,
      version: VERSION,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeS: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      raw: c.raw,
      control: c.control ? { ...c.control, port: this.control?.port ?? c.control.port } : undefined,
      server: c.server && this.server ? {
        url: c.server.url,
        host: c.server.host,
        port: this.server.port || c.server.port,
        peers: [...this.server.sessions.values()].map((s) => ({
          name: s.peerName, address: s.remoteAddress, port: s.remotePort, since: s.connectedAt.toISOString(),
          streams: s.streams.size, streamsOpened: s.streamsOpened, bytesIn: s.bytesIn, bytesOut: s.bytesOut,
        })),
      } : undefined,
      tunnels: [...this.clients.values()].map((t) => ({
        url: t.config.url, as: t.config.name, early: t.config.early, state: t.state,
        connected: t.session !== undefined,
        since: t.session?.connectedAt.toISOString(),
        peer: t.session?.peerName,
        address: t.session?.remoteAddress,
        port: t.session?.remotePort,
        streams: t.session?.streams.size ?? 0,
        bytesIn: t.session?.bytesIn ?? 0,
        bytesOut: t.session?.bytesOut ?? 0,
        connects: t.connects,
        lastError: t.lastError,
      })),
      listeners: this.listeners.map((l) => ({
        key: l.config.key,
        host: l.config.host,
        port: l.port || l.config.port,
        target: l.config.target.kind === 'ea' ? { ea: l.config.target.url } : { en: l.config.target.name },
        connected: l.config.target.kind === 'ea'
          ? this.clients.get(l.config.target.url)?.session !== undefined
          : this.server?.get(canonicalName(l.config.target.name)) !== undefined,
        mappings: l.config.mappings.map((m) => ({ path: m.path, ou: m.outgoing.href, ca: m.allow })),
        ...l.stats,
        statuses: { ...l.stats.statuses },
      })),
    };
  }
}
