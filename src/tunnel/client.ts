/**
 * A tunnel client: dials one tunnel server (a `wstc` entry or an `ea`), presents this node's
 * name, and redials with back-off whenever the connection is lost or cannot be made.
 *
 * With `wstc[url].connections` > 1 this client is the first member of a pool
 * (src/tunnel/pool.ts): once its own connection is up and the server announced `pool`, it
 * starts one more client per further connection, each dialing and redialing on its own, all
 * presenting the same pool id; their sessions are this client's (its `session` events, its
 * pool). A server without the feature gets this client's one connection only.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import type { ClientConfig } from '../config/types.js';
import { CLOSE } from '../errors.js';
import type { Logger } from '../log.js';
import { Backoff } from './backoff.js';
import {
  FEATURES_HEADER, MAX_MESSAGE, NODE_HEADER, OUR_FEATURES, offeredSubprotocols, peerFeatures, peerWindow, versionOf, type Feature,
} from './handshake.js';
import type { FlowLimits } from './flow.js';
import { MESH_VERSION } from './frame.js';
import { newPoolId, PeerPool, poolHeaderValue, POOL_HEADER, type PeerOpener, type PoolClaim } from './pool.js';
import { TunnelSession } from './session.js';
import { dialMqtt, type MqttDial } from './mqtt/dial.js';

export interface TunnelClientOptions {
  config: ClientConfig;
  recvWindow: number;
  heartbeatMs: number;
  connectTimeoutMs: number;
  maxStreams: number;
  idleTimeoutMs: number;
  /** Redial delays: shortest and longest (exponential with jitter in between). */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  log: Logger;
  /** A session that lasted this long resets the back-off. */
  stableMs?: number;
  /** Window growth caps and the node's budget; absent: windows stay at recvWindow. */
  flow?: FlowLimits;
  /** Newest wire version to offer (`west.wire`; default this release's). */
  wireVersion?: number;
  /** Set by a pool's first client on the others it starts: their place in its pool. */
  member?: { claim: PoolClaim; first: TunnelClient };
  /**
   * With `west.workers` above 1 (src/workers/): the node's pool id and this process's place.
   * Every worker's connections join one pool at the server: worker w's are members
   * w × connections to w × connections + connections - 1 of workers × connections.
   */
  share?: PoolShare;
}

/** The workers of one node, as one pool at each server: the id the primary drew, and this worker's place. */
export interface PoolShare {
  id: string;
  worker: number;
  workers: number;
}

/**
 * Why a worker above 0 stays off a tunnel: its server cannot pool, so a second connection under
 * the node's name would take the name from worker 0's (src/workers/ falls back to one worker).
 */
export const NO_POOL_REASON = 'the server cannot pool connections (no feature "pool"): only worker 0 dials it';

/** The claim of a pool's first client: its own, or its worker's share of the node's pool. */
function leadClaim(config: ClientConfig, share: PoolShare | undefined): PoolClaim | undefined {
  const size = config.connections ?? 1;
  if (share && share.workers > 1) {
    // One pool id per tunnel, the same in every worker.
    const id = createHash('sha256').update(`${share.id} ${config.url}`).digest('hex').slice(0, 32);
    return { id, index: share.worker * size, size: share.workers * size };
  }
  return size > 1 ? { id: newPoolId(), index: 0, size } : undefined;
}

export type ClientState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed';

export interface TunnelClientEvents {
  session: [TunnelSession];
  'session-closed': [TunnelSession];
  'dial-failed': [reason: string];
}

/** A promise and its resolver, settled once for every request waiting on it. */
interface Outcome {
  promise: Promise<TunnelSession | undefined>;
  settle(session: TunnelSession | undefined): void;
}

function outcome(): Outcome {
  let settle!: (session: TunnelSession | undefined) => void;
  const promise = new Promise<TunnelSession | undefined>((resolve) => { settle = resolve; });
  return { promise, settle };
}

