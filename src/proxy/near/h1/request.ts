/**
 * One request the lean front serves: the same Exchange, route() and stream watching as
 * acceptRequest (http.ts), with the response written by ResponseWriter instead of Node's
 * ServerResponse. Its body is pumped by the connection (connection.ts), which owns the bytes.
 */
import { STATUS_CODES } from 'node:http';
import { WestError } from '../../../errors.js';
import type { ResponseHead } from '../../../tunnel/frame.js';
import type { TunnelStream } from '../../../tunnel/stream.js';
import { failureAnswer } from '../../shared/failure.js';
import { Exchange } from '../exchange.js';
import { checkedTrailers, hintsOf, INFORMATIONAL_QUEUE, watchStream, type NearEnd } from '../http.js';
import { route, type RouteResult } from '../route.js';
import type { LeanHead } from './head.js';
import { ResponseWriter } from './response.js';
import type { Socket } from 'node:net';

/** What a request needs of its connection. */
export interface RequestConnection {
  readonly socket: Socket;
  readonly remoteAddress: string;
  /** The stream the request body goes into, once routed. */
  bodyReady(stream: TunnelStream): void;
  /** The request is over; the connection may serve another when `keepAlive`. */
  requestDone(keepAlive: boolean): void;
}

/** What a request needs of its listener. */
export type RequestHost = NearEnd & {
  readonly draining: boolean;
  internalError(err: unknown): void;
};

export class LeanRequest {
  readonly ex: Exchange;
  private stream: TunnelStream | undefined;
  private readonly writer: ResponseWriter;
  private ended = false;

  constructor(private readonly conn: RequestConnection, private readonly near: RequestHost, private readonly head: LeanHead) {
    this.writer = new ResponseWriter(conn.socket, head.method === 'HEAD', head.http10, head.keepAlive);
    this.ex = new Exchange(near, {
      method: head.method, url: head.url, rawHeaders: head.rawHeaders, remoteAddress: conn.remoteAddress, host: head.host,
    }, undefined, () => this.ended);
  }

  start(): void {
    let routing: RouteResult | Promise<RouteResult>;
    try {
      routing = route(this.near, this.ex);
    } catch (err) {
      this.internal(err);
      return;
    }
    if (routing instanceof Promise) routing.then((r) => this.routedSafely(r), (err: unknown) => this.internal(err));
    else this.routedSafely(routing);
  }

  /** A bug while starting the exchange costs this request a 500, not the node. */
  private routedSafely(routed: RouteResult): void {
    try {
      this.routed(routed);
    } catch (err) {
      this.internal(err);
    }
  }

  /** The client's socket took what was queued: the stream may flow again. */
  drained(): void {
    this.stream?.resume();
  }

  /** The client went away (closed, reset or half-closed) before the exchange ended. */
  clientGone(): void {
    if (this.ended) return;
    this.ended = true;
    this.ex.end(this.writer.started ? this.writer.status : undefined, false);
    this.stream?.destroy();
  }

  private routed(routed: RouteResult): void {
    if (routed.kind === 'abandoned') return;
    if (routed.kind === 'failed') { this.fail(routed.error); return; }
    const stream = routed.stream;
    if (this.ended) {
      stream.destroy();
      return;
    }
    this.stream = stream;
    this.informational(stream);
    watchStream(this.near, this.ex, stream, (head) => this.respond(stream, head), (err) => this.fail(err));
    if (this.head.contentLength > 0) this.conn.bodyReady(stream);
    else stream.end();
  }

  private respond(stream: TunnelStream, head: ResponseHead): void {
    if (this.ended) return;
    const { writer, ex } = this;
    // Once the listener drains, the client is told this connection ends with this answer.
    if (this.near.draining) writer.keepAlive = false;
    writer.head(head.status, head.statusMessage, head.headers);
    stream.on('data', (c: Buffer) => {
      ex.bytesOut += c.length;
      if (!writer.write(c)) stream.pause();
    });
    stream.once('end', () => writer.end(checkedTrailers(stream), (err) => this.finish(err)));
  }

  /** As acceptRequest's fail(): the failure answered, or a response under way cut off. */
  private fail(err: WestError): void {
    if (this.ended) return;
    this.ex.failed(err);
    if (this.writer.started) {
      this.conn.socket.destroy();
      return;
    }
    // After a malformed request the rest of the connection cannot be trusted: close it.
    if (err.code === 'bad_request' || this.near.draining) this.writer.keepAlive = false;
    const answer = failureAnswer(err, this.near.tuning);
    this.writer.answer(answer.status, STATUS_CODES[answer.status] ?? 'unknown', answer.headers, answer.body, (e) => this.finish(e));
  }

  private internal(err: unknown): void {
    this.near.internalError(err);
    this.fail(new WestError('internal', this.near.nodeName, 'internal error'));
  }

  /** The last bytes of the answer went out (or could not). */
  private finish(err: Error | null | undefined): void {
    if (this.ended) return;
    this.ended = true;
    const completed = !err && this.writer.finished;
    this.ex.end(this.writer.status, completed);
    // The answer is complete while the request body is not (the origin answered early, a
    // 413 say): nobody will read the rest, and the stream must not wait for it.
    const stream = this.stream;
    if (stream && (!completed || !stream.writableFinished)) stream.destroy();
    this.conn.requestDone(completed && this.writer.keepAlive);
  }

  /** 102 and 103 on their way to the client, under relayInformation's bounds (http.ts). */
  private informational(stream: TunnelStream): void {
    if (this.head.http10 || !stream.peerSupports('informational')) return;
    const { writer } = this;
    const socket = this.conn.socket;
    stream.on('information', (head: ResponseHead) => {
      if (writer.started || socket.writableLength > INFORMATIONAL_QUEUE) return;
      if (head.status === 102) writer.interim('HTTP/1.1 102 Processing\r\n\r\n');
      else if (head.status === 103) {
        const text = earlyHintsHead(hintsOf(head));
        if (text) writer.interim(text);
      }
    });
  }
}

/** Node's writeEarlyHints check of each Link value (internal/validators.js). */
const LINK_VALUE = /^(?:<[^>]*>)(?:\s*;\s*[^;"\s]+(?:=(")?[^;"\s]*\1)?)*$/;

/** The 103 head Node's writeEarlyHints writes for these hints; undefined where it writes none (or throws). */
export function earlyHintsHead(hints: Record<string, string[]>): string | undefined {
  const links = hints.link;
  if (!links || links.length === 0 || !links.every((l) => LINK_VALUE.test(l))) return undefined;
  let head = `HTTP/1.1 103 Early Hints\r\nLink: ${links.join(', ')}\r\n`;
  for (const [name, values] of Object.entries(hints)) if (name !== 'link') head += `${name}: ${values.join(',')}\r\n`;
  return head + '\r\n';
}
