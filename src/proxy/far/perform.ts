/**
 * The far end of a stream: checks the request it carries (URL, egress, head) and performs it
 * against the outgoing URL, streaming the origin's answer back, status, headers and body as
 * the origin sent them. Ordinary requests go through undici's pools (plain.ts); upgrades
 * through Node's client (upgrade.ts); a URL that is this node's own listener to that
 * listener directly.
 */
import type { FailureCode } from '../../errors.js';
import type { TunnelStream } from '../../tunnel/stream.js';
import type { OpenHead } from '../../tunnel/frame.js';
import type { Attempt, OutgoingContext, StreamDecision } from './attempt.js';
import { outgoingHeaders, type OutgoingHeaders } from '../shared/passes.js';
import { rawPath, unsafePath } from '../shared/pathmap.js';
import { invalidRequestHead } from '../shared/validate.js';
import { performExpectingContinue } from './expect.js';
import { performPlain } from './plain.js';
import { performTcp } from './tcp.js';
import { performUpgrade } from './upgrade.js';

/**
 * Performs the request a peer opened on `stream` (src/mesh/arrive.ts has judged that it is
 * addressed to this node; `peer` is its origin). Never throws; failures become RESET frames.
 */
export function performRequest(stream: TunnelStream, peer: string, ctx: OutgoingContext): void {
  const head = stream.head;
  if (!head) return;
  if (head.kind === 'tcp') {
    performTcp(stream, peer, ctx);
    return;
  }
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

  const checked = checkOpen(head, peer, ctx);
  if ('code' in checked) {
    if (checked.code === 'egress_denied') ctx.log.warn('outgoing.egress_denied', { id: head.id, peer, url: head.url });
    fail(checked.code, checked.message);
    return;
  }
  const go = (): void => carryOut(stream, head, checked, ctx, fail, (s) => { status = s; });
  if (!ctx.authorize) { go(); return; }
  const decided = (d: StreamDecision): void => {
    if (stream.destroyed) return;
    if (d.allow) go();
    else fail(d.unavailable ? 'hook_unavailable' : 'hook_denied', `${d.reason} (west.authHook of ${ctx.nodeName})`);
  };
  // The path without the query (which may carry secrets and would make every request a new question).
  const answer = ctx.authorize({ from: peer, kind: 'http', method: head.method, path: checked.url.pathname, target: checked.url.host });
  if (answer instanceof Promise) void answer.then(decided);
  else decided(answer);
}

/** Sends a checked request on its way: to this node's own listener, as an upgrade, or plainly. */
function carryOut(
  stream: TunnelStream, head: OpenHead, checked: Checked, ctx: OutgoingContext,
  fail: (code: FailureCode, message: string, node?: string) => void, setStatus: (s: number) => void,
): void {
  const { url, headers } = checked;
  const { hasBody, expectsContinue, framing } = checked.facts;

  const responseTimer = setTimeout(() => {
    fail('origin_timeout', `origin ${url.origin} sent no response within ${ctx.responseTimeoutMs / 1000} s`);
  }, ctx.responseTimeoutMs);
  stream.once('close', () => clearTimeout(responseTimer));
  const attempt: Attempt = {
    stream, url, target: checked.target, method: head.method, headers, hasBody, framing, ctx, fail,
    answered: (s) => {
      clearTimeout(responseTimer);
      setStatus(s);
    },
  };
  const local = head.upgrade ? undefined : ctx.localListener?.(url);
  if (local) {
    local.relay(attempt).catch((err: unknown) => {
      ctx.log.error('proxy.internal_error', { error: err instanceof Error ? err.stack : String(err) });
      fail('internal', 'internal error relaying to this node\'s own listener');
    });
  } else if (head.upgrade) {
    performUpgrade(attempt, head.upgrade);
  } else if (expectsContinue) {
    performExpectingContinue(attempt);
  } else {
    performPlain(attempt);
  }
}

interface Checked {
  url: URL;
  /** Path and query as sent (see pathAsSent). */
  target: string;
  headers: string[];
  facts: OutgoingHeaders;
}

/**
 * What a far end checks of a peer's OPEN before anything is sent: an http(s) URL, a path the
 * listener would have let through, `west.egress`, the route, and a head HTTP allows. Gives the
 * URL and the headers to send (Host set from the URL), or why not.
 */
function checkOpen(head: OpenHead, peer: string, ctx: OutgoingContext): Checked | { code: FailureCode; message: string } {
  let url: URL;
  try {
    url = new URL(head.url);
  } catch {
    return { code: 'bad_request', message: `outgoing URL ${JSON.stringify(head.url)} is not a URL` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { code: 'bad_request', message: `outgoing URL ${url.href} is not http or https` };
  // The listener refuses these paths; a peer's OPEN is held to the same rule, judged on the URL
  // as sent, or `/x/..%2fsecret` would pass an egress prefix `/x` and reach `/secret`.
  const rest = pathAsSent(head.url, url);
  const unsafe = unsafePath(rest ?? head.url);
  if (unsafe) return { code: 'bad_request', message: `outgoing path ${JSON.stringify(rawPath(head.url))} has ${unsafe}, which west does not forward` };
  if (ctx.egress && !ctx.egress.allows(peer, url)) {
    return { code: 'egress_denied', message: `node ${ctx.nodeName} does not let ${peer} reach ${url.origin}${url.pathname} (west.egress)` };
  }
  // The far end decides Host: it is always the outgoing URL's, whatever the client sent.
  const facts = outgoingHeaders(head.headers, url.host);
  // A peer could send what no HTTP parser would have let through (CR/LF in a value, a method
  // with spaces): refuse it here rather than inject it into the origin request.
  const invalid = invalidRequestHead(head.method, facts.headers);
  if (invalid) return { code: 'bad_request', message: invalid };
  return { url, target: rest === undefined ? url.pathname + url.search : withoutFragment(rest), headers: facts.headers, facts };
}

/**
 * The path and query to send, as the near end wrote them: WHATWG URL parsing would re-encode
 * `{`, `"`, a backtick or `'` in the query, and drop an empty `?`, which the origin should see
 * as the client sent them. This is what follows the URL's origin in `href` when `href` starts
 * with it and it is a path (else undefined: the URL's own path and query are sent). For an
 * http(s) URL, `protocol//host` is its origin, without the cost of `url.origin`.
 */
function pathAsSent(href: string, url: URL): string | undefined {
  const origin = `${url.protocol}//${url.host}`;
  if (!href.startsWith(origin) || href.charCodeAt(origin.length) !== 47 /* / */) return undefined;
  return href.slice(origin.length);
}

function withoutFragment(rest: string): string {
  return rest.includes('#') ? rest.replace(/#.*$/, '') : rest;
}