/** `promise`, or undefined once `ms` have passed; the timer goes either way. */
async function within(promise: Promise<TunnelSession | undefined>, ms: number): Promise<TunnelSession | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms); });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class TunnelClient extends EventEmitter<TunnelClientEvents> {
  readonly config: ClientConfig;
  state: ClientState = 'idle';
  session: TunnelSession | undefined;
  lastError: string | undefined;
  connects = 0;
  private readonly opts: TunnelClientOptions;
  private backoff: Backoff;
  private ws: WebSocket | undefined;
  /** The dial in progress over MQTT (`wstc[...].mqtt`), when that is how this tunnel runs. */
  private mqttDial: MqttDial | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /**
   * What requests wait on, one promise each however many wait (a listener per request on this
   * long-lived emitter would pile up): the dial in progress (its session, or undefined when it
   * fails), and the next session whatever dials fail first.
   */
  private dialing: Outcome | undefined;
  private nextSession: Outcome | undefined;
  /** This client's place in its pool (undefined: one connection, no `X-West-Pool`). */
  private readonly claim: PoolClaim | undefined;
  /** The pool's other clients, started by its first (this one) once the server can pool. */
  private readonly others: TunnelClient[] = [];
  /** The live sessions of the pool this client leads (its own and the others'). */
  pool: PeerPool | undefined;

  constructor(opts: TunnelClientOptions) {
    super();
    this.opts = opts;
    this.config = opts.config;
    this.backoff = new Backoff(opts.reconnectMinMs, opts.reconnectMaxMs);
    this.claim = opts.member?.claim ?? leadClaim(opts.config, opts.share);
  }

  /** Where streams toward this tunnel's server go: spread over the pool's live members, or the one session. */
  get opener(): PeerOpener | undefined {
    if (this.pool && this.pool.size > 0) return this.pool;
    return this.session;
  }

  /** Connections up now: the pool's live members (0 or 1 without a pool). */
  get members(): number {
    return this.pool?.size ?? (this.session ? 1 : 0);
  }

  /** Takes reloaded tuning: the next dial and session use it; a live session keeps its own. */
  setTuning(t: Pick<TunnelClientOptions, 'recvWindow' | 'heartbeatMs' | 'connectTimeoutMs' | 'maxStreams' | 'idleTimeoutMs' | 'reconnectMinMs' | 'reconnectMaxMs' | 'wireVersion' | 'flow'>): void {
    Object.assign(this.opts, t);
    this.backoff = new Backoff(t.reconnectMinMs, t.reconnectMaxMs);
    for (const other of this.others) other.setTuning(t);
  }

  /** Starts dialing (idempotent). */
  start(): void {
    if (this.state === 'idle') this.dial();
  }

  /**
   * The connected session, dialing first if this client has not started (`ee: "no"`).
   * With `waitMs` 0, only a dial in progress is waited for (up to `dialMs`), and a client that
   * is between redials answers at once; with `waitMs` > 0 it waits that long for any
   * (re)connection. Undefined when none comes.
   */
  async acquire(dialMs: number, waitMs = 0): Promise<TunnelSession | undefined> {
    if (this.session) return this.session;
    const member = this.pool?.first;
    if (member) return member;
    if (this.state === 'closed') return undefined;
    this.start();
    if (waitMs > 0) {
      this.nextSession ??= outcome();
      return within(this.nextSession.promise, waitMs);
    }
    // No dial in progress: the client is between redials, and says so at once.
    if (!this.dialing) return undefined;
    return within(this.dialing.promise, dialMs);
  }

  /** Settles what requests wait on: a session for all of them, or undefined. */
  private settleWaiters(session: TunnelSession | undefined): void {
    this.dialing?.settle(session);
    this.dialing = undefined;
    if (session || this.state === 'closed') {
      this.nextSession?.settle(session);
      this.nextSession = undefined;
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.retryTimer);
    this.settleWaiters(undefined);
    const others = Promise.all(this.others.map((o) => o.close()));
    const ws = this.ws;
    this.mqttDial?.abort();
    if (this.session?.transport === 'mqtt') {
      this.session.close(CLOSE.goingAway, 'client shutting down');
    } else if (this.session) {
      const closed = new Promise<void>((resolve) => ws?.once('close', () => resolve()));
      this.session.close(CLOSE.goingAway, 'client shutting down');
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
    } else {
      ws?.terminate();
    }
    await others;
  }

  /** A session of this pool (this client's or another member's) joins the pool; the first after none starts a new one. */
  private joinPool(session: TunnelSession): void {
    if (!this.claim) return;
    if (!this.pool || this.pool.size === 0) this.pool = new PeerPool(this.config.name, session.peerName, this.claim.id);
    this.pool.add(session);
  }

  /** The pool's first client, its own connection up: the server can pool, so the others dial (or already do). */
  private startOthers(): void {
    const claim = this.claim;
    if (!claim || this.opts.member) return;
    const own = this.config.connections ?? 1;
    for (let i = this.others.length + 1; i < own; i++) {
      const other = new TunnelClient({ ...this.opts, member: { claim: { id: claim.id, index: claim.index + i, size: claim.size }, first: this } });
      other.on('session', (s) => this.emit('session', s));
      other.on('session-closed', (s) => this.emit('session-closed', s));
      other.on('dial-failed', (reason) => this.emit('dial-failed', reason));
      this.others.push(other);
    }
    for (const other of this.others) other.start();
  }

  private dial(): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    this.dialing = outcome();
    if (this.config.mqtt) {
      this.dialOverMqtt();
      return;
    }
    const { url, name } = this.config;
    let peerName = url;
    let recvFromPeer = 0;
    let socket: Socket | undefined;
    let features: ReadonlySet<Feature> = new Set();
    const { token, tlsMaterial } = this.config;
    const ws = new WebSocket(url, offeredSubprotocols(this.opts.wireVersion), {
      headers: {
        [NODE_HEADER]: name,
        'x-west-window': String(this.opts.recvWindow),
        [FEATURES_HEADER]: OUR_FEATURES.join(', '),
        ...(this.claim ? { [POOL_HEADER]: poolHeaderValue(this.claim) } : {}),
        ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      },
      handshakeTimeout: this.opts.connectTimeoutMs,
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE,
      // wss://: the server is verified against `ca` (or the system's CAs); never switched off.
      ...(tlsMaterial?.ca ? { ca: tlsMaterial.ca } : {}),
      ...(tlsMaterial?.cert ? { cert: tlsMaterial.cert, key: tlsMaterial.key } : {}),
    });
    this.ws = ws;
    ws.on('upgrade', (res: IncomingMessage) => {
      const reported = res.headers[NODE_HEADER];
      if (typeof reported === 'string' && reported) peerName = reported;
      recvFromPeer = peerWindow(res.headers);
      features = peerFeatures(res.headers);
      socket = res.socket;
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 500) body += c; });
      res.on('end', () => this.dialFailed(ws, `server answered ${res.statusCode}: ${body.trim() || res.statusMessage}`));
      res.on('error', () => this.dialFailed(ws, `server answered ${res.statusCode}`));
    });
    ws.on('error', (err) => {
      if (!this.session || this.ws !== ws) this.dialFailed(ws, err.message);
    });
    ws.on('open', () => {
      if (this.state === 'closed') { ws.terminate(); return; }
      // ws emits 'upgrade' before 'open', so this does not happen; were it to, redial.
      if (!socket) { this.dialFailed(ws, 'the upgrade handed over no socket'); return; }
      // ws has checked that the server picked one of the subprotocols offered.
      const wire = versionOf(ws.protocol);
      if (wire === undefined) { this.dialFailed(ws, `server picked no west wire version (${JSON.stringify(ws.protocol)})`); return; }
      const pools = features.has('pool') && wire >= MESH_VERSION;
      if (this.opts.member && !pools) {
        // The server changed under a live pool and cannot pool now: this member steps back (its
        // first dials it again once the server can); a second connection would take the name.
        this.ws = undefined;
        ws.terminate();
        this.state = 'idle';
        this.settleWaiters(undefined);
        return;
      }
      if (!pools && this.claim && this.claim.index > 0) {
        // A worker above 0 (src/workers/) against a server that cannot pool: it stays off, as a
        // member does, and says why; it tries again after the back-off (the server may be upgraded).
        this.opts.log.warn('tunnel.pool_unsupported', { server: url, connections: this.claim.size, wire: ws.protocol, worker: this.opts.share?.worker });
        this.dialFailed(ws, NO_POOL_REASON);
        return;
      }
      const session = new TunnelSession(ws, {
        localName: name,
        peerName,
        initiator: true,
        recvWindow: this.opts.recvWindow,
        sendWindow: recvFromPeer,
        peerFeatures: features,
        wireVersion: wire,
        heartbeatMs: this.opts.heartbeatMs,
        maxStreams: this.opts.maxStreams,
        idleTimeoutMs: this.opts.idleTimeoutMs,
        ...this.opts.flow,
        socket,
        log: this.opts.log,
      });
      this.connected(session, ws.protocol, pools);
    });
  }

  private connected(session: TunnelSession, wire: string, pools: boolean): void {
    this.session = session;
    this.state = 'connected';
    this.connects++;
    this.lastError = undefined;
    const claim = this.claim;
    this.opts.log.info('tunnel.connected', {
      server: this.config.url, as: this.config.name, peer: session.peerName, wire, transport: session.transport,
      ...(claim ? { member: claim.index, of: claim.size } : {}),
    });
    session.on('close', (code, reason) => this.onSessionClose(session, code, reason));
    (this.opts.member?.first ?? this).joinPool(session);
    this.settleWaiters(session);
    this.emit('session', session);
    if (claim && !this.opts.member) {
      if (pools) this.startOthers();
      else this.opts.log.warn('tunnel.pool_unsupported', { server: this.config.url, connections: claim.size, wire });
    }
  }

  /** A dial through an MQTT broker (mqtt/dial.ts): the same session, on a link of two topics. */
  private dialOverMqtt(): void {
    const dial = dialMqtt({ config: this.config, recvWindow: this.opts.recvWindow, connectTimeoutMs: this.opts.connectTimeoutMs, wireVersion: this.opts.wireVersion });
    this.mqttDial = dial;
    dial.result.then((d) => {
      if (this.mqttDial !== dial) return;
      this.mqttDial = undefined;
      if (this.state === 'closed') { d.link.terminate(); return; }
      const session = new TunnelSession(d.link, {
        localName: this.config.name, peerName: d.peerName, initiator: true,
        recvWindow: this.opts.recvWindow, sendWindow: d.window, peerFeatures: d.features, wireVersion: d.wire,
        heartbeatMs: this.opts.heartbeatMs, maxStreams: this.opts.maxStreams, idleTimeoutMs: this.opts.idleTimeoutMs,
        ...this.opts.flow, log: this.opts.log,
      });
      // Pools need the upgrade's X-West-Pool: a tunnel over MQTT is one connection.
      this.connected(session, `west.v${d.wire}`, false);
    }, (err: unknown) => {
      if (this.mqttDial !== dial || this.state === 'closed') return;
      this.mqttDial = undefined;
      const reason = err instanceof Error ? err.message : String(err);
      this.lastError = reason;
      this.settleWaiters(undefined);
      this.emit('dial-failed', reason);
      this.scheduleRedial(reason);
    });
  }

  private dialFailed(ws: WebSocket, reason: string): void {
    if (this.ws !== ws || this.state === 'closed' || this.state === 'waiting') return;
    ws.terminate();
    this.lastError = reason;
    this.settleWaiters(undefined);
    this.emit('dial-failed', reason);
    this.scheduleRedial(reason);
  }

  private onSessionClose(session: TunnelSession, code: number, reason: string): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.emit('session-closed', session);
    if (this.state === 'closed') return;
    const lived = Date.now() - session.connectedAt.getTime();
    if (lived >= (this.opts.stableMs ?? 10_000)) this.backoff.reset();
    this.lastError = `closed ${code}${reason ? ` (${reason})` : ''}`;
    const level = code === CLOSE.nameReplaced ? 'error' : 'warn';
    this.opts.log[level]('tunnel.disconnected', { server: this.config.url, code, reason, ...(this.claim ? { member: this.claim.index } : {}) });
    this.scheduleRedial(this.lastError);
  }

  private scheduleRedial(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'waiting';
    const first = this.backoff.attempts === 0;
    const delay = this.backoff.next();
    // A refusal (bad token or name, name taken, not a west server) or a certificate that does
    // not verify needs the operator: say it loudly.
    // Otherwise the first failure is a warning and the retries that follow are routine.
    const needsOperator = /^server answered 4|^server refused|Not authorized|Bad User Name|refused the subscription|certificate|CERT_|unable to verify/i.test(reason);
    const level = needsOperator ? 'error' : first ? 'warn' : 'info';
    this.opts.log[level]('tunnel.redial', { server: this.config.url, attempt: this.backoff.attempts, inMs: delay, reason });
    // Not unref'd: a node whose only job is this tunnel must stay alive while it waits.
    this.retryTimer = setTimeout(() => this.dial(), delay);
  }
}
