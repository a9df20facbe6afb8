/**
 * A proxy listener (`proxy["http://host:port"]`): takes plain HTTP requests (and protocol
 * upgrades), matches them to a mapping and carries each across a tunnel as one stream, the
 * body streamed both ways.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { ListenerConfig, Tuning } from '../config/types.js';
import { WestError } from '../errors.js';
import { boundPort, closeNow, listenOn } from '../listen.js';
import type { Logger } from '../log.js';
import type { TunnelSession } from '../tunnel/session.js';
import type { ResponseHead } from '../tunnel/frame.js';
import type { TunnelStream } from '../tunnel/stream.js';
import { AddressAllowlist } from './allow.js';
import { sendFailure, toWestError } from './failure.js';
import { addForwardingHeaders, framesBody, headerValues, requestIdOf, stripHopByHop, viaPseudonym, westVias } from './passes.js';
import { PathMap, type PathMatch } from './pathmap.js';
import { rawResponseHead, sendRawFailure, splice } from './upgrade.js';
import { invalidResponseHead } from './validate.js';

/** Finds (or dials) the tunnel a listener's requests travel through. */
export type SessionResolver = (listener: ListenerConfig) => Promise<TunnelSession | WestError>;

export interface ListenerStats {
  requests: number;
  inFlight: number;
  /** Responses by status code (499: the client went away before any response). */
  statuses: Record<string, number>;
}

/** One finished request, as the access log and the metrics see it. */
export interface AccessRecord {
  id: string;
  listener: string;
  /** The mapping path, or '-' when none matched. */
  mapping: string;
  method: string;
  path: string;
  /** 499: the client went away before any response. */
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  client: string;
  /** False when the response was cut off. */
  completed: boolean;
  /** Upgrade protocol (e.g. "websocket") for upgrade requests. */
  upgrade?: string;
  /** Why west answered with a failure, and where it happened. */
  failure?: { code: string; node: string; message: string };
}

export interface ProxyListenerOptions {
  config: ListenerConfig;
  nodeName: string;
  tuning: Tuning;
  resolveSession: SessionResolver;
  log: Logger;
  /** Called once per finished request (after the access log line). */
  onAccess?: (record: AccessRecord) => void;
}

/** What routing needs of a request, whether it came over a socket or from this node's own far end. */
export interface RequestInfo {
  method: string;
  /** The request target: path and query. */
  url: string;
  rawHeaders: string[];
  remoteAddress: string;
  host: string | undefined;
}

function infoOf(req: http.IncomingMessage): RequestInfo {
  return { method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders, remoteAddress: req.socket.remoteAddress ?? '', host: req.headers.host };
}

/** Sends a request body into the stream (piped, counted), or ends the stream at once when there is none. */
export function forwardBody(body: Readable, hasBody: boolean, stream: TunnelStream, count: (bytes: number) => void): void {
  if (hasBody) {
    body.on('data', (c: Buffer) => count(c.length));
    body.pipe(stream);
  } else {
    body.resume();
    stream.end();
  }
}

/**
 * Calls `use` with the far end's response head when it arrives; a head HTTP would not allow
 * (CR in a value, a bad status) resets the stream instead and is never written anywhere.
 */
export function onResponseHead(stream: TunnelStream, use: (head: ResponseHead) => void): void {
  stream.once('response', (head: ResponseHead) => {
    const invalid = invalidResponseHead(head.status, head.statusMessage, head.headers);
    if (invalid) stream.reset('origin_error', `the far end sent an invalid response head: ${invalid}`);
    else use(head);
  });
}

/**
 * Request framing west does not carry (RFC 9112 §6.1, §6.3): a Transfer-Encoding whose last
 * coding is not chunked (400: the body's end cannot be known), codings other than chunked
 * (501: re-framing would drop them), and an upgrade request with a body (501: the body and
 * the bytes after a 101 share one direction of the stream).
 */
export function framingProblem(rawHeaders: string[], upgrade: boolean): { code: 'bad_request' | 'unsupported'; message: string } | undefined {
  const te = headerValues(rawHeaders, 'transfer-encoding');
  if (te.length > 0) {
    const codings = te.join(',').split(',').map((c) => c.trim().toLowerCase()).filter(Boolean);
    if (codings[codings.length - 1] !== 'chunked') {
      return { code: 'bad_request', message: `Transfer-Encoding ${JSON.stringify(te.join(', '))} does not end in chunked` };
    }
    if (codings.length > 1) {
      return { code: 'unsupported', message: `transfer codings other than chunked are not carried (${JSON.stringify(te.join(', '))})` };
    }
  }
  if (upgrade && framesBody(te[0], headerValues(rawHeaders, 'content-length')[0])) {
    return { code: 'unsupported', message: 'an upgrade request with a body is not carried' };
  }
  return undefined;
}

