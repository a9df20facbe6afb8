/**
 * The far end of a stream: performs the request it carries against the outgoing URL and
 * streams the origin's answer back, status, headers and body as the origin sent them.
 * Ordinary requests go through undici's pools (see origins.ts); upgrades through Node's
 * client (see upgrade.ts).
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { FailureCode } from '../errors.js';
import type { TunnelStream } from '../tunnel/stream.js';
import { canonicalName } from '../config/types.js';
import { PROTOCOL_VERSION } from '../tunnel/frame.js';
import { classifyOriginError, type Attempt, type OutgoingContext } from './attempt.js';
import { hasRequestBody, setHeader, stripHopByHop, withoutHeader } from './passes.js';
import { relay } from './relay.js';
import { performUpgrade } from './upgrade.js';
import { invalidRequestHead } from './validate.js';

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
  const fail = (code: FailureCode, message: string, node = ctx.nodeName): void => {
    failure ??= code;
    ctx.log.debug('outgoing.failed', { id: head.id, url: head.url, code, error: message, at: node });
    stream.reset(code, message, node);
  };
  // One line per performed request, with the id the listener logged: one grep follows a
  // request through every hop of a chain.
  stream.once('close', () => {
    if (!ctx.log.enabled('info')) return;
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
    fail('bad_request', `routing to node ${head.to} through ${ctx.nodeName} is not supported by this protocol version (west.v${PROTOCOL_VERSION})`);
    return;
  }

  // The far end decides Host: it is always the outgoing URL's, whatever the client sent.
  const headers = setHeader(stripHopByHop(head.headers, true), 'Host', url.host);
  // A peer could send what no HTTP parser would have let through (CR/LF in a value, a method
  // with spaces): refuse it here rather than inject it into the origin request.
  const invalid = invalidRequestHead(head.method, headers);
  if (invalid) {
    fail('bad_request', invalid);
    return;
  }

  const responseTimer = setTimeout(() => {
    fail('origin_timeout', `origin ${url.origin} sent no response within ${ctx.responseTimeoutMs / 1000} s`);
  }, ctx.responseTimeoutMs);
  stream.once('close', () => clearTimeout(responseTimer));
  const attempt: Attempt = {
    stream, url, method: head.method, headers, ctx, fail,
    answered: (s) => {
      clearTimeout(responseTimer);
      status = s;
    },
  };
  const local = head.upgrade ? undefined : ctx.localListener?.(url);
  if (local) {
    relay(local, attempt).catch((err: unknown) => {
      ctx.log.error('proxy.internal_error', { error: err instanceof Error ? err.stack : String(err) });
      fail('internal', 'internal error relaying to this node\'s own listener');
    });
  } else if (head.upgrade) {
    performUpgrade(attempt, head.upgrade);
  } else {
    performPlain(attempt);
  }
}

/** Raw header names and values as undici hands them over (bytes, read as latin1 like Node). */
function rawStrings(raw: Buffer[] | string[] | null): string[] {
  const out: string[] = [];
  for (const h of raw ?? []) out.push(typeof h === 'string' ? h : h.toString('latin1'));
  return out;
}

/**
 * An ordinary request through undici: the body streams from the tunnel with back-pressure,
 * and the origin's answer streams back, undici pausing the origin socket while the tunnel's
 * window is used up.
 */
function performPlain(a: Attempt): void {
  const { stream, url } = a;
  // undici frames the body itself (chunked when no Content-Length is given), and the
  // listener has already answered any Expect: 100-continue.
  const headers = withoutHeader(a.headers, 'transfer-encoding', 'expect');
  const hasBody = hasRequestBody(a.headers);
  // The body's iterator must not destroy the stream when the body ends: the response still
  // flows the other way.
  // (undici documents AsyncIterable bodies; its types list only Readable.)
  const body = hasBody ? stream.iterator({ destroyOnReturn: false }) as unknown as Readable : null;
  if (!hasBody) stream.resume();

  let abort: ((err?: Error) => void) | undefined;
  let resume: (() => void) | undefined;
  let answered = false;
  stream.on('drain', () => resume?.());
  stream.once('close', () => {
    if (!(answered && stream.writableFinished)) abort?.(new Error('request cancelled'));
  });

  const handler: Dispatcher.DispatchHandlers = {
    onConnect: (abortRequest) => {
      if (stream.destroyed) abortRequest(new Error('request cancelled'));
      abort = abortRequest;
    },
    onHeaders: (statusCode, rawHeaders, resumeOrigin, statusText) => {
      // 1xx informational answers are not relayed; the final answer follows.
      if (statusCode < 200) return true;
      answered = true;
      resume = resumeOrigin;
      a.answered(statusCode);
      stream.respond({ status: statusCode, statusMessage: statusText, headers: stripHopByHop(rawStrings(rawHeaders), false) });
      return true;
    },
    onData: (chunk) => stream.destroyed || stream.write(chunk),
    onComplete: () => {
      if (!stream.destroyed) stream.end();
    },
    onError: (err: NodeJS.ErrnoException) => {
      if (stream.destroyed) return;
      const why = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
      const code = classifyOriginError(err);
      if (code === 'connect_timeout') a.fail(code, `connection to origin ${url.host} timed out after ${a.ctx.origins.connectTimeoutS} s`);
      else if (code === 'bad_request') a.fail(code, `cannot send this request to the origin: ${why}`);
      else a.fail(code, answered ? `origin ${url.origin} broke off mid-response (${why})` : `origin ${url.origin} failed (${why})`);
    },
  };
  a.ctx.origins.dispatcher.dispatch({
    origin: url.origin, path: url.pathname + url.search, method: a.method as Dispatcher.HttpMethod, headers, body,
  }, handler);
}
