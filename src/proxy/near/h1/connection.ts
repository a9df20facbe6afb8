/**
 * One client connection at the lean front: reads heads (head.ts), serves one request at a
 * time (request.ts), pumps each request body into its stream with back-pressure, and keeps
 * what arrives behind a request (pipelining) until that request's answer is out. At the first
 * head it will not serve, it hands the connection, its unread bytes put back, to Node's
 * server for the rest of its life (front.ts).
 */
import type { Socket } from 'node:net';
import { WestError } from '../../../errors.js';
import type { TunnelStream } from '../../../tunnel/stream.js';
import { parseHead } from './head.js';
import { LeanRequest, type RequestConnection, type RequestHost } from './request.js';
import { KEEP_ALIVE_MS } from './response.js';

/** What a connection needs of its listener. */
export type FrontHost = RequestHost & {
  /** Answers a failure on the raw socket and closes it (the listener's refuseRaw). */
  refuseRaw(socket: Socket, failure: WestError, why: string): void;
};

/** What a connection needs of the front that holds it (front.ts). */
export interface ConnectionOwner {
  /**
   * Gives the connection's socket, `buffered` put back, to Node's server for the rest of its
   * life; `headSince` (0: none) is when the head it has not finished began.
   */
  handOff(conn: FrontConnection, buffered: Buffer | undefined, reason: string, headSince: number): void;
  /** The connection closed. */
  forget(conn: FrontConnection): void;
  /** A head was parsed and is served here. */
  served(): void;
}

/** A head that has come in more pieces than this goes to Node's parser (it is incremental; this one re-reads). */
const MAX_HEAD_PIECES = 16;
/** Node's slack past keepAliveTimeout before an idle connection is closed (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER). */
const KEEP_ALIVE_SLACK_MS = 1000;
const EMPTY = Buffer.alloc(0);

export class FrontConnection implements RequestConnection {
  readonly remoteAddress: string;
  /** When the head being read began (Date.now()), 0 when none is being read. */
  private headSince: number;
  /** When the connection went idle after an answer, 0 while it is not idle. */
  private idleSince = 0;
  /** Bytes read and not yet used: the rest of a head, pipelined requests. */
  private buffered: Buffer | undefined;
  private pieces = 0;
  private request: LeanRequest | undefined;
  /** Body bytes of the current request still to come. */
  private bodyLeft = 0;
  /** Where they go: the request's stream, undefined until it is routed (kept), null (dropped). */
  private bodyTo: TunnelStream | null | undefined = null;
  /** Reading waits for the body's stream to drain. */
  private waitingDrain = false;
  private processing = false;
  /** Nothing more is read or served: the connection is ending or was handed off. */
  private done = false;

