/**
 * The tunnel server (`wsts.sp`): accepts west clients, keeps one session per client name.
 *
 * Name claims (`wsts.claim`): when a client presents a name that is already connected,
 * under `replace` (the default) the newer connection wins and the older one is closed with
 * 4409, so a restarting site reclaims its name at once instead of waiting for the stale
 * connection's heartbeat to expire; under `refuse` the newer one is answered 409 until the
 * name is free.
 *
 * Pools (src/tunnel/pool.ts): members of one client's pool (same name, same `X-West-Pool` id)
 * join that name's pool, up to MAX_POOL_MEMBERS, whatever the claim policy; a client of the
 * same name with another pool id (or none) is a rival, judged by the claim rules against the
 * whole pool: under `replace` every member of the old pool is closed with 4409.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { canonicalName, type ServerConfig } from '../config/types.js';
import { CLOSE } from '../errors.js';
import { boundPort, closeNow, listenOn } from '../listen.js';
import type { Logger } from '../log.js';
import { AddressAllowlist } from '../net/allow.js';
import { bearerToken, sameSecret } from '../auth.js';
import type { FlowLimits } from './flow.js';
import {
  certificateNames, certificateSubject, MAX_MESSAGE, NODE_HEADER, offeredSubprotocols, OUR_FEATURES, peerFeatures, peerWindow, pickSubprotocol, validNodeName, versionOf, WIRE_VERSION,
} from './handshake.js';
import { MESH_VERSION } from './frame.js';
import { MAX_POOL_MEMBERS, PeerPool, poolClaimOf, type PoolClaim } from './pool.js';
import { TunnelSession } from './session.js';
import { MqttAcceptor, type MqttHello } from './mqtt/acceptor.js';
import type { MqttLink } from './mqtt/link.js';
import { EmbeddedBroker } from './mqtt/embedded.js';

/**
 * The whole answer to a client that is not admitted, whatever the rule (address, name or
 * token): an outsider must not learn which names exist or have tokens by trying them. The
 * reason goes to this server's log (`tunnel.client_refused`) only.
 */
export const NOT_ADMITTED = 'Not admitted to this west tunnel server. Its operator can see why in its log.\n';

export interface TunnelServerOptions {
  config: ServerConfig;
  localName: string;
  recvWindow: number;
  heartbeatMs: number;
  maxStreams: number;
  idleTimeoutMs: number;
  /** Newest wire version to accept (`west.wire`; default this release's). */
  wireVersion?: number;
  /** How long to wait for an MQTT broker (`wsts.mqtt`) to answer. */
  connectTimeoutMs?: number;
  log: Logger;
  /** Window growth caps and the node's budget; absent: windows stay at recvWindow. */
  flow?: FlowLimits;
  /** `west.authHook`'s say on a client, asked once the built-in checks pass; absent = no hook. */
  authorize?: (q: TunnelQuestion) => TunnelDecision | Promise<TunnelDecision>;
}

/** What the auth hook is asked about a client: its name, address and certificate subject. */
export interface TunnelQuestion {
  name: string;
  address: string;
  certSubject?: string;
}

export interface TunnelDecision {
  allow: boolean;
  reason: string;
  /** The hook could not be asked (fail closed): 503 rather than 403. */
  unavailable?: true;
}

export interface TunnelServerEvents {
  session: [TunnelSession];
  'session-closed': [TunnelSession];
}

export class TunnelServer extends EventEmitter<TunnelServerEvents> {
  /** Connected clients by canonical name: one pool per name, of one connection unless the client pools. */
  readonly pools = new Map<string, PeerPool>();
  private readonly opts: TunnelServerOptions;
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private allowAddresses: AddressAllowlist;
  /** Compared against when a name has no token, so that costs the time a real comparison does. */
  private readonly decoyToken = randomBytes(32).toString('hex');
  /** `wsts.mqtt`: clients come through a broker instead of to a listening socket. */
  private readonly mqtt: MqttAcceptor | undefined;
  private readonly embedded: EmbeddedBroker | undefined;

