/**
 * A TunnelSession is one connection between two nodes carrying many streams: a WebSocket, or
 * a pair of MQTT topics through a broker (link.ts says what either must do).
 * The dialing side opens odd stream ids and the accepting side even ones, so either can open
 * streams without agreeing first (as HTTP/2 does). Both sides ping; a peer silent for more
 * than 1.5 heartbeat intervals is dropped (heartbeat.ts). Streams that move no bytes for
 * `idleTimeoutMs` are cut, and no more than `maxStreams` are open at once. What a session
 * sends leaves at the end of each turn of the event loop (session-out.ts); this file reads
 * the peer's frames and hands them to their streams.
 */
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { CLOSE, WestError } from '../errors.js';
import type { FlowState } from '../control/state.js';
import type { Logger } from '../log.js';
import { decodeMessage, encodeReset, encodeRoutes, encodeWindow, FrameError, FrameType, HEADER_SIZE, MAX_STREAM_ID, MESH_VERSION, openText, responseText, type Frame, type OpenHead, type ResponseHead } from './frame.js';
import { OUR_FEATURES, type Feature } from './features.js';
import type { Clock, FlowBudget } from './flow.js';
import { TunnelFlow } from './tunnel-flow.js';
import { StreamResetError, TunnelStream, type FrameSink, type StreamEnd } from './stream.js';
import { Heartbeat } from './heartbeat.js';
import { SessionOut, type SendCallback } from './session-out.js';
import type { BulkHead, Transport, TunnelLink } from './link.js';
import { WebSocketLink, type LinkSocket } from './ws-link.js';

export { TUNNEL_HIGH_WATER } from './session-out.js';

/**
 * The TCP (or TLS) socket under the WebSocket, as the upgrade handed it over (the server's
 * `req.socket`, the client's upgrade response `res.socket`): a net.Socket is one.
 */
export type TunnelSocket = LinkSocket;

export interface SessionOptions {
  localName: string;
  /** Name the peer presented (client) or reported (server), as written. */
  peerName: string;
  /** True on the side that dialed. */
  initiator: boolean;
  /** Window this side grants per stream. */
  recvWindow: number;
  /** Window the peer grants per stream. */
  sendWindow: number;
  /** Largest window this side grows a stream's to (auto-tuning); default: no growth. */
  maxRecvWindow?: number;
  /** Largest window this side grows the tunnel's own to (feature `connection-window`). */
  maxConnectionWindow?: number;
  /** Node-wide budget the stream windows are carved from (see flow.ts). */
  budget?: FlowBudget;
  /** Clock for window auto-tuning and RTT samples (tests pass their own). */
  clock?: Clock;
  /**
   * RTT samples taken as the session starts, one after another, before the heartbeat's one per
   * interval (default EARLY_PINGS; tests on their own clock take 1).
   */
  earlyPings?: number;
  /** What this side announced it can receive (default: everything this version knows). */
  localFeatures?: ReadonlySet<Feature>;
  heartbeatMs: number;
  /** Most streams open at once (both directions together); more are refused. */
  maxStreams?: number;
  /** A stream with no bytes either way for this long is reset with `idle_timeout`. */
  idleTimeoutMs?: number;
  /** The socket under `ws`: who the peer is, and corked while a turn's frames are written (WebSocket only). */
  socket?: TunnelSocket;
  /** What the peer announced it can receive beyond the base protocol (none when absent). */
  peerFeatures?: ReadonlySet<Feature>;
  /** The wire version negotiated on the upgrade (2 when absent). */
  wireVersion?: number;
  log: Logger;
}

export interface SessionEvents {
  /** The peer has sent something: the connection is live, not a stale handshake. */
  alive: [];
  stream: [TunnelStream];
  /** Wire version 3: a ROUTES frame's payload (src/mesh/ reads it). */
  routes: [payload: Buffer];
  close: [code: number, reason: string];
}