  constructor(private readonly host: FrontHost, private readonly owner: ConnectionOwner, readonly socket: Socket) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.headSince = Date.now();
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
  }

  /** True while no request is being served and no byte of one waits. */
  get idle(): boolean {
    return !this.done && this.request === undefined && this.buffered === undefined && this.bodyLeft === 0;
  }

  /** The timers, checked by the front every so often: the head timeout (408) and the keep-alive idle close. */
  tick(now: number): void {
    if (this.done || this.request) return;
    if (this.headSince > 0 && now - this.headSince > this.host.tuning.headerTimeoutMs) {
      this.done = true;
      this.host.refuseRaw(this.socket, new WestError('head_timeout', this.host.nodeName, 'request head took too long'), 'ERR_HTTP_REQUEST_TIMEOUT');
    } else if (this.idleSince > 0 && this.buffered === undefined && now - this.idleSince > KEEP_ALIVE_MS + KEEP_ALIVE_SLACK_MS) {
      this.socket.destroy();
    }
  }

  bodyReady(stream: TunnelStream): void {
    if (this.bodyTo !== undefined) return;
    this.bodyTo = stream;
    if (!this.processing) this.process();
  }

  requestDone(keepAlive: boolean): void {
    this.request = undefined;
    if (this.bodyLeft > 0) this.dropBody();
    if (!keepAlive || this.host.draining) {
      this.done = true;
      this.buffered = undefined;
      this.socket.destroySoon();
      return;
    }
    this.idleSince = Date.now();
    if (!this.processing) this.process();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.done) return;
    if (this.buffered === undefined && this.bodyLeft > 0 && this.bodyTo !== undefined) {
      // The rest of a body whose answer is already out (west answered early: 404, 403, 502)
      // is read and dropped; it does not keep the connection from counting as idle.
      if (this.request) this.idleSince = 0;
      chunk = this.takeBody(chunk);
      if (chunk.length === 0) {
        if (!this.request && this.bodyLeft === 0 && this.idleSince === 0) this.idleSince = Date.now();
        return;
      }
    }
    this.idleSince = 0;
    this.buffered = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.process();
  };

  /** Node's server without httpAllowHalfOpen: a client's FIN aborts what is in flight and ends the connection. */
  private readonly onEnd = (): void => {
    if (this.done) return;
    this.done = true;
    if (this.request) {
      this.request.clientGone();
      this.socket.end();
    } else if (this.buffered !== undefined || this.bodyLeft > 0) {
      this.host.refuseRaw(this.socket, new WestError('bad_request', this.host.nodeName, 'malformed HTTP request (HPE_INVALID_EOF_STATE)'), 'HPE_INVALID_EOF_STATE');
    } else {
      this.socket.end();
    }
  };

  private readonly onError = (): void => {
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.done = true;
    this.request?.clientGone();
    this.owner.forget(this);
  };

  private readonly onDrain = (): void => {
    this.request?.drained();
  };

  private readonly onBodyDrain = (): void => {
    this.waitingDrain = false;
    this.flow();
  };

  /**
   * Serves what the buffered bytes hold, as far as the request in flight allows. Called from
   * socket events, a request's end and its routing: a bug in any of them must cost this
   * connection, not the node (Node's server answers 500 and goes on).
   */
  private process(): void {
    try {
      this.serveBuffered();
    } catch (err) {
      this.done = true;
      this.host.internalError(err);
      this.request?.clientGone();
      this.socket.destroy();
    }
  }

  private serveBuffered(): void {
    this.processing = true;
    try {
      for (;;) {
        if (this.done) return;
        if (this.bodyLeft > 0) {
          if (this.bodyTo === undefined || this.buffered === undefined) break;
          const rest = this.takeBody(this.buffered);
          this.buffered = rest.length > 0 ? rest : undefined;
          if (this.bodyLeft > 0) break;
        }
        const buf = this.buffered;
        if (this.request || buf === undefined) break;
        const parsed = parseHead(buf, 0, buf.length, headLimit(this.host.tuning.maxHeaderSize));
        if (parsed.kind === 'incomplete') {
          if (++this.pieces > MAX_HEAD_PIECES) {
            this.handOff('a head in many pieces');
            return;
          }
          if (this.headSince === 0) this.headSince = Date.now();
          break;
        }
        if (parsed.kind === 'handoff') {
          this.handOff(parsed.reason);
          return;
        }
        const { head } = parsed;
        this.pieces = 0;
        this.headSince = 0;
        this.buffered = head.length < buf.length ? buf.subarray(head.length) : undefined;
        this.bodyLeft = head.contentLength;
        this.bodyTo = head.contentLength > 0 ? undefined : null;
        this.owner.served();
        this.request = new LeanRequest(this, this.host, head);
        this.request.start();
      }
    } finally {
      this.processing = false;
    }
    this.flow();
  }

  /** Sends what of `chunk` belongs to the current body on (or drops it); returns the rest. */
  private takeBody(chunk: Buffer): Buffer {
    const n = Math.min(this.bodyLeft, chunk.length);
    this.bodyLeft -= n;
    const to = this.bodyTo;
    if (to && this.request) {
      this.request.ex.bytesIn += n;
      if (!to.destroyed) {
        const ok = to.write(n === chunk.length ? chunk : chunk.subarray(0, n));
        if (this.bodyLeft === 0) to.end();
        else if (!ok && !this.waitingDrain) {
          this.waitingDrain = true;
          to.once('drain', this.onBodyDrain);
          this.flow();
        }
      }
    }
    return n === chunk.length ? EMPTY : chunk.subarray(n);
  }

  /** The rest of a body nobody will read (its answer is out, or its stream gone) is read and dropped. */
  private dropBody(): void {
    if (this.bodyTo) this.bodyTo.off('drain', this.onBodyDrain);
    this.bodyTo = null;
    this.waitingDrain = false;
  }

  /** Reading pauses while a body's stream is full, or while more than a head's worth of bytes wait. */
  private flow(): void {
    if (this.done) return;
    const hold = this.waitingDrain || (this.buffered !== undefined && this.buffered.length > this.host.tuning.maxHeaderSize);
    if (hold) this.socket.pause();
    else if (this.socket.isPaused()) this.socket.resume();
  }

  private handOff(reason: string): void {
    this.done = true;
    const { socket } = this;
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
    socket.off('drain', this.onDrain);
    const buffered = this.buffered;
    this.buffered = undefined;
    this.owner.handOff(this, buffered, reason, this.headSince);
  }
}

/** The largest head served here: well inside west.maxHeaderSize, so that Node, not this parser, judges any head near the limit. */
export function headLimit(maxHeaderSize: number): number {
  return Math.floor((maxHeaderSize * 3) / 4);
}
