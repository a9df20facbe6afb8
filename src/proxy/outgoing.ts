/**
 * The far end of a stream: performs the request it carries against the outgoing URL and
 * streams the origin's answer back, status, headers and body as the origin sent them.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { FailureCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { TunnelStream } from '../tunnel/stream.js';
import { canonicalName } from '../config/types.js';
import { setHeader, stripHopByHop } from './passes.js';
import type { EgressPolicy } from './egress.js';
import { splice } from './upgrade.js';
import { invalidRequestHead } from './validate.js';

export interface OutgoingContext {
  nodeName: string;
  /** Undefined: fetch whatever peers ask (open relay). */
  egress: EgressPolicy | undefined;
  responseTimeoutMs: number;
  connectTimeoutMs: number;
  log: Logger;
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
}

/** Keep-alive pools to origins, one per node. */
export function makeAgents(): { httpAgent: http.Agent; httpsAgent: https.Agent } {
  const opts = { keepAlive: true, maxFreeSockets: 64, scheduling: 'lifo' as const };
  return { httpAgent: new http.Agent(opts), httpsAgent: new https.Agent(opts) };
}

/** Maps a socket error from the origin connection to a failure code. */
export function classifyOriginError(err: NodeJS.ErrnoException): FailureCode {
  switch (err.code) {
    case 'ECONNREFUSED': return 'origin_refused';
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'origin_dns';
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EADDRNOTAVAIL': return 'origin_unreachable';
    case 'HPE_INVALID_CONSTANT': case 'HPE_INVALID_STATUS': case 'HPE_INVALID_HEADER_TOKEN': return 'origin_error';
    default: return 'origin_reset';
  }
}

/** Performs the request a peer opened on `stream`. Never throws; failures become RESET frames. */
export function performRequest(stream: TunnelStream, peer: string, ctx: OutgoingContext): void {
  const head = stream.head;
  if (!head) return;
  // Every failure below resets the stream, which emits 'error': the reset already told the
  // peer, so there is nothing more to do with it here (and no listener would crash us).
  stream.on('error', () => {});
  const started = process.hrtime.bigint();
  let status = 0;
  let failure: FailureCode | undefined;
  const fail = (code: FailureCode, message: string): void => {
    failure ??= code;
    ctx.log.debug('outgoing.failed', { id: head.id, url: head.url, code, error: message });
    stream.reset(code, message, ctx.nodeName);
  };
  // One line per performed request, with the id the listener logged: one grep follows a
  // request through every hop of a chain.
  stream.once('close', () => {
    ctx.log.info('perform', {
      id: head.id, peer, method: head.method, url: head.url, status: failure ? undefined : status || undefined,
      error: failure ?? (stream.writableFinished ? undefined : 'cancel'),
      ms: Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10, in: stream.bytesIn, out: stream.bytesOut,
    });
  });

  let url: URL;
  try {
    url = new URL(head.url);
  } catch {
    fail('bad_request', `outgoing URL ${JSON.stringify(head.url)} is not a URL`);
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    fail('bad_request', `outgoing URL ${url.href} is not http or https`);
    return;
  }

  if (ctx.egress && !ctx.egress.allows(peer, url)) {
    ctx.log.warn('outgoing.egress_denied', { id: head.id, peer, url: url.href });
    fail('egress_denied', `node ${ctx.nodeName} does not let ${peer} reach ${url.origin}${url.pathname} (west.egress)`);
    return;
  }

  if (head.to !== '' && canonicalName(head.to) !== canonicalName(ctx.nodeName)) {
    fail('bad_request', `routing to node ${head.to} through ${ctx.nodeName} is not supported by protocol v1`);
    return;
  }

  const tls = url.protocol === 'https:';
  // The far end decides Host: it is always the outgoing URL's, whatever the client sent.
  let headers = setHeader(stripHopByHop(head.headers, true), 'Host', url.host);
  if (head.upgrade) headers = [...headers, 'Connection', 'Upgrade', 'Upgrade', head.upgrade];
  // A peer could send what no HTTP parser would have let through (CR/LF in a value, a method
  // with spaces): refuse it here rather than inject it into the origin request.
  const invalid = invalidRequestHead(head.method, headers);
  if (invalid) {
    fail('bad_request', invalid);
    return;
  }
  let req: http.ClientRequest;
  try {
    req = (tls ? https : http).request(url, {
      method: head.method,
      headers,
      setHost: false,
      agent: tls ? ctx.httpsAgent : ctx.httpAgent,
    });
  } catch (err) {
    fail('bad_request', `cannot send this request to the origin: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }

  let answered = false;
  const responseTimer = setTimeout(() => {
    fail('origin_timeout', `origin ${url.origin} sent no response within ${ctx.responseTimeoutMs / 1000} s`);
    req.destroy();
  }, ctx.responseTimeoutMs);

  req.on('socket', (socket: Socket) => {
    if (!socket.connecting) return;
    const connectTimer = setTimeout(() => {
      fail('connect_timeout', `connection to origin ${url.host} timed out after ${ctx.connectTimeoutMs / 1000} s`);
      req.destroy();
    }, ctx.connectTimeoutMs);
    socket.once('connect', () => clearTimeout(connectTimer));
    socket.once('close', () => clearTimeout(connectTimer));
  });

  req.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(responseTimer);
    if (stream.destroyed) return;
    const code = classifyOriginError(err);
    const why = err.code ? `${err.code}: ${err.message}` : err.message;
    fail(code, answered ? `origin ${url.origin} broke off mid-response (${why})` : `origin ${url.origin} failed (${why})`);
  });

  req.on('response', (res) => {
    clearTimeout(responseTimer);
    answered = true;
    status = res.statusCode ?? 502;
    stream.respond({ status: res.statusCode ?? 502, statusMessage: res.statusMessage ?? '', headers: stripHopByHop(res.rawHeaders, false) });
    res.pipe(stream);
    res.on('close', () => {
      if (!res.complete && !stream.destroyed) fail('origin_reset', `origin ${url.origin} closed the connection mid-response`);
    });
  });

  req.on('upgrade', (res, socket, early) => {
    clearTimeout(responseTimer);
    answered = true;
    // A 101 keeps its Connection/Upgrade headers: the client needs them to switch too.
    stream.respond({ status: 101, statusMessage: res.statusMessage ?? '', headers: res.rawHeaders });
    splice(socket, stream, early);
  });

  // The requester gave up (client hung up, or the tunnel fell): stop the origin request too.
  stream.on('close', () => {
    clearTimeout(responseTimer);
    if (!req.destroyed && !(answered && stream.writableFinished)) req.destroy();
  });
  if (head.upgrade) req.end();
  else stream.pipe(req);
}

