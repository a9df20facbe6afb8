/**
 * The checks every request passes at the near end, in order (framing 400/501, 404, 403, 508,
 * 503), then the stream to the far end. One request in, one discriminated result out.
 */
import type { ListenerConfig, Tuning } from '../../config/types.js';
import { WestError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { AddressAllowlist } from '../../net/allow.js';
import type { TunnelSession } from '../../tunnel/session.js';
import type { TunnelStream } from '../../tunnel/stream.js';
import { toWestError } from '../shared/failure.js';
import { forwardRequestHeaders, framesBody, isTrustedProxy, scanRequestHead, westViasOf, type RequestHeadFacts } from '../shared/passes.js';
import { rawOutgoing, rawPath, targetParts, unsafePath, type PathMap, type PathMatch } from '../shared/pathmap.js';
import type { Exchange } from './exchange.js';

/**
 * Finds (or dials, or waits for) the tunnel a listener's requests travel through: a session,
 * or a route of the mesh that opens its streams on one; at once when it is connected, else a
 * promise.
 */
type Opener = Pick<TunnelSession, 'peerName' | 'openStream'>;
export type SessionResolver = (listener: ListenerConfig) => Opener | WestError | Promise<Opener | WestError>;

/** What routing needs of the listener a request arrived at. */
export interface RouteTable {
  readonly config: ListenerConfig;
  readonly nodeName: string;
  readonly tuning: Tuning;
  readonly log: Logger;
  readonly paths: PathMap;
  readonly allowlists: ReadonlyMap<string, AddressAllowlist>;
  /** This listener's Via received-by pseudonym. */
  readonly via: string;
  readonly draining: boolean;
  readonly resolveSession: SessionResolver;
}

export type RouteResult =
  | { kind: 'routed'; match: PathMatch; stream: TunnelStream }
  | { kind: 'failed'; error: WestError }
  /** The client went away while the request waited for its tunnel: nothing to answer. */
  | { kind: 'abandoned' };

/**
 * Request framing west does not carry (RFC 9112 §6.1, §6.3): a Transfer-Encoding whose last
 * coding is not chunked (400: the body's end cannot be known), codings other than chunked
 * (501: re-framing would drop them), and an upgrade request with a body (501: the body and
 * the bytes after a 101 share one direction of the stream).
 */
export function framingProblem(
  rawHeaders: string[], upgrade: boolean, facts: RequestHeadFacts = scanRequestHead(rawHeaders),
): { code: 'bad_request' | 'unsupported'; message: string } | undefined {
  const te = facts.transferEncoding;
  if (te.length > 0) {
    const codings = te.join(',').split(',').map((c) => c.trim().toLowerCase()).filter(Boolean);
    if (codings[codings.length - 1] !== 'chunked') {
      return { code: 'bad_request', message: `Transfer-Encoding ${JSON.stringify(te.join(', '))} does not end in chunked` };
    }
    if (codings.length > 1) {
      return { code: 'unsupported', message: `transfer codings other than chunked are not carried (${JSON.stringify(te.join(', '))})` };
    }
  }
  if (upgrade && framesBody(te[0], facts.contentLength)) {
    return { code: 'unsupported', message: 'an upgrade request with a body is not carried' };
  }
  return undefined;
}

function failed(error: WestError): RouteResult {
  return { kind: 'failed', error };
}

/**
 * Routes one exchange: every check, then a stream opened to the far end. Settled at once (no
 * promise, no turn of the microtask queue per request) when the tunnel is connected.
 */
export function route(table: RouteTable, ex: Exchange): RouteResult | Promise<RouteResult> {
  const { nodeName, tuning, config } = table;
  const req = ex.request;
  if (table.draining) return failed(new WestError('draining', nodeName, 'this node is shutting down'));
  // Framing is judged before anything leaves this node: a request refused here must never
  // reach an origin (the parser's own verdict on the body can come after the head).
  const framing = framingProblem(req.rawHeaders, ex.upgrade !== undefined, ex.head);
  if (framing) return failed(new WestError(framing.code, nodeName, framing.message));

  const target = targetParts(req.url);
  if (!target) return failed(new WestError('bad_request', nodeName, `request target ${JSON.stringify(req.url)} is not a valid path`));
  // Judged on the target as sent, before URL parsing resolves some of it and an origin the rest.
  const unsafe = unsafePath(req.url);
  if (unsafe) return failed(new WestError('bad_request', nodeName, `request path ${JSON.stringify(rawPath(req.url))} has ${unsafe}, which west does not forward`));
  const match = table.paths.match(target.pathname, target.search);
  if (!match) return failed(new WestError('no_mapping', nodeName, `no mapping for ${target.pathname} on listener ${config.key}`));
  ex.mapping = match.mapping.path;
  const outgoing = rawOutgoing(match.mapping, req.url);
  if (outgoing === undefined) {
    return failed(new WestError('bad_request', nodeName, `request path ${JSON.stringify(rawPath(req.url))} routes differently as sent and as normalised (${target.pathname})`));
  }

  if (!table.allowlists.get(match.mapping.path)?.allows(req.remoteAddress)) {
    return failed(new WestError('client_denied', nodeName, `client ${req.remoteAddress} is not allowed by "ca" of ${match.mapping.path}`));
  }

  const vias = westViasOf(ex.head.via);
  if (vias.includes(table.via)) {
    return failed(new WestError('loop_detected', nodeName, `request already passed listener ${table.via} (via ${vias.join(', ')})`));
  }
  if (vias.length >= tuning.maxHops) {
    return failed(new WestError('hop_limit', nodeName, `request passed ${vias.length} west listeners; the limit is ${tuning.maxHops}`));
  }

  const found = table.resolveSession(config);
  if (found instanceof Promise) return found.then((session) => openRouted(table, ex, session, match, outgoing, vias.length));
  return openRouted(table, ex, found, match, outgoing, vias.length);
}

/** The last step of route(): the headers passes, then the stream. */
function openRouted(table: RouteTable, ex: Exchange, session: Opener | WestError, match: PathMatch, outgoing: string, vias: number): RouteResult {
  const { nodeName, tuning, config } = table;
  const req = ex.request;
  if (session instanceof WestError) return failed(session);
  if (ex.gone()) return { kind: 'abandoned' };

  const headers = forwardRequestHeaders(req.rawHeaders, {
    clientAddress: req.remoteAddress,
    proto: config.tlsMaterial ? 'https' : 'http',
    host: req.host,
    via: table.via,
    requestId: ex.id,
    trusted: isTrustedProxy(tuning.trustedProxies, req.remoteAddress),
  });
  try {
    const stream = session.openStream({
      kind: 'http', method: req.method, url: outgoing, headers,
      hops: vias + 1, to: '', id: ex.id, ...(ex.upgrade ? { upgrade: ex.upgrade } : {}),
    });
    // Checked first: the fields would be built for nothing on every request at any other level.
    if (table.log.enabled('debug')) table.log.debug('proxy.forward', { id: ex.id, to: outgoing, peer: session.peerName, stream: stream.id });
    return { kind: 'routed', match, stream };
  } catch (err) {
    return failed(toWestError(err, nodeName));
  }
}
