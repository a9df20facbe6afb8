/**
 * A proxy listener (`proxy["http://host:port"]`): the server that takes plain HTTP requests
 * and protocol upgrades from clients, and what it owns: who may connect and for how long, the
 * route table, and the counts. Each request is carried by http.ts, upgrade.ts or (from this
 * node's own far end) relay.ts. A plain-http listener reads its connections with the lean
 * front (h1/), which serves the common requests itself and hands the rest to Node's server.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ListenerConfig, Tuning } from '../../config/types.js';
import { WestError } from '../../errors.js';
import type { AccessRecord } from '../../events.js';
import { boundPort, closeNow, listenOn } from '../../listen.js';
import type { Logger } from '../../log.js';
import { AddressAllowlist } from '../../net/allow.js';
import type { TunnelStream } from '../../tunnel/stream.js';
import type { Attempt, LocalHandoff } from '../far/attempt.js';
import { sendFailure, sendRawFailure } from '../shared/failure.js';
import { viaPseudonym } from '../shared/passes.js';
import { PathMap } from '../shared/pathmap.js';
import { ConnectionTable } from './connections.js';
import type { ExchangeSink, ListenerStats } from './exchange.js';
import { LeanFront, type FrontCounts } from './h1/front.js';
import { acceptRequest } from './http.js';
import { relayToListener } from './relay.js';
import type { RouteTable, SessionResolver } from './route.js';
import { acceptUpgrade } from './upgrade.js';

export interface ProxyListenerOptions {
  config: ListenerConfig;
  nodeName: string;
  tuning: Tuning;
  resolveSession: SessionResolver;
  log: Logger;
  /** Called once per finished request (after the access log line). */
  onAccess?: (record: AccessRecord) => void;
  /** Takes an upgrade before the mappings do (`/remoteaccess/`, `/rendezvous/`: src/access/); true when taken. */
  takeUpgrade?: (listenerKey: string, req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /**
   * false: a plain-http listener without the lean front, every connection read by Node's
   * server (what tests compare the lean front's answers with). Default true.
   */
  leanFront?: boolean;
}

export class ProxyListener implements RouteTable, ExchangeSink, LocalHandoff {
  config: ListenerConfig;
  tuning: Tuning;
  paths: PathMap;
  allowlists: Map<string, AddressAllowlist>;
  via = '';
  draining = false;
  readonly stats: ListenerStats = { requests: 0, inFlight: 0, statuses: {} };
  readonly nodeName: string;
  readonly log: Logger;
  readonly resolveSession: SessionResolver;
  private readonly onAccess: ((record: AccessRecord) => void) | undefined;
  private readonly server: http.Server;
  /** Client connections: per-address counts, exchanges open on each, which are closing. */
  readonly connections = new ConnectionTable();
  /** Streams of exchanges in flight (an answer still to come or still streaming). */
  readonly active = new Set<TunnelStream>();
  /**
   * Sockets handed over by 'upgrade' and still open. Node's server.close() waits for them but
   * closeAllConnections() does not reach them: close() ends them itself.
   */
  private readonly upgraded = new Set<Duplex>();
  /** The lean front of a plain-http listener (an https one has Node's server alone). */
  private readonly front: LeanFront | undefined;