export class TunnelSession extends EventEmitter<SessionEvents> implements FrameSink {
  readonly localName: string;
  readonly peerName: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** What carries the tunnel: a WebSocket, or MQTT through a broker. */
  readonly transport: Transport;
  readonly connectedAt = new Date();
  /** The negotiated wire version: 3 carries the mesh (ROUTES frames, relayed streams). */
  readonly wire: number;
  /** Open streams by id: TunnelStreams, and legs of streams relayed through this node (relay-leg.ts). */
  readonly streams = new Map<number, StreamEnd>();
  /**
   * Asked first about each stream the peer opens: a StreamEnd that takes its frames (a relay
   * leg), 'refused' when a RESET has answered the OPEN, or undefined for a TunnelStream and
   * the 'stream' event.
   */
  takeOpen: ((id: number, head: OpenHead) => StreamEnd | 'refused' | undefined) | undefined;
  bytesIn = 0;
  streamsOpened = 0;
  closed = false;

  private readonly link: TunnelLink;
  private readonly opts: SessionOptions;
  private nextId: number;
  /** Frames on their way out, and the writers waiting for room (session-out.ts). */
  private readonly out: SessionOut;
  /** Pings, the round trip they time, and a peer gone silent (heartbeat.ts). */
  private readonly heartbeat: Heartbeat;
  private readonly idleSweep: NodeJS.Timeout | undefined;
  private readonly clock: Clock;
  /** Where the pieces of the bulk DATA frame being read go (undefined: dropped). */
  private bulkTo: StreamEnd | undefined;
  /** Windows, the RTT they grow by, and the tunnel's own window (tunnel-flow.ts). */
  readonly flow: TunnelFlow;

  /** `link`: a TunnelLink, or a WebSocket with `opts.socket` its socket. */
  constructor(link: TunnelLink | WebSocket, opts: SessionOptions) {
    super();
    if (isLink(link)) this.link = link;
    else if (opts.socket) this.link = new WebSocketLink(link, opts.socket, opts.initiator);
    else throw new Error('TunnelSession: a WebSocket needs its socket');
    this.opts = opts;
    this.localName = opts.localName;
    this.peerName = opts.peerName;
    this.remoteAddress = this.link.remoteAddress;
    this.remotePort = this.link.remotePort;
    this.transport = this.link.transport;
    this.nextId = opts.initiator ? 1 : 2;
    this.wire = opts.wireVersion ?? 2;
    this.clock = opts.clock ?? (() => performance.now());
    this.out = new SessionOut(this.link, () => this.closed, () => this.closedError());

    const l = this.link;
    l.on('message', (data) => this.onMessage(data));
    l.on('data-head', (stream, length, head) => this.onDataHead(stream, length, head));
    l.on('data-piece', (piece) => this.onDataPiece(piece));
    l.on('malformed', (reason) => { this.heard(); this.protocolError(reason); });
    l.on('pong', () => this.heartbeat.onPong());
    l.on('ping', () => this.heard());
    l.on('close', (code, reason) => this.onClose(code, reason));
    l.on('error', (err) => opts.log.warn('tunnel.error', { peer: this.peerName, error: err.message }));

    const idle = opts.idleTimeoutMs;
    if (idle) {
      this.idleSweep = setInterval(() => this.sweepIdle(idle), Math.min(5000, Math.max(100, idle / 4)));
      this.idleSweep.unref();
    }

    const local = opts.localFeatures ?? new Set(OUR_FEATURES);
    this.flow = new TunnelFlow({
      recvWindow: opts.recvWindow, sendWindow: opts.sendWindow, maxRecvWindow: opts.maxRecvWindow,
      maxConnectionWindow: opts.maxConnectionWindow, budget: opts.budget, clock: this.clock,
      connectionWindow: local.has('connection-window') && this.supports('connection-window'),
      grant: (increment) => this.send(encodeWindow(0, increment)),
    });
    this.heartbeat = new Heartbeat(this.link, {
      intervalMs: opts.heartbeatMs, earlyPings: opts.earlyPings, clock: this.clock,
      onRtt: (ms) => this.flow.rtt.sample(ms),
      onAlive: () => this.emit('alive'),
      onSilent: (silentMs) => {
        opts.log.warn('tunnel.heartbeat_timeout', { peer: this.peerName, silentMs });
        this.link.terminate();
        this.onClose(CLOSE.heartbeatTimeout, 'heartbeat timeout');
      },
      // A tunnel that sent nothing since the last tick need not hold a slab for its frames.
      onTick: () => this.out.releaseIdle(),
    });
  }