  constructor(opts: TunnelServerOptions) {
    super();
    this.opts = opts;
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE,
      // The newest version both speak; onUpgrade has refused a client that offers none.
      handleProtocols: (protocols) => pickSubprotocol(protocols, this.opts.wireVersion) ?? false,
    });
    this.wss.on('headers', (headers) => {
      // Pools came with this release of wire version 3; held at west.v2, this node is the one before.
      const features = OUR_FEATURES.filter((f) => f !== 'pool' || (this.opts.wireVersion ?? WIRE_VERSION) >= MESH_VERSION);
      headers.push(`X-West-Node: ${opts.localName}`, `X-West-Window: ${opts.recvWindow}`, `X-West-Features: ${features.join(', ')}`);
    });
    this.allowAddresses = new AddressAllowlist(opts.config.allowAddresses);
    const tls = opts.config.tlsMaterial;
    const onPlainRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'close' });
      res.end(`This is the west tunnel server of ${opts.localName}; it speaks WebSocket (${offeredSubprotocols(opts.wireVersion).join(', ')}) only.\n`);
      req.resume();
    };
    // wss://: with a client CA, the TLS handshake itself refuses clients without a certificate it signed.
    this.http = opts.config.tls && tls
      ? https.createServer({ cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}) }, onPlainRequest)
      : http.createServer(onPlainRequest);
    this.http.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      // Under TLS 1.3 a client certificate from the wrong CA is refused after the handshake,
      // so the error is a bare reset; the socket still knows the real reason.
      // Typed as always set, but undefined when the certificate was not what failed.
      const refused = socket.authorizationError as Error | undefined;
      const why = refused ? `client certificate refused: ${String(refused)}` : err.message;
      opts.log.warn('tunnel.tls_refused', { address: socket.remoteAddress, reason: why });
    });
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.http.on('clientError', (_err, socket) => socket.destroy());
    if (opts.config.mqtt) {
      this.mqtt = new MqttAcceptor({
        localName: opts.localName, log: opts.log, connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
        config: () => this.opts.config,
        wireVersion: () => this.opts.wireVersion ?? WIRE_VERSION,
        recvWindow: () => this.opts.recvWindow,
        refusal: (name, token) => this.admission(name, undefined, token, undefined),
        // The broker hides the client's address: the hook is asked with an empty one.
        authorize: (name) => this.opts.authorize?.({ name, address: '' }),
        accept: (link, hello) => this.acceptMqtt(link, hello),
      });
      if (opts.config.mqtt.embed) this.embedded = new EmbeddedBroker(opts.config, opts.log);
    }
  }

  /** What carries this server's tunnels. */
  get transport(): 'websocket' | 'mqtt' {
    return this.mqtt ? 'mqtt' : 'websocket';
  }

  get port(): number {
    return this.embedded?.port ?? boundPort(this.http);
  }

  async listen(): Promise<void> {
    if (this.mqtt) {
      await this.embedded?.listen();
      await this.mqtt.start();
      return;
    }
    await listenOn(this.http, this.opts.config);
    this.opts.log.info('tunnel.server_listening', { url: this.opts.config.url, port: this.port });
  }

  /** Takes reloaded tuning: sessions accepted from now on use it; live ones keep their own. */
  setTuning(t: Pick<TunnelServerOptions, 'recvWindow' | 'heartbeatMs' | 'maxStreams' | 'idleTimeoutMs' | 'wireVersion' | 'flow'>): void {
    Object.assign(this.opts, t);
  }

  /**
   * Applies reloaded admission settings (claim policy, tokens, wsts.ca, certNames) of the same
   * address and certificates to the next connection; connected clients stay.
   */
  setConfig(config: ServerConfig): void {
    this.opts.config = config;
    this.allowAddresses = new AddressAllowlist(config.allowAddresses);
  }

  /** The pool of a connected client (streams spread over its members), by name as written or canonical. */
  get(name: string): PeerPool | undefined {
    return this.pools.get(canonicalName(name));
  }

  /** Every connected session, every member of every pool. */
  *sessions(): Iterable<TunnelSession> {
    for (const pool of this.pools.values()) yield* pool.members;
  }

  async close(): Promise<void> {
    for (const pool of this.pools.values()) pool.close(CLOSE.goingAway, 'server shutting down');
    this.wss.close();
    await this.mqtt?.close();
    await this.embedded?.close();
    await closeNow(this.http);
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node's HTTP server takes its own 'error' listener off the socket before it emits
    // 'upgrade': a client that resets now, while it is judged or refused, would otherwise be an
    // uncaught exception that ends the process. ws adds its own once it takes the socket.
    socket.on('error', (err) => this.opts.log.debug('tunnel.upgrade_socket_error', { address: req.socket.remoteAddress, error: err.message }));
    const name = req.headers[NODE_HEADER];
    const refuse = (status: number, reason: string, answer = `${reason}\n`, headers = ''): void => {
      this.opts.log.warn('tunnel.client_refused', { address: req.socket.remoteAddress, reason });
      // As ws does for the handshakes it aborts: once the answer is out, the socket is ours to close.
      socket.once('finish', () => socket.destroy());
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n${headers}Connection: close\r\n\r\n${answer}`);
    };
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (pickSubprotocol(protocols, this.opts.wireVersion) === undefined) {
      refuse(400, `west tunnel clients must offer one of the WebSocket subprotocols ${offeredSubprotocols(this.opts.wireVersion).join(', ')}`);
      return;
    }
    if (!validNodeName(name)) {
      refuse(400, `west tunnel clients must present their name in the X-West-Node header`);
      return;
    }
    const vouched = this.opts.config.certNames && req.socket instanceof TLSSocket ? certificateNames(req.socket.getPeerCertificate()) : [];
    const denied = this.admission(name, req.socket.remoteAddress, bearerToken(req.headers.authorization), vouched);
    if (denied) {
      refuse(401, denied, NOT_ADMITTED, 'WWW-Authenticate: Bearer realm="west tunnel"\r\n');
      return;
    }
    const claim = poolClaimOf(req.headers);
    if (claim instanceof Error) {
      refuse(400, claim.message);
      return;
    }
    const conflict = this.claimConflict(name, claim);
    if (conflict) {
      refuse(409, conflict);
      return;
    }
    const authorize = this.opts.authorize;
    if (!authorize) {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, name, claim));
      return;
    }
    const subject = req.socket instanceof TLSSocket ? certificateSubject(req.socket.getPeerCertificate()) : undefined;
    const decided = (d: TunnelDecision): void => {
      if (socket.destroyed) return;
      if (!d.allow) {
        refuse(d.unavailable ? 503 : 403, `name ${name}: ${d.reason} (west.authHook)`, NOT_ADMITTED);
        return;
      }
      // Judged again: while the hook was asked, another connection may have taken the name
      // (wsts.claim "refuse") or filled the pool.
      const late = this.claimConflict(name, claim);
      if (late) {
        refuse(409, late);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, name, claim));
    };
    const answer = authorize({ name, address: req.socket.remoteAddress ?? '', ...(subject ? { certSubject: subject } : {}) });
    if (answer instanceof Promise) void answer.then(decided);
    else decided(answer);
  }

  /**
   * Why a connection claiming `name` (as a member of `claim`'s pool, if any) may not have it
   * now: its pool is full, or the name is held by another client under `wsts.claim: "refuse"`.
   * Asked before the auth hook and again once it answers (upgrades wait on it together).
   */
  private claimConflict(name: string, claim: PoolClaim | undefined): string | undefined {
    const holder = this.get(name);
    if (holder && claim && holder.id === claim.id) {
      if (holder.size >= MAX_POOL_MEMBERS) return `the pool of ${name} already has ${holder.size} connections, the most one pool may have`;
    } else if (holder?.first && this.opts.config.claim === 'refuse') {
      return `name ${name} is already connected from ${holder.first.remoteAddress}:${holder.first.remotePort} (wsts.claim is "refuse")`;
    }
    return undefined;
  }

  /**
   * `wsts.ca`, `wsts.certNames` and `wsts.tokens`: who may connect, under which name. The
   * reason a client is not admitted, for the log only (the client hears NOT_ADMITTED). Every
   * check runs whichever fails, so the time taken tells an outsider no more than the answer.
   */
  /**
   * `address` is undefined over MQTT (clients come through the broker: an address allowlist
   * admits none of them); `vouched` lists the names a client certificate carries, which the
   * TLS handshake has already checked against wsts.clientCa.
   */
  private admission(name: string, address: string | undefined, given: string | undefined, vouched: readonly string[] | undefined): string | undefined {
    const { allowNames, tokens, certNames } = this.opts.config;
    const key = canonicalName(name);
    const addressAllowed = address === undefined ? this.opts.config.allowAddresses.length === 0 : this.allowAddresses.allows(address);
    const nameAllowed = allowNames.length === 0 || allowNames.includes(key);
    let tokenProblem: string | undefined;
    if (tokens) {
      const expected = tokens.get(key) ?? tokens.get('*');
      const matches = sameSecret(given ?? '', expected ?? this.decoyToken);
      if (expected === undefined) tokenProblem = `name ${name} has no token on this tunnel server (wsts.tokens)`;
      else if (given === undefined) tokenProblem = `missing token for ${name}`;
      else if (!matches) tokenProblem = `wrong token for ${name}`;
    }
    if (!addressAllowed) return `address ${address ?? '(through the MQTT broker)'} may not connect to this tunnel server (wsts.ca)`;
    if (!nameAllowed) return `name ${name} may not connect to this tunnel server (wsts.ca)`;
    if (certNames && !vouched?.includes(key)) {
      return `name ${name} is not one its client certificate carries (${vouched?.join(', ') || 'none'}; wsts.certNames)`;
    }
    return tokenProblem;
  }

  /** A client admitted through the broker (its HELLO answered): a session, claimed as an upgrade's is. */
  private acceptMqtt(link: MqttLink, hello: MqttHello): void {
    const holder = this.get(hello.name);
    if (holder?.first && this.opts.config.claim === 'refuse') {
      this.opts.log.warn('tunnel.client_refused', { transport: 'mqtt', client: hello.name, reason: `name ${hello.name} is already connected (wsts.claim is "refuse")` });
      link.close(CLOSE.nameReplaced, 'name already connected');
      return;
    }
    const session = new TunnelSession(link, {
      localName: this.opts.localName, peerName: hello.name, initiator: false,
      recvWindow: this.opts.recvWindow, sendWindow: hello.window, peerFeatures: hello.features, wireVersion: hello.wire,
      heartbeatMs: this.opts.heartbeatMs, maxStreams: this.opts.maxStreams, idleTimeoutMs: this.opts.idleTimeoutMs,
      ...this.opts.flow, log: this.opts.log,
    });
    this.admit(session, hello.name, `west.v${hello.wire}`, undefined);
  }

  private accept(ws: WebSocket, req: http.IncomingMessage, name: string, claim: PoolClaim | undefined): void {
    const session = new TunnelSession(ws, {
      localName: this.opts.localName,
      peerName: name,
      initiator: false,
      recvWindow: this.opts.recvWindow,
      sendWindow: peerWindow(req.headers),
      peerFeatures: peerFeatures(req.headers),
      wireVersion: versionOf(ws.protocol) ?? 2,
      heartbeatMs: this.opts.heartbeatMs,
      maxStreams: this.opts.maxStreams,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      ...this.opts.flow,
      socket: req.socket,
      log: this.opts.log,
    });
    this.admit(session, name, ws.protocol, claim);
  }

  /** Takes the client's name for `session` (claimName: the claim policy, pools), and follows its close. */
  private admit(session: TunnelSession, name: string, wire: string, claim: PoolClaim | undefined): void {
    const key = canonicalName(name);
    this.claimName(key, name, session, claim);
    session.on('close', (code, reason) => {
      const pool = this.pools.get(key);
      if (pool?.size === 0) this.pools.delete(key);
      this.opts.log.info('tunnel.client_disconnected', { peer: name, code, reason, ...(claim ? { member: claim.index, left: pool?.size ?? 0 } : {}) });
      this.emit('session-closed', session);
    });
    this.opts.log.info('tunnel.client_connected', {
      peer: name, address: session.remoteAddress, port: session.remotePort, wire, transport: session.transport,
      ...(claim ? { member: claim.index, of: claim.size } : {}),
    });
    this.emit('session', session);
  }

  /**
   * The name's pool takes the new session: as another member of the same pool, as the first of
   * a new one when the name is free, or, a rival's, in place of the whole old pool. A rival
   * takes the name only once it proves alive: an upgrade the client abandoned long ago (say,
   * queued while this process was paused) must not displace the live tunnel that replaced it.
   */
  private claimName(key: string, name: string, session: TunnelSession, claim: PoolClaim | undefined): void {
    const join = (): boolean => {
      const holder = this.pools.get(key);
      if (holder && claim && holder.id === claim.id) {
        holder.add(session);
        return true;
      }
      if (holder && holder.size > 0) return false;
      const pool = new PeerPool(this.opts.localName, name, claim?.id);
      pool.add(session);
      this.pools.set(key, pool);
      return true;
    };
    if (join()) return;
    const previous = this.pools.get(key);
    void session.proveAlive().then((alive) => {
      if (!alive || session.closed) return;
      if (join()) return;
      // Another rival took the name meanwhile: this one lost the race. Kept connected it would
      // be a tunnel outside any pool (unlisted, unbounded per token), so it is closed as the
      // pool it would have replaced is.
      if (this.pools.get(key) !== previous || !previous) {
        this.opts.log.warn('tunnel.client_refused', { address: session.remoteAddress, reason: `name ${name} was taken by another connection while this one proved alive` });
        session.close(CLOSE.nameReplaced, 'name claimed by another connection');
        return;
      }
      const old = previous.first;
      const pool = new PeerPool(this.opts.localName, name, claim?.id);
      pool.add(session);
      this.pools.set(key, pool);
      // Logged once per pool, however many members it had.
      this.opts.log.warn('tunnel.name_reclaimed', {
        peer: name,
        old: old ? `${old.remoteAddress}:${old.remotePort}` : '',
        new: `${session.remoteAddress}:${session.remotePort}`,
        ...(previous.size > 1 ? { members: previous.size } : {}),
      });
      previous.close(CLOSE.nameReplaced, 'name claimed by a newer connection');
    });
  }
}