  constructor(opts: ProxyListenerOptions) {
    this.config = opts.config;
    this.tuning = opts.tuning;
    this.nodeName = opts.nodeName;
    this.log = opts.log;
    this.resolveSession = opts.resolveSession;
    this.onAccess = opts.onAccess;
    this.paths = new PathMap(opts.config.mappings);
    this.allowlists = allowlistsOf(opts.config);
    // requestTimeout 0: bodies may stream for hours. It would also turn Node's headersTimeout
    // off (its default is the smaller of the two), so that is set on its own: a client that
    // sends nothing or drips its head is answered 408 (checked every quarter of the timeout).
    // requireHostHeader false: west answers a missing Host itself (route.ts), so it knows the
    // connection is closing and does not serve a request pipelined behind it.
    const serverOptions = {
      requestTimeout: 0, requireHostHeader: false, headersTimeout: opts.tuning.headerTimeoutMs, keepAliveTimeout: 5000,
      connectionsCheckingInterval: Math.max(250, Math.min(5000, opts.tuning.headerTimeoutMs / 4)),
      maxHeaderSize: opts.tuning.maxHeaderSize,
    };
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      acceptRequest(this, req, res).catch((err: unknown) => {
        this.internalError(err);
        sendFailure(res, new WestError('internal', this.nodeName, 'internal error'), this.tuning);
      });
    };
    const tls = opts.config.tlsMaterial;
    this.server = tls
      ? https.createServer({ ...serverOptions, cert: tls.cert, key: tls.key }, onRequest)
      : http.createServer(serverOptions, onRequest);
    this.front = tls || opts.leanFront === false ? undefined : new LeanFront(this.server, this, this.log, () => this.config.key);
    this.server.on('connection', (socket: Socket) => {
      if (this.admit(socket)) this.front?.accept(socket);
    });
    // Expect: 100-continue is the origin's to answer (http.ts): Node must not answer it here.
    this.server.on('checkContinue', onRequest);
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgraded.add(socket);
      socket.once('close', () => this.upgraded.delete(socket));
      if (opts.takeUpgrade?.(this.config.key, req, socket, head)) return;
      acceptUpgrade(this, req, socket, head).catch((err: unknown) => {
        this.internalError(err);
        socket.destroy();
      });
    });
    // A forward proxy's CONNECT is not what a west listener is: say so instead of hanging up.
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
      socket.on('error', () => socket.destroy());
      this.refuseRaw(socket, new WestError('unsupported', this.nodeName, 'CONNECT is not supported: a west listener is not a forward proxy'), `CONNECT ${req.url ?? ''}`);
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const failure = err.code === 'HPE_HEADER_OVERFLOW'
        ? new WestError('head_too_large', this.nodeName, `request head is larger than ${this.tuning.maxHeaderSize} bytes (west.maxHeaderSize)`)
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? new WestError('head_timeout', this.nodeName, 'request head took too long')
          : new WestError('bad_request', this.nodeName, `malformed HTTP request (${err.code ?? err.message})`);
      // Bytes past a head, in its body: that exchange fails (400 if nothing was answered yet).
      if (this.connections.bodyBroken(socket, failure)) {
        this.log.debug('proxy.bad_request', { listener: this.config.key, status: failure.status, error: err.code ?? err.message });
        return;
      }
      this.refuseRaw(socket, failure, err.code ?? err.message);
    });
  }

  get key(): string {
    return this.config.key;
  }

  /** What the lean front served and handed to Node's server (undefined for an https listener). */
  get frontCounts(): Readonly<FrontCounts> | undefined {
    return this.front?.counts;
  }

  /** The port bound at listen(): getsockname once, not at each request a far end hands here (routing.ts). */
  private boundAt = 0;

  get port(): number {
    return this.server.listening ? this.boundAt : 0;
  }

  async listen(): Promise<void> {
    await listenOn(this.server, this.config);
    this.boundAt = boundPort(this.server);
    this.via = viaPseudonym(this.nodeName, this.port);
    this.log.info('proxy.listening', { listener: this.config.key, port: this.port });
  }

  /**
   * Takes a reloaded config for the same endpoint: new mappings, target and tuning apply to
   * the next request; requests in flight finish as they started.
   */
  update(config: ListenerConfig, tuning: Tuning): void {
    this.config = config;
    this.tuning = tuning;
    this.server.headersTimeout = tuning.headerTimeoutMs;
    this.paths = new PathMap(config.mappings);
    this.allowlists = allowlistsOf(config);
  }

  /**
   * A new certificate and key for an https listener, taken in place (setSecureContext): new
   * TLS handshakes get it, connections already open keep theirs and are not dropped.
   */
  rotateCertificate(config: ListenerConfig, tuning: Tuning): void {
    const tls = config.tlsMaterial;
    if (!(this.server instanceof https.Server) || !tls) throw new Error(`listener ${config.key} is not an https listener`);
    this.server.setSecureContext({ cert: tls.cert, key: tls.key });
    this.update(config, tuning);
  }

  /** Listens again after stopAccepting() (a reload rolled back): serves as before. */
  async listenAgain(): Promise<void> {
    this.draining = false;
    await this.listen();
  }

  /** A request this node's own far end would send to this listener over loopback (see relay.ts). */
  relay(a: Attempt): Promise<void> {
    return relayToListener(this, a);
  }

  /**
   * The drain time is over: every exchange still in flight fails as `draining`: 503 where no
   * answer has begun, a cut connection where one is streaming. The far ends are told to stop.
   */
  abortInFlight(): void {
    for (const stream of this.active) {
      stream.destroy(new WestError('draining', this.nodeName, 'this node is shutting down and the request did not finish within west.drainTimeout'));
    }
  }

  /** Stops accepting; in-flight requests go on until they finish or `close()` is called. */
  stopAccepting(): void {
    this.draining = true;
    this.server.close();
    this.server.closeIdleConnections();
    this.front?.closeIdle();
  }

  async close(): Promise<void> {
    this.draining = true;
    const closed = closeNow(this.server);
    this.front?.closeAll();
    for (const socket of this.upgraded) socket.destroy();
    await closed;
  }

  /** Logs and reports one finished exchange. */
  record(record: AccessRecord): void {
    if (this.log.enabled('info')) this.log.info('access', {
      id: record.id, listener: record.listener, mapping: record.mapping, method: record.method, path: record.path,
      status: record.status, ms: Math.round(record.durationMs * 10) / 10, in: record.bytesIn, out: record.bytesOut,
      client: record.client, completed: record.completed, upgrade: record.upgrade,
      error: record.failure?.code, at: record.failure?.node,
    });
    this.onAccess?.(record);
  }

  /**
   * Counts a new connection against its address's cap; one past the cap is closed at once,
   * before a byte of it is parsed (slowloris from one address cannot starve the others).
   */
  private admit(socket: Socket): boolean {
    const cap = this.tuning.maxConnectionsPerAddress;
    if (this.connections.admit(socket, cap)) return true;
    this.log.debug('proxy.connection_limit', { listener: this.config.key, client: socket.remoteAddress, cap });
    socket.destroy();
    return false;
  }

  /**
   * A request refused before it became an exchange (no head Node could parse, CONNECT). With
   * answers still owed on the connection (pipelining), the refusal must not jump the queue:
   * those are answered, then the connection closes.
   */
  refuseRaw(socket: Duplex, failure: WestError, why: string): void {
    if (this.connections.busy(socket)) this.connections.close(socket);
    else sendRawFailure(socket, failure, this.tuning);
    this.log.debug('proxy.bad_request', { listener: this.config.key, status: failure.status, error: why });
  }

  internalError(err: unknown): void {
    this.log.error('proxy.internal_error', { error: err instanceof Error ? err.stack : String(err) });
  }
}

function allowlistsOf(config: ListenerConfig): Map<string, AddressAllowlist> {
  return new Map(config.mappings.map((m) => [m.path, new AddressAllowlist(m.allow)]));
}
