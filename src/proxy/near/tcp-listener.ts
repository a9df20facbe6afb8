/**
 * A `tcp://host:port` listener (doc/tcp.md): every connection it accepts becomes one TCP
 * stream to `to` at the node its target names, joined to the client's socket once the far end
 * has connected (half-close and resets carried both ways). `ca` and the per-address cap are
 * judged before anything is opened; each connection leaves one `tcp.access` record.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { formatTcpTarget } from '../../config/endpoint.js';
import type { TcpListenerConfig, Tuning } from '../../config/types.js';
import { WestError } from '../../errors.js';
import type { TcpRecord } from '../../events.js';
import { boundPort, listenOn } from '../../listen.js';
import type { Logger } from '../../log.js';
import { AddressAllowlist } from '../../net/allow.js';
import type { TunnelStream } from '../../tunnel/stream.js';
import { spliceTcp } from '../shared/splice.js';
import { ConnectionTable } from './connections.js';
import { lostBeforeUse } from './tcp-open.js';

export interface TcpListenerOptions {
  config: TcpListenerConfig;
  nodeName: string;
  tuning: Tuning;
  log: Logger;
  /** Opens the stream for one connection; resolves once the far end connected (near/tcp-open.ts). */
  open(config: TcpListenerConfig, id: string): Promise<TunnelStream>;
  /** Called once per finished connection (after its `tcp.access` line). */
  onRecord?: (record: TcpRecord) => void;
}

export class TcpListener {
  config: TcpListenerConfig;
  tuning: Tuning;
  readonly stats = { connections: 0, open: 0, refused: 0 };
  private allow: AddressAllowlist;
  private draining = false;
  private readonly server: net.Server;
  private readonly connections = new ConnectionTable();
  private readonly sockets = new Set<net.Socket>();
  private readonly streams = new Set<TunnelStream>();

  constructor(private readonly opts: TcpListenerOptions) {
    this.config = opts.config;
    this.tuning = opts.tuning;
    this.allow = new AddressAllowlist(opts.config.allow);
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  get key(): string {
    return this.config.key;
  }

  get port(): number {
    return boundPort(this.server);
  }

  /** Where its connections go, as people read it: `node → host:port`. */
  get targetName(): string {
    const t = this.config.target;
    return t.kind === 'en' ? t.name : t.url;
  }

  async listen(): Promise<void> {
    this.draining = false;
    await listenOn(this.server, this.config);
    this.opts.log.info('tcp.listening', { listener: this.config.key, port: this.port, target: this.targetName, to: formatTcpTarget(this.config.to) });
  }

  /** A reloaded config for the same endpoint: the next connection takes it; open ones go on. */
  update(config: TcpListenerConfig, tuning: Tuning): void {
    this.config = config;
    this.tuning = tuning;
    this.allow = new AddressAllowlist(config.allow);
  }

  stopAccepting(): void {
    this.draining = true;
    this.server.close();
  }

  /** Listens again after stopAccepting() (a reload rolled back). */
  async listenAgain(): Promise<void> {
    await this.listen();
  }

  /** The drain time is over: every connection still open is reset. */
  abortInFlight(): void {
    for (const stream of this.streams) stream.reset('draining', `node ${this.opts.nodeName} is shutting down`);
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  async close(): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.abortInFlight();
    await closed;
  }

  private accept(socket: net.Socket): void {
    const client = socket.remoteAddress ?? '';
    socket.on('error', () => { /* judged by whoever owns the socket next; never crash */ });
    const refuse = (why: string): void => {
      this.stats.refused++;
      this.opts.log.debug('tcp.refused', { listener: this.config.key, client, reason: why });
      socket.destroy();
    };
    const why = this.draining ? 'draining'
      : !this.allow.allows(client) ? 'client address not in "ca"'
        : !this.connections.admit(socket, this.tuning.maxConnectionsPerAddress) ? `over west.maxConnectionsPerAddress (${this.tuning.maxConnectionsPerAddress})`
          : undefined;
    if (why !== undefined) {
      refuse(why);
      return;
    }
    this.stats.connections++;
    this.stats.open++;
    this.sockets.add(socket);
    const id = randomUUID();
    const config = this.config;
    const started = performance.now();
    let stream: TunnelStream | undefined;
    let failure: WestError | undefined;
    const finish = (): void => {
      this.stats.open--;
      this.sockets.delete(socket);
      if (stream) this.streams.delete(stream);
      const clean = stream !== undefined && stream.readableEnded && stream.writableFinished;
      this.record({
        id, listener: config.key, node: this.targetName, to: formatTcpTarget(config.to), client,
        outcome: stream === undefined ? 'refused' : clean ? 'closed' : 'reset',
        durationMs: performance.now() - started, bytesIn: stream?.bytesOut ?? 0, bytesOut: stream?.bytesIn ?? 0,
        ...(failure ? { failure: { code: failure.code, node: failure.node, message: failure.message } } : {}),
      });
    };
    this.opts.open(config, id).then((opened) => {
      if (socket.destroyed) {
        // The client left while the far end connected: the far end lets go too.
        opened.on('error', () => {});
        opened.reset('cancel', 'the client closed the connection before the far end connected');
        finish();
        return;
      }
      stream = opened;
      // Reset in the same turn it connected: its 'close' is gone, nothing below would hear it.
      const lost = lostBeforeUse(opened, this.opts.nodeName);
      if (lost) {
        failure = lost;
        socket.resetAndDestroy();
        finish();
        return;
      }
      this.streams.add(opened);
      opened.once('close', () => {
        if (socket.destroyed) finish();
        else socket.once('close', finish);
      });
      spliceTcp(socket, opened, 'cancel', `client ${client}`);
      socket.resume();
    }, (err: unknown) => {
      failure = err instanceof WestError ? err : new WestError('internal', this.opts.nodeName, String(err));
      if (!socket.destroyed) socket.resetAndDestroy();
      finish();
    });
  }

  private record(r: TcpRecord): void {
    const log = this.opts.log;
    const fields = {
      id: r.id, listener: r.listener, target: r.node, to: r.to, client: r.client, outcome: r.outcome,
      ms: Math.round(r.durationMs * 10) / 10, in: r.bytesIn, out: r.bytesOut, error: r.failure?.code, at: r.failure?.node, reason: r.failure?.message,
    };
    if (r.outcome === 'refused') log.warn('tcp.access', fields);
    else if (log.enabled('info')) log.info('tcp.access', fields);
    this.opts.onRecord?.(r);
  }
}