  /** What flow control looks like now, for the control port. */
  flowState(): FlowState {
    let max = 0;
    for (const stream of this.streams.values()) max = Math.max(max, stream.window.size);
    return this.flow.state(max);
  }

  private newStream(id: number, head?: OpenHead): TunnelStream {
    return new TunnelStream(this, id, { head, recvWindow: this.opts.recvWindow, sendWindow: this.opts.sendWindow, window: this.flow.streamWindow() });
  }

  sendCredit(): number {
    return this.flow.credit();
  }

  spendCredit(n: number): void {
    this.flow.spend(n);
  }

  whenCredit(resume: () => void): void {
    this.flow.whenCredit(resume, this.closed);
  }

  consumed(n: number): void {
    this.flow.consumed(n);
  }

  /** Whether the peer announced it can receive `feature` (see handshake.ts). */
  supports(feature: Feature): boolean {
    return this.opts.peerFeatures?.has(feature) ?? false;
  }

  /**
   * Opens a stream carrying one request (or, kind `tcp`, one TCP connection) to the peer; throws
   * WestError when the tunnel is full, or is asked for a kind the peer did not announce.
   */
  openStream(head: OpenHead): TunnelStream {
    return this.openWith(head, (_session, id) => this.newStream(id));
  }

  /** What the peer lets each stream send before its first grant (its X-West-Window). */
  get streamSendWindow(): number {
    return this.opts.sendWindow;
  }

  /** As openStream, the stream's frames going to what `make` returns for its id (a relay leg). */
  openWith<T extends StreamEnd>(head: OpenHead, make: (session: TunnelSession, id: number) => T): T {
    if (this.closed) throw new WestError('tunnel_lost', this.localName, `tunnel to ${this.peerName} is closed`);
    // An OPEN of a kind the peer does not know would close the whole tunnel (1002) there.
    if (head.kind === 'tcp' && !this.supports('tcp')) {
      throw new WestError('unsupported', this.localName, `${this.peerName} does not carry TCP streams (it did not announce the "tcp" feature: an older release)`);
    }
    if (this.streams.size >= (this.opts.maxStreams ?? Infinity)) {
      throw new WestError('too_many_streams', this.localName, `${this.streams.size} requests already in flight on the tunnel to ${this.peerName}`);
    }
    const id = this.nextId;
    this.nextId += 2;
    if (this.nextId > MAX_STREAM_ID) {
      // Ids are never reused within a session; start a fresh session before they run out.
      this.close(CLOSE.goingAway, 'stream ids exhausted');
    }
    const stream = make(this, id);
    this.streams.set(id, stream);
    this.streamsOpened++;
    this.out.text(FrameType.open, id, openText(head, this.wire));
    // A TCP stream is a long conversation, not an answer on its way: it grows as it goes.
    const wider = head.kind === 'tcp' ? 0 : this.flow.opened(stream.window);
    if (wider > 0) this.send(encodeWindow(id, wider));
    return stream;
  }

  /** Sends a route advertisement (wire version 3 only; dropped on an older tunnel). */
  sendRoutes(payload: Buffer): void {
    if (this.wire >= MESH_VERSION) this.send(encodeRoutes(payload));
  }

  /** Bytes of frames sent so far. */
  get bytesOut(): number {
    return this.out.bytesOut;
  }

  /** Queues a frame for the end of this turn (session-out.ts); `cb` is called at once. */
  send(frame: Buffer, cb?: SendCallback): void {
    this.out.send(frame, cb);
  }