/** A request that passed every check and has a stream open to the far end. */
interface Routed {
  match: PathMatch;
  stream: TunnelStream;
}

export class ProxyListener {
  config: ListenerConfig;
  readonly stats: ListenerStats = { requests: 0, inFlight: 0, statuses: {} };
  private readonly opts: ProxyListenerOptions;
  private readonly server: http.Server;
  private paths: PathMap;
  /** Open connections by client address, for west.maxConnectionsPerAddress. */
  private readonly connections = new Map<string, number>();
  private allowlists: Map<string, AddressAllowlist>;
  private via = '';
  private draining = false;

  constructor(opts: ProxyListenerOptions) {
    this.opts = opts;
    this.config = opts.config;
    this.paths = new PathMap(opts.config.mappings);
    this.allowlists = new Map(opts.config.mappings.map((m) => [m.path, new AddressAllowlist(m.allow)]));
    // requestTimeout 0: bodies may stream for hours. It would also turn Node's headersTimeout
    // off (its default is the smaller of the two), so that is set on its own: a client that
    // sends nothing or drips its head is answered 408 (checked every quarter of the timeout).
    const serverOptions = {
      requestTimeout: 0, headersTimeout: opts.tuning.headerTimeoutMs, keepAliveTimeout: 5000,
      connectionsCheckingInterval: Math.max(250, Math.min(5000, opts.tuning.headerTimeoutMs / 4)),
      maxHeaderSize: opts.tuning.maxHeaderSize,
    };
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.onRequest(req, res).catch((err: unknown) => {
        opts.log.error('proxy.internal_error', { error: err instanceof Error ? err.stack : String(err) });
        sendFailure(res, new WestError('internal', opts.nodeName, 'internal error'), opts.tuning.retryAfterS);
      });
    };
    const tls = opts.config.tlsMaterial;
    this.server = tls
      ? https.createServer({ ...serverOptions, cert: tls.cert, key: tls.key }, onRequest)
      : http.createServer(serverOptions, onRequest);
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onUpgrade(req, socket, head).catch((err: unknown) => {
        opts.log.error('proxy.internal_error', { error: err instanceof Error ? err.stack : String(err) });
        socket.destroy();
      });
    });
    this.server.on('connection', (socket: Socket) => this.admit(socket));
    // A forward proxy's CONNECT is not what a west listener is: say so instead of hanging up.
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
      socket.on('error', () => socket.destroy());
      sendRawFailure(socket, new WestError('unsupported', opts.nodeName, 'CONNECT is not supported: a west listener is not a forward proxy'), opts.tuning.retryAfterS);
      opts.log.debug('proxy.bad_request', { listener: opts.config.key, status: 501, error: 'CONNECT', client: req.socket.remoteAddress });
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const failure = err.code === 'HPE_HEADER_OVERFLOW'
        ? new WestError('head_too_large', opts.nodeName, `request head is larger than ${opts.tuning.maxHeaderSize} bytes (west.maxHeaderSize)`)
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? new WestError('head_timeout', opts.nodeName, 'request head took too long')
          : new WestError('bad_request', opts.nodeName, `malformed HTTP request (${err.code ?? err.message})`);
      sendRawFailure(socket, failure, opts.tuning.retryAfterS);
      opts.log.debug('proxy.bad_request', { listener: opts.config.key, status: failure.status, error: err.code ?? err.message });
    });
  }

  get port(): number {
    return boundPort(this.server);
  }

  get nodeName(): string {
    return this.opts.nodeName;
  }

  get tuning(): Tuning {
    return this.opts.tuning;
  }

  async listen(): Promise<void> {
    await listenOn(this.server, this.config);
    this.via = viaPseudonym(this.opts.nodeName, this.port);
    this.opts.log.info('proxy.listening', { listener: this.config.key, port: this.port });
  }

  /**
   * Takes a reloaded config for the same endpoint: new mappings, target and tuning apply to
   * the next request; requests in flight finish as they started.
   */
  update(config: ListenerConfig, tuning: Tuning): void {
    this.config = config;
    this.opts.tuning = tuning;
    this.server.headersTimeout = tuning.headerTimeoutMs;
    this.paths = new PathMap(config.mappings);
    this.allowlists = new Map(config.mappings.map((m) => [m.path, new AddressAllowlist(m.allow)]));
  }

  /**
   * Counts a new connection against its address's cap; one past the cap is closed at once,
   * before a byte of it is parsed (slowloris from one address cannot starve the others).
   */
  private admit(socket: Socket): void {
    const address = socket.remoteAddress ?? '';
    const open = (this.connections.get(address) ?? 0) + 1;
    const cap = this.opts.tuning.maxConnectionsPerAddress;
    if (cap > 0 && open > cap) {
      this.opts.log.debug('proxy.connection_limit', { listener: this.config.key, client: address, cap });
      socket.destroy();
      return;
    }
    this.connections.set(address, open);
    socket.once('close', () => {
      const left = (this.connections.get(address) ?? 1) - 1;
      if (left > 0) this.connections.set(address, left);
      else this.connections.delete(address);
    });
  }

  /** Stops accepting; in-flight requests go on until they finish or `close()` is called. */
  stopAccepting(): void {
    this.draining = true;
    this.server.close();
    this.server.closeIdleConnections();
  }

  async close(): Promise<void> {
    this.draining = true;
    await closeNow(this.server);
  }

  /**
   * The checks every request passes, in order (404, 403, 508, 503), then the stream to the far
   * end. `gone()` says whether the client left while we waited for the tunnel. (Also the
   * first step of relay.ts.)
   */
  async route(
    req: RequestInfo, requestId: string, upgrade: string | undefined, gone: () => boolean,
    matched: (mappingPath: string) => void,
  ): Promise<Routed | WestError | undefined> {
    const { nodeName, tuning } = this.opts;
    if (this.draining) return new WestError('draining', nodeName, 'this node is shutting down');
    // Framing is judged before anything leaves this node: a request refused here must never
    // reach an origin (the parser's own verdict on the body can come after the head).
    const framing = framingProblem(req.rawHeaders, upgrade !== undefined);
    if (framing) return new WestError(framing.code, nodeName, framing.message);

    let target: URL;
    try {
      target = new URL(req.url, 'http://placeholder');
    } catch {
      return new WestError('bad_request', nodeName, `request target ${JSON.stringify(req.url)} is not a valid path`);
    }
    const match = this.paths.match(target.pathname, target.search);
    if (!match) return new WestError('no_mapping', nodeName, `no mapping for ${target.pathname} on listener ${this.config.key}`);
    matched(match.mapping.path);

    if (!this.allowlists.get(match.mapping.path)!.allows(req.remoteAddress)) {
      return new WestError('client_denied', nodeName, `client ${req.remoteAddress} is not allowed by "ca" of ${match.mapping.path}`);
    }

    const vias = westVias(req.rawHeaders);
    if (vias.includes(this.via)) {
      return new WestError('loop_detected', nodeName, `request already passed listener ${this.via} (via ${vias.join(', ')})`);
    }
    if (vias.length >= tuning.maxHops) {
      return new WestError('hop_limit', nodeName, `request passed ${vias.length} west listeners; the limit is ${tuning.maxHops}`);
    }

    const session = await this.opts.resolveSession(this.config);
    if (session instanceof WestError) return session;
    if (gone()) return undefined;

    const headers = addForwardingHeaders(stripHopByHop(req.rawHeaders, true), {
      clientAddress: req.remoteAddress,
      proto: this.config.tlsMaterial ? 'https' : 'http',
      host: req.host,
      via: this.via,
      requestId,
    });
    try {
      const stream = session.openStream({
        kind: 'http', method: req.method, url: match.outgoing.href, headers,
        hops: vias.length + 1, to: '', id: requestId, ...(upgrade ? { upgrade } : {}),
      });
      this.opts.log.debug('proxy.forward', { id: requestId, to: match.outgoing.href, peer: session.peerName, stream: stream.id });
      return { match, stream };
    } catch (err) {
      return toWestError(err, nodeName);
    }
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { nodeName, tuning } = this.opts;
    const started = process.hrtime.bigint();
    const requestId = requestIdOf(req.rawHeaders);
    this.stats.requests++;
    this.stats.inFlight++;
    let bytesIn = 0;
    let bytesOut = 0;
    let mapping = '-';
    let failure: AccessRecord['failure'];
    res.once('close', () => {
      this.stats.inFlight--;
      this.finish({
        id: requestId, listener: this.config.key, mapping, method: req.method ?? '', path: req.url ?? '',
        status: res.headersSent ? res.statusCode : 499,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6, bytesIn, bytesOut,
        client: req.socket.remoteAddress ?? '', completed: res.writableFinished, failure,
      });
    });
    const fail = (err: WestError): void => {
      failure ??= { code: err.code, node: err.node, message: err.message };
      // After a refused framing the rest of the connection cannot be parsed: close it.
      if (err.code === 'bad_request' || err.code === 'unsupported') res.shouldKeepAlive = false;
      req.resume();
      sendFailure(res, err, tuning.retryAfterS);
    };

    const routed = await this.route(infoOf(req), requestId, undefined, () => res.destroyed, (path) => { mapping = path; });
    if (routed === undefined) return;
    if (routed instanceof WestError) return fail(routed);
    const { stream } = routed;

    const hasBody = framesBody(req.headers['transfer-encoding'], req.headers['content-length']);
    forwardBody(req, hasBody, stream, (n) => { bytesIn += n; });
    onResponseHead(stream, (head) => {
      res.writeHead(head.status, head.statusMessage, head.headers);
      // What pipe() does, without its per-request listeners: pause the stream (so the far end
      // runs out of window) while the client's socket is full.
      stream.on('data', (c: Buffer) => {
        bytesOut += c.length;
        if (!res.write(c)) stream.pause();
      });
      res.on('drain', () => stream.resume());
      stream.once('end', () => res.end());
    });
    stream.on('error', (err) => fail(toWestError(err, nodeName)));
    stream.on('end', () => {
      if (!stream.response) fail(new WestError('tunnel_lost', nodeName, 'the far end ended the stream without a response'));
    });
    // The client hung up: cancel the stream, which cancels the work at every further hop. So
    // too when the response is complete but the request body is not (the origin answered
    // early, a 413 say): nobody will read the rest, and the stream must not wait for it.
    res.once('close', () => {
      if (!res.writableFinished || !stream.writableFinished) stream.destroy();
    });
  }

  private async onUpgrade(req: http.IncomingMessage, socket: Duplex, early: Buffer): Promise<void> {
    const { nodeName, tuning } = this.opts;
    const started = process.hrtime.bigint();
    const requestId = requestIdOf(req.rawHeaders);
    const protocol = headerValues(req.rawHeaders, 'upgrade')[0] ?? '';
    // Node's server drops its own 'error' listener before it hands over an upgrade's socket:
    // without this one, a client that resets while we wait for the far end crashes the node.
    socket.on('error', () => socket.destroy());
    this.stats.requests++;
    const record = (status: number, mapping: string, failure?: WestError): void => this.finish({
      id: requestId, listener: this.config.key, mapping, method: req.method ?? '', path: req.url ?? '', status,
      durationMs: Number(process.hrtime.bigint() - started) / 1e6, bytesIn: 0, bytesOut: 0,
      client: req.socket.remoteAddress ?? '', completed: status === 101, upgrade: protocol,
      failure: failure && { code: failure.code, node: failure.node, message: failure.message },
    });
    let mapping = '-';
    const routed = await this.route(infoOf(req), requestId, protocol, () => socket.destroyed, (path) => { mapping = path; });
    if (routed === undefined) return;
    if (routed instanceof WestError) {
      record(routed.status, mapping, routed);
      sendRawFailure(socket, routed, tuning.retryAfterS);
      return;
    }
    const { stream } = routed;
    onResponseHead(stream, (head) => {
      record(head.status, routed.match.mapping.path);
      if (head.status === 101) {
        socket.write(rawResponseHead(101, head.statusMessage, head.headers));
        splice(socket, stream, early);
        return;
      }
      // The origin declined to switch: relay its answer, then close (no framing to reuse).
      socket.write(rawResponseHead(head.status, head.statusMessage, [...head.headers, 'Connection', 'close']));
      stream.end();
      stream.pipe(socket);
    });
    stream.on('error', (err) => {
      if (stream.response) {
        socket.destroy();
        return;
      }
      const failure = toWestError(err, nodeName);
      record(failure.status, routed.match.mapping.path, failure);
      sendRawFailure(socket, failure, tuning.retryAfterS);
    });
    // The request direction stays open: after a 101 it carries the client's bytes.
    socket.on('close', () => { if (!stream.destroyed) stream.destroy(); });
  }

  /** Counts, logs and reports one finished request. */
  finish(record: AccessRecord): void {
    this.stats.statuses[record.status] = (this.stats.statuses[record.status] ?? 0) + 1;
    if (this.opts.log.enabled('info')) this.opts.log.info('access', {
      id: record.id, listener: record.listener, mapping: record.mapping, method: record.method, path: record.path,
      status: record.status, ms: Math.round(record.durationMs * 10) / 10, in: record.bytesIn, out: record.bytesOut,
      client: record.client, completed: record.completed, upgrade: record.upgrade,
      error: record.failure?.code, at: record.failure?.node,
    });
    this.opts.onAccess?.(record);
  }
}
