/**
 * One keep-alive connection to a plain-HTTP origin: a socket and Node's response parser,
 * serving one exchange at a time. What the parser finds goes to the exchange that holds the
 * connection (its `ResponseSink`); bytes that arrive while no exchange holds it, or a second
 * answer to one request, make the connection unusable (it is destroyed, never reused).
 *
 * llhttp reads heads, chunked bodies and trailers. A body framed by Content-Length, or by the
 * origin's close, the connection counts out itself, and hands it to the exchange as pieces of
 * the socket's own read buffers. (Node's binding hands each body piece to JavaScript as a fresh
 * copy: on 1 MiB answers that copy and its garbage were a quarter of the far end's CPU.) So
 * that llhttp reads no body byte, it is given a head's bytes only up to the head's end
 * (head-end.ts), and told the answer has no body (as for HEAD): it is then ready for the next
 * answer, and reads what follows the body in the same read as the start of one, as it would
 * have: line ends are skipped, anything else ends the connection.
 */
import net, { type Socket } from 'node:net';
import { headEnd, seenAtEnd } from './head-end.js';
import { BODY_READ_BYTES, COPY_BELOW, givePausedBuffer, isShared, sharedBodyBuffer, sharedHeadBuffer, takePausedBuffer } from './reads.js';
import { NO_BODY, READ_BODY, responseParser, type NodeHttpParser, type ParseError } from './parser.js';
import { bodyLength } from './response-headers.js';

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
  /**
   * Body bytes still to come that the connection counts out itself (llhttp took the answer
   * for one without a body): a Content-Length's rest, Infinity until the origin closes, 0 when
   * llhttp reads.
   */
  private bodyLeft = 0;
  /** llhttp is between answers or in a head, not in a body it reads. */
  private inHead = true;
  /** How much of a head's CR LF CR LF the bytes llhttp was given last ended with. */
  private headSeen = 0;
  /** Every body through llhttp, copied (the way before; the fuzz test's reference). */
  private readonly bodiesThroughParser: boolean;
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
  /** The read being handled is in a buffer that takes the next read too: body pieces are copied. */
  private borrowed = false;
  /** This connection's body read buffer, free again (what was read there was copied). */
  private spare: Buffer | undefined;
  /** Its next read's buffer is one of reads.ts's PAUSED_OWN_BUFFERS. */
  private pausedBuffer = false;

  /**
   * Dials `host`:`port` and reads with `onread` (reads.ts): pausing stops the reads at once, and
   * the connection chooses where each goes.
   */
  static connect(opts: net.TcpNetConnectOpts, key: string): OriginConnection {
    let conn: OriginConnection | undefined;
    const socket = net.connect({
      ...opts,
      onread: {
        // Asked for the first read's buffer before `conn` exists.
        buffer: () => conn ? conn.nextReadBuffer() : sharedHeadBuffer(),
        callback: (n, buf) => {
          conn?.onRead(buf as Buffer, n);
          return true;
        },
      },
    });
    conn = new OriginConnection(socket, key);
    return conn;
  }

  constructor(socket: Socket, key: string, opts: { bodiesThroughParser?: boolean } = {}) {
    this.socket = socket;
    this.key = key;
    this.bodiesThroughParser = opts.bodiesThroughParser ?? false;
    this.parser = responseParser({
      messageBegin: () => {
        // An answer no exchange asked for: the origin's framing is not what it said. (Or
        // llhttp read on past a head whose body it was not to read: never, see head-end.ts;
        // were it to happen, the body must not be read as an answer.)
        if (!this.sink || this.bodyLeft > 0) this.destroy();
      },
      headers: (headers) => {
        for (const h of headers) this.flushed.push(h);
      },
      headersComplete: (_major, _minor, headers, _method, _url, status, statusMessage, upgrade, shouldKeepAlive) => {
        const raw = headers ?? this.takeFlushed();
        const sink = this.sink;
        if (!sink) return NO_BODY;
        // llhttp takes any three digits; HTTP's status codes start at 100 (RFC 9110 §15).
        if (status < 100) {
          this.fail({ code: 'HPE_INVALID_STATUS', message: `answered with status ${status}, which HTTP does not allow`, malformed: true });
          return NO_BODY;
        }
        if (upgrade || status === 101) {
          this.fail({ code: 'HPE_UNEXPECTED_UPGRADE', message: `answered ${status} (switching protocols) to a request that asked for no upgrade`, malformed: true });
          return NO_BODY;
        }
        if (status < 200) {
          this.interim = true;
          sink.onInform(status, statusMessage, raw);
          return NO_BODY;
        }
        if (!shouldKeepAlive) this.keepAlive = false;
        if (sink.onHead(status, statusMessage, raw)) return NO_BODY;
        const length = this.sink !== sink || this.bodiesThroughParser ? undefined : bodyLength(raw);
        if (length === undefined) {
          this.inHead = false;
          return READ_BODY;
        }
        this.bodyLeft = length;
        return NO_BODY;
      },
      body: (chunk) => this.sink?.onBody(chunk),
      messageComplete: () => {
        const trailers = this.takeFlushed();
        this.inHead = true;
        if (this.interim) {
          this.interim = false;
          return;
        }
        // The end of a head whose body the connection reads: the body is still to come.
        if (this.bodyLeft > 0) return;
        const sink = this.sink;
        if (sink) this.complete(sink, trailers);
      },
    });
    // A socket read the way Node reads by default (connect() reads with onRead instead).
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('end', () => {
      // A close-delimited body ends here; anything else still expected was cut short (what
      // finish() says of it is no more than that).
      if (this.bodyLeft === Infinity) {
        this.bodyLeft = 0;
        const sink = this.sink;
        if (sink) this.complete(sink, []);
      } else if (this.sink && this.bodyLeft === 0) {
        this.parser.finish();
      }
      this.fail({ message: 'other side closed' });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.fail({ code: err.code, message: err.message });
    });
    socket.on('close', () => {
      this.givePausedBuffer();
      this.fail({ message: 'other side closed' });
      this.onClosed?.(this);
      // Not from within execute(): 'close' comes on a later tick than any parser callback.
      this.parser.close();
    });
    socket.on('drain', () => this.sink?.onDrain());
  }

  /** One read (`onread`): `n` bytes at the start of `buf`, which connect() handed out for it. */
  private onRead(buf: Buffer, n: number): void {
    this.givePausedBuffer();
    const data = buf.subarray(0, n);
    // A small read is copied (pieces of it) and its buffer takes the next one.
    const own = !isShared(buf);
    this.borrowed = !own || n < COPY_BELOW;
    try {
      this.onData(data);
    } finally {
      this.borrowed = false;
    }
    if (own && n < COPY_BELOW) this.spare = buf;
  }

  /**
   * Where the next read goes: a body this connection counts out, while it is read, in a buffer
   * of its own (handed on as views); anything else in a shared buffer (reads.ts).
   */
  private nextReadBuffer(): Buffer {
    const sink = this.sink;
    if (this.bodyLeft > 0 && sink) {
      // Paused: the read after it resumes goes into a buffer of its own while few connections
      // wait, else into the shared one (a small read, copied: a thousand waiting hold nothing).
      if (this.socket.isPaused()) {
        if (!takePausedBuffer()) return sharedHeadBuffer();
        this.pausedBuffer = true;
      }
      const buf = this.spare ?? Buffer.allocUnsafeSlow(BODY_READ_BYTES);
      this.spare = undefined;
      return buf;
    }
    this.spare = undefined;
    return this.inHead || !sink ? sharedHeadBuffer() : sharedBodyBuffer();
  }

  private onData(data: Buffer): void {
    if (!this.sink) {
      // Bytes while idle, or after the answer: nothing they could belong to.
      this.destroy();
      return;
    }
    this.gotBytes = true;
    if (this.bodyLeft > 0) this.readBody(data, 0);
    else if (this.bodiesThroughParser) this.parseAll(data);
    else this.parse(data, 0);
  }

  private givePausedBuffer(): void {
    if (!this.pausedBuffer) return;
    this.pausedBuffer = false;
    givePausedBuffer();
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

  /**
   * Reads `data` from `from` on with llhttp, a head at a time: a body llhttp is not to read is
   * read from the end of its head.
   */
  private parse(data: Buffer, from: number): void {
    while (from < data.length && !this.socket.destroyed) {
      let upto = data.length;
      if (this.inHead) {
        const end = headEnd(data, from, this.headSeen);
        if (end < 0) {
          this.headSeen = seenAtEnd(data, from, this.headSeen);
        } else {
          upto = end;
          this.headSeen = 0;
        }
      }
      const parsed = this.parser.execute(from === 0 && upto === data.length ? data : data.subarray(from, upto));
      if (typeof parsed !== 'number') {
        this.fail(parseFailure(parsed));
        return;
      }
      from = upto;
      if (this.bodyLeft > 0) {
        if (from < data.length) this.readBody(data, from);
        return;
      }
    }
  }

  /** The way before: all of `data` through llhttp, bodies too (copied). */
  private parseAll(data: Buffer): void {
    const parsed = this.parser.execute(data);
    if (typeof parsed !== 'number') this.fail(parseFailure(parsed));
  }

  /** Body bytes from `data` at `from` on, as pieces of it; past the body's end, the next answer's. */
  private readBody(data: Buffer, from: number): void {
    const sink = this.sink;
    if (!sink) return;
    const available = data.length - from;
    if (available < this.bodyLeft) {
      this.bodyLeft -= available;
      sink.onBody(this.kept(from === 0 ? data : data.subarray(from)));
      return;
    }
    const end = from + this.bodyLeft;
    this.bodyLeft = 0;
    sink.onBody(this.kept(from === 0 && end === data.length ? data : data.subarray(from, end)));
    if (this.sink !== sink) return;
    this.complete(sink, []);
    this.parse(data, end);
  }

  /** A body piece as the exchange may keep it: copied when its read buffer takes the next read. */
  private kept(piece: Buffer): Buffer {
    return this.borrowed ? Buffer.from(piece) : piece;
  }

  /** The answer is whole: the connection is no longer the sink's. */
  private complete(sink: ResponseSink, trailers: string[]): void {
    this.sink = undefined;
    this.served++;
    sink.onComplete(trailers);
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
