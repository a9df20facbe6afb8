/**
 * The lean front's response writer: the bytes Node's ServerResponse writes for the same
 * calls (status line, the far end's headers, then the ones Node adds: Date, Connection and
 * Keep-Alive, Transfer-Encoding: chunked when no length is known), without its objects. The
 * head waits for the first body bytes (or the end) and goes out with them in one write, as
 * Node's does.
 */
import type { Socket } from 'node:net';

/** Node's `Keep-Alive: timeout=5` (the listener's keepAliveTimeout, 5 s). */
export const KEEP_ALIVE_MS = 5000;
/** Below this a head and a body chunk are copied into one buffer; above, written corked. */
const COPY_LIMIT = 16 * 1024;

const CRLF = '\r\n';
/** Node's checks on a `Connection` and a `Transfer-Encoding` value it is given (_http_outgoing.js). */
const CONNECTION_CLOSE = /(?:^|\W)close(?:$|\W)/i;
const TE_CHUNKED = /(?:^|\W)chunked(?:$|\W)/i;

let dateSecond = -1;
let dateText = '';

/** The Date header's value, made once a second (as Node caches it). */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

export class ResponseWriter {
  /** The final head has been given (written or waiting for the body). */
  started = false;
  status = 0;
  /** Whether the connection may carry another request after this response. */
  keepAlive: boolean;
  /** The last bytes went out (the end was flushed). */
  finished = false;
  private pendingHead: string | undefined;
  /** Bytes written under this tick's cork: held by the cork, not by a full socket. */
  private turnBytes = 0;
  private chunked = false;
  private hasBody = true;

  /**
   * @param isHead a HEAD request (no body is written whatever the far end sends)
   * @param http10 an HTTP/1.0 client (no chunked coding: a body without length ends with the connection)
   */
  constructor(private readonly socket: Socket, private readonly isHead: boolean, private readonly http10: boolean, keepAlive: boolean) {
    this.keepAlive = keepAlive;
  }

