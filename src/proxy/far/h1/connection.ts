/**
 * One keep-alive connection to a plain-HTTP origin: a socket and Node's response parser,
 * serving one exchange at a time. What the parser finds goes to the exchange that holds the
 * connection (its `ResponseSink`); bytes that arrive while no exchange holds it, or a second
 * answer to one request, make the connection unusable (it is destroyed, never reused).
 */
import type { Socket } from 'node:net';
import { responseParser, type NodeHttpParser, type ParseError } from './parser.js';

/** What an exchange does with its connection's answer. */
export interface ResponseSink {
  /** A 1xx head before the answer (not 101). */
  onInform(status: number, statusMessage: string, headers: string[]): void;
  /** The final head; returns true when the answer has no body whatever it says (HEAD, 204, 304). */
  onHead(status: number, statusMessage: string, headers: string[]): boolean;
  onBody(chunk: Buffer): void;
  /** The answer is complete (trailers, if any); the connection is no longer the sink's. */
  onComplete(trailers: string[]): void;
  /** The connection failed before the answer was complete; it is being destroyed. */
  onError(err: OriginError): void;
  /** The socket can take more of the request body. */
  onDrain(): void;
}

/** Why an origin connection failed: a socket error, a parse error (HPE_*), or an unasked answer. */
export interface OriginError {
  code?: string;
  message: string;
  /** Set when the origin sent something HTTP forbids rather than broke off. */
  malformed?: true;
}

export class OriginConnection {
  readonly socket: Socket;
  /** host:port, the pool's key. */
  readonly key: string;
  private readonly parser: NodeHttpParser;
  private sink: ResponseSink | undefined;
  /** Header lines the parser flushed before the head was complete, or trailers. */
  private flushed: string[] = [];
  /** The message being parsed is a 1xx head. */
  private interim = false;
  /** Answers completed on this connection: above 0, the socket is a reused one. */
  served = 0;
  /** Some byte of an answer arrived for the current exchange. */
  gotBytes = false;
  /** The origin lets the connection be reused (HTTP/1.1 keep-alive, no Connection: close). */
  keepAlive = true;
  /** How long the connection may wait idle in the pool (the origin's Keep-Alive hint, or the default). */
  idleLimitMs = 0;
  /** When it went back to the pool (ms since epoch); 0 while in use. */
  idleSince = 0;
  /** Called once when the socket has closed (the pool forgets it). */
  onClosed: ((conn: OriginConnection) => void) | undefined;

  constructor(socket: Socket, key: string) {
    this.socket = socket;
    this.key = key;
    this.parser = responseParser({
      messageBegin: () => {
        // An answer no exchange asked for: the origin's framing is not what it said.
        if (!this.sink) this.destroy();
      },
      headers: (headers) => {
        for (const h of headers) this.flushed.push(h);
      },
      headersComplete: (_major, _minor, headers, _method, _url, status, statusMessage, upgrade, shouldKeepAlive) => {
        const raw = headers ?? this.takeFlushed();
        const sink = this.sink;
        if (!sink) return 1;
        // llhttp takes any three digits; HTTP's status codes start at 100 (RFC 9110 §15).
        if (status < 100) {
          this.fail({ code: 'HPE_INVALID_STATUS', message: `answered with status ${status}, which HTTP does not allow`, malformed: true });
          return 1;
        }
        if (upgrade || status === 101) {
          this.fail({ code: 'HPE_UNEXPECTED_UPGRADE', message: `answered ${status} (switching protocols) to a request that asked for no upgrade`, malformed: true });
          return 1;
        }
        if (status < 200) {
          this.interim = true;
          sink.onInform(status, statusMessage, raw);
          return 1;
        }
        if (!shouldKeepAlive) this.keepAlive = false;
        return sink.onHead(status, statusMessage, raw) ? 1 : 0;
      },
      body: (chunk) => this.sink?.onBody(chunk),
      messageComplete: () => {
        const trailers = this.takeFlushed();
        if (this.interim) {
          this.interim = false;
          return;
        }
        const sink = this.sink;
        if (!sink) return;
        this.sink = undefined;
        this.served++;
        sink.onComplete(trailers);
      },
    });
    socket.on('data', (data: Buffer) => {
      if (!this.sink) {
        // Bytes while idle, or after the answer: nothing they could belong to.
        this.destroy();
        return;
      }
      this.gotBytes = true;
      const parsed = this.parser.execute(data);
      if (typeof parsed !== 'number') this.fail(parseFailure(parsed));
    });
    socket.on('end', () => {
      // A close-delimited body ends here; anything else still expected was cut short (what
      // finish() says of it is no more than that).
      if (this.sink) this.parser.finish();
      this.fail({ message: 'other side closed' });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.fail({ code: err.code, message: err.message });
    });
    socket.on('close', () => {
      this.fail({ message: 'other side closed' });
      this.onClosed?.(this);
      // Not from within execute(): 'close' comes on a later tick than any parser callback.
      this.parser.close();
    });
    socket.on('drain', () => this.sink?.onDrain());
  }

  /** Hands the connection to an exchange. */
  attach(sink: ResponseSink): void {
    this.sink = sink;
    this.gotBytes = false;
    this.idleSince = 0;
  }

  /** The exchange gives up on its answer (cancelled): the connection cannot be reused. */
  detach(): void {
    this.sink = undefined;
    this.destroy();
  }

  get usable(): boolean {
    return this.keepAlive && !this.socket.destroyed && !this.socket.readableEnded && this.socket.writable;
  }

  destroy(): void {
    this.keepAlive = false;
    this.socket.destroy();
  }

  private takeFlushed(): string[] {
    const out = this.flushed;
    if (out.length > 0) this.flushed = [];
    return out;
  }

  /** Ends the current exchange with an error (if any) and the connection with it. */
  private fail(err: OriginError): void {
    const sink = this.sink;
    this.sink = undefined;
    this.destroy();
    sink?.onError(err);
  }
}

function parseFailure(err: ParseError): OriginError {
  return { code: err.code, message: err.reason ? `Parse Error: ${err.reason}` : err.message, malformed: true };
}
