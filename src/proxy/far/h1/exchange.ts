/**
 * One ordinary request to a plain-HTTP origin over a pooled connection: the head written in
 * one piece with the body's first bytes (all of a small body that has already arrived), the
 * rest of the body streamed from the tunnel with back-pressure (the stream pauses while the
 * socket is full), and the answer streamed back (the socket pauses while the tunnel's window
 * is used up). Failures go out through the attempt with the codes and words the undici client
 * gave them.
 */
import type { Socket } from 'node:net';
import { classifyOriginError, type Attempt } from '../attempt.js';
import type { OriginConnection, OriginError, ResponseSink } from './connection.js';
import { DEFAULT_IDLE_MS, type ConnectFailure } from './pool.js';
import { chunkSize, LAST_CHUNK, requestHead, type BodyFraming } from './request.js';
import { answerHeaders } from './response-headers.js';

/** Methods a request without a body may be sent again for (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Performs `a` against its plain-HTTP origin. Never throws; failures reset the stream. */
export function performH1(a: Attempt): void {
  const built = requestHead(a.method, a.target, a.headers, a.hasBody, a.framing);
  if (typeof built === 'string') {
    a.fail('bad_request', `cannot send this request to the origin: ${built}`);
    return;
  }
  new Exchange(a, built.head, built.framing).start(false);
}

class Exchange implements ResponseSink {
  private readonly a: Attempt;
  private readonly head: string;
  private readonly framing: BodyFraming;
  private conn: OriginConnection | undefined;
  /** The final head went to the stream. */
  private answered = false;
  private responseDone = false;
  /** Every byte of the request is written. */
  private requestDone = false;
  /** The head is written (with a body, it waits for the body's first bytes). */
  private headWritten = false;
  /** Body bytes still owed under Content-Length. */
  private remaining = 0;
  private retried = false;
  /** This exchange's listeners on the stream's body while a connection takes it (removed for a retry). */
  private bodyListeners: { data: (data: Buffer) => void; end: () => void } | undefined;
  private idleLimitMs = DEFAULT_IDLE_MS;
  /** The answer has no body whatever its head says. */
  private readonly isHead: boolean;

  constructor(a: Attempt, head: string, framing: BodyFraming) {
    this.a = a;
    this.head = head;
    this.framing = framing;
    this.isHead = a.method === 'HEAD';
    const stream = a.stream;
    // No body: the request side has only its END to give, and must be read to finish the stream.
    if (framing.kind === 'none') stream.resume();
    else this.remaining = framing.kind === 'length' ? framing.length : 0;
    // The requester gave up (client hung up, the tunnel fell, a timeout): so does the origin
    // request, and its connection is not reused.
    stream.once('close', () => {
      if (this.responseDone) return;
      const conn = this.conn;
      this.conn = undefined;
      conn?.detach();
    });
  }

  start(fresh: boolean): void {
    const { url } = this.a;
    const host = url.hostname.charCodeAt(0) === 91 /* [ */ ? url.hostname.slice(1, -1) : url.hostname;
    this.a.ctx.origins.h1.acquire(host, url.port === '' ? 80 : Number(url.port), fresh, (conn, failure) => {
      if (!conn) {
        this.connectFailed(failure);
        return;
      }
      if (this.a.stream.destroyed) {
        // Cancelled while dialling: an unused connection is as good as any for the next request.
        this.a.ctx.origins.h1.release(conn, DEFAULT_IDLE_MS);
        return;
      }
      this.conn = conn;
      conn.attach(this);
      this.send(conn);
    });
  }

  private send(conn: OriginConnection): void {
    const socket = conn.socket;
    if (this.framing.kind === 'none') {
      socket.write(this.head, 'latin1');
      this.requestDone = true;
      return;
    }
    // The head goes with the body's first bytes (as undici sent it): a request whose body
    // never starts never reaches the origin. Those bytes often come in the same tunnel
    // message as the OPEN: what is here once that message is handled goes in one write.
    queueMicrotask(() => {
      if (this.conn !== conn) return;
      const stream = this.a.stream;
      if (stream.readableLength > 0) {
        socket.cork();
        let chunk: Buffer | null;
        while (this.conn === conn && (chunk = stream.read()) !== null) this.takeBody(chunk);
        socket.uncork();
      }
      if (this.conn !== conn) return;
      const listeners = {
        data: (data: Buffer): void => {
          if (this.conn === conn && !this.takeBody(data)) stream.pause();
        },
        end: (): void => {
          if (this.conn === conn) this.endBody(conn);
        },
      };
      this.bodyListeners = listeners;
      stream.on('data', listeners.data);
      stream.once('end', listeners.end);
      // A retry paused the stream (unhookBody): its body flows to this connection now.
      stream.resume();
    });
  }

  /** Stops taking the body (nothing of it was written): it waits in the stream for the next connection. */
  private unhookBody(): void {
    const stream = this.a.stream;
    stream.pause();
    if (!this.bodyListeners) return;
    stream.off('data', this.bodyListeners.data);
    stream.off('end', this.bodyListeners.end);
    this.bodyListeners = undefined;
  }

  /** Takes one piece of the body from the stream; false when the socket is full. */
  private takeBody(data: Buffer): boolean {
    if (data.length === 0) return true;
    if (this.requestDone) {
      // More than Content-Length said.
      this.failRequest('request body length does not match content-length header');
      return true;
    }
    return this.writeBody(data);
  }