  /** Sends an END frame; `cb` as send()'s. */
  sendEnd(stream: number, cb?: SendCallback): void {
    this.out.end(stream, cb);
  }

  /** Sends a RESPONSE frame (1xx or final), encoded straight into this turn's messages. */
  sendResponse(stream: number, head: ResponseHead): void {
    this.out.text(FrameType.response, stream, responseText(head));
  }

  sendData(stream: number, payload: Buffer, cb?: SendCallback): void {
    this.out.data(stream, payload, cb);
  }

  /** A DATA frame of `length` bytes in `pieces` (a relayed frame, relay-leg.ts), not copied when bulky. */
  sendPieces(stream: number, pieces: readonly Buffer[], length: number): void {
    this.out.pieces(stream, pieces, length);
  }

  congested(): boolean {
    return this.out.congested();
  }

  /** See SessionOut.expectData. */
  expectData(n: number): number {
    return this.out.expectData(n);
  }

  expectDone(n: number, turn: number): void {
    this.out.expectDone(n, turn);
  }

  whenWritable(resume: () => void): void {
    this.out.whenWritable(resume);
  }

  private closedError(): StreamResetError {
    return new StreamResetError({ code: 'tunnel_lost', message: `tunnel to ${this.peerName} is closed`, node: this.localName }, true);
  }

  release(id: number): void {
    this.streams.delete(id);
  }

  /** Closes the link; every open stream fails with `tunnel_lost`. */
  close(code: number = CLOSE.normal, reason = ''): void {
    if (this.closed) return;
    // Frames queued this turn (a RESET, the last DATA of a drained request) leave before the close.
    this.out.flushPending();
    this.link.close(code, reason);
    this.onClose(code, reason);
  }

  private sweepIdle(idleMs: number): void {
    const now = Date.now();
    for (const stream of [...this.streams.values()]) {
      if (now - stream.lastActivity > idleMs) {
        stream.reset('idle_timeout', `stream moved no bytes for ${idleMs / 1000} s`);
      }
    }
  }

  /** Resolves once the peer has sent anything at all (a pong, a ping or a frame). */
  proveAlive(): Promise<boolean> {
    if (this.heartbeat.aliveSeen) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    this.heartbeat.ping();
    return new Promise((resolve) => {
      this.once('alive', () => resolve(true));
      this.once('close', () => resolve(false));
    });
  }

  private heard(): void {
    this.heartbeat.heard();
  }

  private onMessage(data: Buffer): void {
    this.heard();
    this.bytesIn += data.length;
    let frames: Frame[];
    try {
      frames = decodeMessage(data, this.wire);
    } catch (err) {
      this.protocolError(err instanceof FrameError ? err.message : String(err));
      return;
    }
    for (const frame of frames) {
      if (this.closed) return;
      this.dispatch(frame);
    }
  }

  /**
   * A bulk DATA frame whose payload arrives in pieces (ws-reader.ts): judged as dispatch()
   * judges a whole one, against the tunnel's window for all its bytes at once.
   */
  private onDataHead(id: number, length: number, head: BulkHead): void {
    this.heard();
    this.bytesIn += HEADER_SIZE + length;
    this.bulkTo = undefined;
    if (this.closed) return;
    if (!this.flow.received(length)) {
      this.protocolError(`peer overran the tunnel's flow-control window (${length} bytes on stream ${id})`);
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) {
      this.consumed(length);
      return;
    }
    try {
      if (stream.onDataStart(length)) {
        this.bulkTo = stream;
        head.whole = stream.wholeFrames;
      }
    } catch (err) {
      this.streamError(stream, err);
    }
  }

  private onDataPiece(piece: Buffer): void {
    const stream = this.bulkTo;
    if (!stream || this.closed) return;
    try {
      stream.onDataPiece(piece);
    } catch (err) {
      this.bulkTo = undefined;
      this.streamError(stream, err);
    }
  }

