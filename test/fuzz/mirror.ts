/**
 * A mirror of the proxy listener's HTTP parsing: a plain Node HTTP server with the listener's
 * options, fed the same bytes, that reports what Node's parser made of them (which request
 * heads it accepted, whether each body arrived whole, and the parse error that ended the
 * connection). The fuzz oracle reads the client's answers against it, independently of west.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connectRaw, MARKER, writeRaw } from '../helpers/fuzz.js';

export interface MirroredRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  marker: string | undefined;
  upgrade: boolean;
  /** Its head announced a body a proxy must stream: Content-Length > 0, or chunked last. */
  framesBody: boolean;
  /** Its body arrived whole (set by the parser as it reads the bytes). */
  complete: () => boolean;
  /**
   * An HTTP/1.1 request without Host: Node answers it 400 itself (and closes), without
   * emitting 'request'. The mirror turns that check off so it sees the request, and marks it.
   */
  hostless: boolean;
  /**
   * Its path has a dot segment (also as `%2e`, or `..;x`), an encoded slash or a backslash
   * (plain or `%5C`): the listener answers it 400 and closes (doc/security.md, "Paths").
   */
  refusedPath: boolean;
  /** It asks for 100 Continue (Node answers that by itself, as the listener has no 'checkContinue' listener). */
  expectsContinue: boolean;
}

export interface MirrorParse {
  /** Request heads the parser accepted, in order (a request a server answers is one of these). */
  requests: MirroredRequest[];
  /** The parse error that ended the connection (an HPE_* code), if any. */
  error: string | undefined;
  /** A request had arrived whole before the parse error. */
  errorAfterCompleteRequest: boolean;
}

/**
 * Known-bug class (listener): a connection carries a request and then bytes that must not be
 * served: a parse error after a complete request (junk, or anything after `Connection: close`
 * or an HTTP/1.0 request: HPE_CLOSED_CONNECTION), or a request after one without Host or
 * with a path the listener refuses.
 */
export function servesAfterRefusal(parse: MirrorParse): boolean {
  return parse.errorAfterCompleteRequest || parse.requests.some((r, i) => (r.hostless || r.refusedPath) && i < parse.requests.length - 1);
}

/** The listener's path rule, written out again here so the oracle does not borrow west's code. */
function refusedPath(target: string): boolean {
  const path = target.split(/[?#]/)[0]!.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/\\]*/, '');
  if (/\\|%2f|%5c/i.test(path)) return true;
  return path.split('/').some((s) => /^(\.|%2e){1,2}$/i.test(s.split(';')[0]!));
}

/**
 * Found-bug class (listener): a pipelined request, queued behind another, that expects 100
 * Continue: Node writes the 100 between the queued answer's head and its body.
 */
export function continueWhileQueued(parse: MirrorParse): boolean {
  return parse.requests.some((r, i) => i > 0 && r.expectsContinue);
}

interface Pending {
  parse: MirrorParse;
  expected: number;
  seen: number;
  settle: () => void;
}

/** What a request head says about its body (RFC 9112 §6.3, as Node reads it). */
function framesBody(headers: http.IncomingHttpHeaders): boolean {
  const te = headers['transfer-encoding'];
  if (te !== undefined) return te.split(',').pop()!.trim().toLowerCase() === 'chunked';
  return /^\d+$/.test(headers['content-length'] ?? '') && Number(headers['content-length']) > 0;
}

export class MirrorParser {
  private readonly server: http.Server;
  /** Connections by the client's local port. */
  private readonly pending = new Map<number, Pending>();

  constructor(maxHeaderSize: number) {
    // The listener's own options (src/proxy/listener.ts), and like it an 'upgrade' listener
    // and no 'connect' or 'checkContinue' listener.
    // It never answers: an answer could close the connection (Connection: close) before the
    // parser has seen the bytes after it.
    this.server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 5000, maxHeaderSize, requireHostHeader: false }, (req) => {
      this.requestOf(req, false);
      req.resume();
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
      this.requestOf(req, true);
      socket.destroy();
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const p = this.pendingOf(socket);
      if (p) {
        p.parse.error = err.code ?? err.message;
        p.parse.errorAfterCompleteRequest = p.parse.requests.some((r) => r.complete());
      }
      socket.destroy();
    });
    this.server.on('connection', (socket: Socket) => {
      // Registered after the server's own 'data' listener: when it has counted every byte,
      // the parser has seen them all and every event they cause has been emitted.
      socket.on('data', (chunk: Buffer) => {
        const p = this.pendingOf(socket);
        if (!p) return;
        p.seen += chunk.length;
        if (p.seen >= p.expected) p.settle();
      });
      socket.on('close', () => this.pendingOf(socket)?.settle());
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Sends `raw` (latin1) on a fresh connection and reports what the parser made of it. */
  async parse(raw: string): Promise<MirrorParse> {
    const conn = await connectRaw((this.server.address() as AddressInfo).port);
    const parse: MirrorParse = { requests: [], error: undefined, errorAfterCompleteRequest: false };
    const settled = new Promise<void>((settle) => {
      this.pending.set(conn.socket.localPort!, { parse, expected: raw.length, seen: 0, settle });
    });
    if (raw.length === 0) this.pending.get(conn.socket.localPort!)!.settle();
    writeRaw(conn.socket, raw);
    await settled;
    this.pending.delete(conn.socket.localPort!);
    conn.socket.destroy();
    await conn.closed;
    return parse;
  }

  private pendingOf(socket: Duplex): Pending | undefined {
    return this.pending.get((socket as Socket).remotePort ?? -1);
  }

  private requestOf(req: http.IncomingMessage, upgrade: boolean): void {
    const p = this.pendingOf(req.socket);
    if (!p) return;
    const marker = req.headers[MARKER];
    p.parse.requests.push({
      method: req.method ?? '', url: req.url ?? '', headers: req.headers, marker: typeof marker === 'string' ? marker : undefined, upgrade,
      framesBody: framesBody(req.headers), complete: () => req.complete,
      hostless: !upgrade && req.httpVersion === '1.1' && req.headers.host === undefined,
      refusedPath: refusedPath(req.url ?? ''),
      expectsContinue: /(?:^|\W)100-continue(?:$|\W)/i.test(req.headers.expect ?? ''),
    });
  }
}