  /** Writes one piece of the body (the head first, with the first piece); false when the socket is full. */
  private writeBody(data: Buffer): boolean {
    const socket = this.conn?.socket;
    if (!socket) return true;
    if (this.framing.kind === 'length' && data.length > this.remaining) {
      this.failRequest('request body length does not match content-length header');
      return true;
    }
    // The head, or one chunk and its framing: one write.
    socket.cork();
    this.writeHead(socket);
    let more: boolean;
    if (this.framing.kind === 'length') {
      this.remaining -= data.length;
      if (this.remaining === 0) this.requestDone = true;
      more = socket.write(data);
    } else {
      socket.write(chunkSize(data.length), 'latin1');
      socket.write(data);
      more = socket.write('\r\n', 'latin1');
    }
    socket.uncork();
    return more;
  }

  private writeHead(socket: Socket): void {
    if (this.headWritten) return;
    this.headWritten = true;
    socket.write(this.head, 'latin1');
  }

  private endBody(conn: OriginConnection): void {
    if (this.requestDone) return;
    if (this.framing.kind === 'length') {
      this.failRequest('request body length does not match content-length header');
      return;
    }
    conn.socket.cork();
    this.writeHead(conn.socket);
    conn.socket.write(LAST_CHUNK, 'latin1');
    conn.socket.uncork();
    this.requestDone = true;
  }

  onDrain(): void {
    // Also once every body byte is written: the stream was paused by the last write that
    // filled the socket, and its END must still be read for the stream to close.
    this.a.stream.resume();
  }

  // ---- the answer, from the connection's parser ----

  onInform(status: number, statusMessage: string, headers: string[]): void {
    // A 100 Continue nobody asked for (a request with Expect goes through expect.ts) is
    // ignored, as HTTP clients do.
    if (status === 100) return;
    // 1xx heads (103 Early Hints) go ahead of the answer when the near end takes them.
    this.a.stream.inform({ status, statusMessage, headers: answerHeaders(headers).headers });
  }

  onHead(status: number, statusMessage: string, headers: string[]): boolean {
    const answer = answerHeaders(headers);
    if (answer.keepAliveMs !== undefined) this.idleLimitMs = answer.keepAliveMs;
    this.answered = true;
    this.a.answered(status);
    this.a.stream.respond({ status, statusMessage, headers: answer.headers });
    return this.isHead || status === 204 || status === 304;
  }

  onBody(chunk: Buffer): void {
    const stream = this.a.stream;
    // A chunk over the stream's high-water mark that left at once says false too: read on.
    if (stream.destroyed || stream.write(chunk) || stream.writableLength === 0) return;
    // The stream holds the chunk (out of window, or the tunnel is full): the origin socket is
    // not read (it stops at once: reads.ts) until the stream drains.
    const socket = this.conn?.socket;
    if (!socket || socket.isPaused()) return;
    socket.pause();
    stream.once('drain', () => {
      if (this.conn?.socket === socket) socket.resume();
    });
  }

  onComplete(trailers: string[]): void {
    this.responseDone = true;
    const conn = this.conn;
    this.conn = undefined;
    const stream = this.a.stream;
    if (conn) {
      // Reused only when the whole request went out: an origin that answered early (a 413 to
      // an upload) would read what is still coming as the next request.
      if (this.requestDone) this.a.ctx.origins.h1.release(conn, this.idleLimitMs);
      else conn.destroy();
    }
    if (stream.destroyed) return;
    // What the origin will not read is read and dropped, and an END held back by a pause is
    // read: the stream finishes both ways.
    stream.resume();
    // A chunked answer's trailers travel just before END (feature `trailers`).
    stream.setTrailers(trailers);
    stream.end();
  }

  onError(err: OriginError): void {
    const conn = this.conn;
    this.conn = undefined;
    const { stream, url } = this.a;
    if (stream.destroyed || !conn) return;
    // Sent again, once, on a new connection when the origin cannot have done anything: a
    // request with a body whose head had not gone out yet (it waits for the body's first
    // bytes, and a kept-alive connection may time out meanwhile), or a kept-alive connection
    // the origin closed as we wrote on it (no byte back, no body, a method that may repeat).
    const unsent = this.framing.kind !== 'none' && !this.headWritten;
    const repeatable = conn.served > 0 && !conn.gotBytes && this.framing.kind === 'none' && IDEMPOTENT.has(this.a.method);
    if (!this.retried && !err.malformed && (unsent || repeatable)) {
      this.retried = true;
      this.requestDone = false;
      if (unsent) this.unhookBody();
      this.start(true);
      return;
    }
    const code = err.malformed ? 'origin_error' : classifyOriginError(err as NodeJS.ErrnoException);
    const why = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
    this.a.fail(code, this.answered ? `origin ${url.origin} broke off mid-response (${why})` : `origin ${url.origin} failed (${why})`);
  }

  private connectFailed(failure: ConnectFailure | undefined): void {
    const { stream, url } = this.a;
    if (stream.destroyed) return;
    if (!failure || failure.timeout) {
      this.a.fail('connect_timeout', `connection to origin ${url.host} timed out after ${this.a.ctx.origins.connectTimeoutS} s`);
      return;
    }
    const err = failure.error;
    const why = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
    this.a.fail(classifyOriginError(err), `origin ${url.origin} failed (${why})`);
  }

  /** The body does not fit its framing: nothing more goes to the origin. */
  private failRequest(why: string): void {
    const conn = this.conn;
    this.conn = undefined;
    conn?.detach();
    this.a.fail('bad_request', `cannot send this request to the origin: ${why}`);
  }
}