  /** A bug or a hostile frame must cost one stream, never the tunnel or the process. */
  private streamError(stream: StreamEnd, err: unknown): void {
    this.opts.log.error('tunnel.stream_error', { peer: this.peerName, stream: stream.id, error: err instanceof Error ? err.stack : String(err) });
    stream.reset('internal', 'internal error handling this stream');
  }

  private dispatch(frame: Frame): void {
    if (frame.type === 'open') {
      this.onOpen(frame.stream, frame.head);
      return;
    }
    if (frame.type === 'routes') {
      this.emit('routes', frame.payload);
      return;
    }
    if (frame.type === 'window' && frame.stream === 0) {
      this.flow.onGrant(frame.increment);
      return;
    }
    if (frame.type === 'data' && !this.flow.received(frame.data.length)) {
      this.protocolError(`peer overran the tunnel's flow-control window (${frame.data.length} bytes on stream ${frame.stream})`);
      return;
    }
    const stream = this.streams.get(frame.stream);
    // Frames for a stream that is already gone cross our RESET on the wire: drop them (the
    // tunnel's window had their bytes back on arrival).
    if (!stream) {
      if (frame.type === 'data') this.consumed(frame.data.length);
      return;
    }
    try {
      switch (frame.type) {
        case 'response': stream.onResponse(frame.head); break;
        case 'data': stream.onData(frame.data); break;
        case 'end': stream.onEnd(); break;
        case 'reset': stream.onReset(frame.info); break;
        case 'window': stream.onWindow(frame.increment); break;
        case 'trailers': stream.onTrailers(frame.headers); break;
      }
    } catch (err) {
      this.streamError(stream, err);
    }
  }

  private onOpen(id: number, head: OpenHead): void {
    const peerParity = this.opts.initiator ? 0 : 1;
    if (id % 2 !== peerParity) {
      this.protocolError(`peer opened stream ${id} with this side's parity`);
      return;
    }
    const open = this.streams.get(id);
    if (open) {
      // The peer has lost track of the stream, so neither request can be trusted: the RESET
      // ends both, and the original's answer (its handler does not know) never follows it.
      open.reset('internal', `stream ${id} was opened twice`);
      return;
    }
    if (this.streams.size >= (this.opts.maxStreams ?? Infinity)) {
      this.send(encodeReset(id, {
        code: 'too_many_streams', message: `${this.streams.size} requests already in flight on the tunnel from ${this.peerName}`, node: this.localName,
      }));
      return;
    }
    let taken: StreamEnd | 'refused' | undefined;
    try {
      taken = this.takeOpen?.(id, head);
    } catch (err) {
      this.opts.log.error('tunnel.stream_error', { peer: this.peerName, stream: id, error: err instanceof Error ? err.stack : String(err) });
    }
    this.streamsOpened++;
    if (taken === 'refused') return;
    if (taken) {
      this.streams.set(id, taken);
      return;
    }
    const stream = this.newStream(id, head);
    this.streams.set(id, stream);
    try {
      this.emit('stream', stream);
    } catch (err) {
      this.opts.log.error('tunnel.stream_error', { peer: this.peerName, stream: id, error: err instanceof Error ? err.stack : String(err) });
      stream.reset('internal', 'internal error handling this stream');
    }
  }

  private protocolError(message: string): void {
    this.opts.log.warn('tunnel.protocol_error', { peer: this.peerName, error: message });
    this.close(CLOSE.protocolError, message.slice(0, 120));
  }

  private onClose(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.heartbeat.stop();
    clearInterval(this.idleSweep);
    const info = { code: 'tunnel_lost', message: `tunnel to ${this.peerName} closed (${reason || code})`, node: this.localName };
    for (const stream of [...this.streams.values()]) stream.onTunnelClosed(info);
    this.streams.clear();
    this.out.stop();
    this.flow.wakeAll();
    this.emit('close', code, reason);
  }
}

function isLink(link: TunnelLink | WebSocket): link is TunnelLink {
  return typeof (link as Partial<TunnelLink>).writeTurn === 'function';
}