  /** The final response head; `headers` flat and already checked (validate.ts). */
  head(status: number, statusMessage: string, headers: string[]): void {
    this.started = true;
    this.status = status;
    this.hasBody = !this.isHead && status !== 204 && status !== 304 && !(status >= 100 && status <= 199);
    let text = `HTTP/1.1 ${status} ${statusMessage}\r\n`;
    let date = false;
    let connection = false;
    let length = false;
    let te = false;
    let trailerLines: [number, number][] | undefined;
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i] ?? '';
      const value = headers[i + 1] ?? '';
      const line = name + ': ' + value + CRLF;
      if (name.length === 7 && name.toLowerCase() === 'trailer') (trailerLines ??= []).push([text.length, text.length + line.length]);
      text += line;
      // What Node's matchHeader notes of the headers it is given.
      if (name.length < 4 || name.length > 17) continue;
      switch (name.toLowerCase()) {
        case 'date': date = true; break;
        case 'content-length': length = true; break;
        case 'connection':
          connection = true;
          if (CONNECTION_CLOSE.test(value)) this.keepAlive = false;
          break;
        case 'transfer-encoding':
          te = true;
          if (TE_CHUNKED.test(value)) this.chunked = true;
          break;
        default:
      }
    }
    if (!date) text += 'Date: ' + httpDate() + CRLF;
    if (this.chunked && (status === 204 || status === 304)) {
      this.chunked = false;
      this.keepAlive = false;
    }
    const chunkable = !this.http10;
    if (!connection) {
      if (this.keepAlive && (length || chunkable)) {
        text += `Connection: keep-alive\r\nKeep-Alive: timeout=${KEEP_ALIVE_MS / 1000}\r\n`;
      } else {
        this.keepAlive = false;
        text += 'Connection: close\r\n';
      }
    }
    if (!length && !te) {
      if (!this.hasBody) this.chunked = false;
      else if (!chunkable) this.keepAlive = false;
      else {
        text += 'Transfer-Encoding: chunked\r\n';
        this.chunked = true;
      }
    }
    // Node refuses a Trailer header on an answer it does not send chunked; acceptRequest then
    // sends it without (http.ts): so does this.
    if (trailerLines && !this.chunked) {
      for (const [from, to] of trailerLines.reverse()) text = text.slice(0, from) + text.slice(to);
    }
    this.pendingHead = text + CRLF;
  }

  /**
   * A piece of the body; false when the client's socket is full (wait for its 'drain'). The
   * socket is corked to the end of the tick, so the pieces a turn brings (the two halves of a
   * tunnel frame that straddled a read, several streams' frames) leave in one system call;
   * what the cork holds does not count as a full socket, or the stream would pause and
   * resume around every piece (Node answers false to any write above its 16 KiB high-water
   * mark, however empty the socket).
   */
  write(chunk: Buffer): boolean {
    if (!this.hasBody || chunk.length === 0) return true;
    this.corkForTick();
    const socket = this.socket;
    const before = socket.writableLength;
    const head = this.pendingHead;
    this.pendingHead = undefined;
    if (!this.chunked) {
      if (head === undefined) socket.write(chunk);
      else this.send(head, chunk, '');
    } else {
      this.send((head ?? '') + chunk.length.toString(16) + CRLF, chunk, CRLF);
    }
    this.turnBytes += socket.writableLength - before;
    return socket.writableLength - this.turnBytes < socket.writableHighWaterMark;
  }

  /**
   * The end of the body (with trailers for a chunked one: checked already); `done` runs once
   * the last bytes are flushed (or the socket failed).
   */
  end(trailers: string[] | undefined, done: (err?: Error | null) => void): void {
    let text = this.pendingHead ?? '';
    this.pendingHead = undefined;
    if (this.chunked && this.hasBody) {
      text += '0\r\n';
      if (trailers) for (let i = 0; i + 1 < trailers.length; i += 2) text += `${trailers[i] ?? ''}: ${trailers[i + 1] ?? ''}\r\n`;
      text += CRLF;
    }
    const written = (err?: Error | null): void => {
      this.finished = !err;
      done(err);
    };
    if (text === '') {
      // Nothing left to write: an empty write would cost a system call (or a writev) of its
      // own. Once the corked bytes are handed to the kernel (at the end of this tick), what
      // is still queued says whether the answer is out.
      if (this.socket.writableCorked) process.nextTick(whenFlushed, this.socket, written);
      else whenFlushed(this.socket, written);
      return;
    }
    this.corkForTick();
    this.socket.write(text, 'latin1', written);
  }

  /**
   * What Node's OutgoingMessage does: the socket is corked until the end of this tick, so a
   * head, a body and the end that come in one tick leave in one system call.
   */
  private corkForTick(): void {
    if (this.socket.writableCorked) return;
    this.socket.cork();
    process.nextTick(this.uncorkTick);
  }

  private readonly uncorkTick = (): void => {
    this.turnBytes = 0;
    this.socket.uncork();
  };

  /** A whole answer of west's own (a failure): head and body in one write. */
  answer(status: number, statusMessage: string, headers: string[], body: string, done: (err?: Error | null) => void): void {
    this.head(status, statusMessage, headers);
    const head = this.pendingHead ?? '';
    this.pendingHead = undefined;
    this.socket.write(this.hasBody ? head + body : head, 'utf8', (err) => {
      this.finished = !err;
      done(err);
    });
  }

  /** An interim (1xx) head, written at once. */
  interim(text: string): void {
    this.socket.write(text, 'latin1');
  }

  private send(prefix: string, chunk: Buffer, suffix: string): void {
    if (chunk.length <= COPY_LIMIT) {
      const size = Buffer.byteLength(prefix, 'latin1');
      const out = Buffer.allocUnsafe(size + chunk.length + suffix.length);
      out.write(prefix, 0, 'latin1');
      chunk.copy(out, size);
      if (suffix) out.write(suffix, size + chunk.length, 'latin1');
      this.socket.write(out);
      return;
    }
    this.socket.write(prefix, 'latin1');
    this.socket.write(chunk);
    if (suffix) this.socket.write(suffix, 'latin1');
  }
}

/** Calls `done` once nothing written to `socket` waits in its buffer any more. */
function whenFlushed(socket: Socket, done: (err?: Error | null) => void): void {
  if (socket.writableLength === 0 && !socket.destroyed) queueMicrotask(done);
  else socket.write('', 'latin1', done);
}
