/**
 * The one error catalogue: every failure a request can meet, with the HTTP status the
 * client sees and the RFC 9209 Proxy-Status error type that explains it.
 */

export interface FailureKind {
  status: number;
  /** RFC 9209 §2.3 error type. */
  proxyStatus: string;
  /** What the operator reads when no more specific detail is known. */
  summary: string;
}

export const FAILURES = {
  no_mapping: { status: 404, proxyStatus: 'destination_not_found', summary: 'no mapping for this path' },
  egress_denied: { status: 403, proxyStatus: 'http_request_denied', summary: 'the far end does not allow this destination' },
  client_denied: { status: 403, proxyStatus: 'http_request_denied', summary: 'client address is not allowed by "ca"' },
  bad_request: { status: 400, proxyStatus: 'http_request_error', summary: 'malformed request' },
  head_too_large: { status: 431, proxyStatus: 'http_request_error', summary: 'request head is too large' },
  head_timeout: { status: 408, proxyStatus: 'http_request_error', summary: 'request head took too long' },
  body_too_large: { status: 413, proxyStatus: 'http_request_error', summary: 'request body is larger than the way it must travel carries' },
  response_too_large: { status: 502, proxyStatus: 'http_response_body_size', summary: 'response body is larger than the way it must travel carries' },
  unsupported: { status: 501, proxyStatus: 'http_request_error', summary: 'west does not carry this kind of request' },
  tunnel_down: { status: 503, proxyStatus: 'destination_unavailable', summary: 'tunnel is not connected' },
  peer_not_connected: { status: 503, proxyStatus: 'destination_unavailable', summary: 'peer is not connected' },
  draining: { status: 503, proxyStatus: 'destination_unavailable', summary: 'node is shutting down' },
  tunnel_lost: { status: 502, proxyStatus: 'connection_terminated', summary: 'tunnel closed while the request was in flight' },
  origin_refused: { status: 502, proxyStatus: 'connection_refused', summary: 'origin refused the connection' },
  origin_reset: { status: 502, proxyStatus: 'connection_terminated', summary: 'origin closed the connection' },
  origin_dns: { status: 502, proxyStatus: 'dns_error', summary: 'origin host name did not resolve' },
  origin_unreachable: { status: 502, proxyStatus: 'destination_unavailable', summary: 'origin is unreachable' },
  origin_error: { status: 502, proxyStatus: 'http_response_incomplete', summary: 'origin sent an invalid response' },
  origin_timeout: { status: 504, proxyStatus: 'http_response_timeout', summary: 'origin did not answer in time' },
  connect_timeout: { status: 504, proxyStatus: 'connection_timeout', summary: 'connection to origin timed out' },
  too_many_streams: { status: 503, proxyStatus: 'connection_limit_reached', summary: 'too many requests in flight on this tunnel' },
  idle_timeout: { status: 504, proxyStatus: 'connection_read_timeout', summary: 'no bytes moved for too long' },
  transit_denied: { status: 403, proxyStatus: 'http_request_denied', summary: 'a node on the way does not relay this stream (west.transit, west.relays)' },
  no_route: { status: 503, proxyStatus: 'destination_unavailable', summary: 'no route to the destination node' },
  hop_limit: { status: 508, proxyStatus: 'proxy_loop_detected', summary: 'hop limit exceeded' },
  loop_detected: { status: 508, proxyStatus: 'proxy_loop_detected', summary: 'request looped back to this listener' },
  hook_denied: { status: 403, proxyStatus: 'http_request_denied', summary: 'the auth hook (west.authHook) denied this' },
  hook_unavailable: { status: 503, proxyStatus: 'proxy_internal_error', summary: 'the auth hook (west.authHook) could not be asked; refused (fail closed)' },
  key_refused: { status: 403, proxyStatus: 'http_request_denied', summary: 'the session key is unknown, used or expired, or bound to another endpoint' },
  too_many_waiting: { status: 503, proxyStatus: 'connection_limit_reached', summary: 'too many rendezvous parties are waiting (west.access.maxWaiting)' },
  internal: { status: 500, proxyStatus: 'proxy_internal_error', summary: 'internal error' },
} as const satisfies Record<string, FailureKind>;

export type FailureCode = keyof typeof FAILURES;

/** What a RESET frame this node sends may carry: a failure, or 'cancel' when the opener gave up. */
export type ResetCode = FailureCode | 'cancel';

export function isFailureCode(code: string): code is FailureCode {
  return Object.hasOwn(FAILURES, code);
}

/** A request failure: which kind, where it happened (node name) and why, for the operator. */
export class WestError extends Error {
  readonly code: FailureCode;
  readonly node: string;

  constructor(code: FailureCode, node: string, detail?: string) {
    super(detail ?? FAILURES[code].summary);
    this.name = 'WestError';
    this.code = code;
    this.node = node;
  }

  get status(): number {
    return FAILURES[this.code].status;
  }
}

/** One problem found in a config: its JSON path (e.g. `proxy["http://:9911"]`) and what was expected. */
export interface ConfigIssue {
  path: string;
  message: string;
  /** Config file the issue was found in, when known. */
  file?: string;
}

/** A config that cannot run; carries every issue found, not just the first. */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[], file?: string) {
    const where = file ? `${file}: ` : '';
    super(`${where}invalid config (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` +
      issues.map((i) => `  ${i.path}: ${i.message}`).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** A config file that cannot be read at all: one line, not a list of problems. */
export class ConfigReadError extends ConfigError {
  constructor(file: string, why: string) {
    super([{ path: file, message: `cannot read the config file: ${why}`, file }], file);
    this.name = 'ConfigReadError';
    this.message = `cannot read config file ${file}: ${why}`;
  }
}

/** Reasons a tunnel closes, as WebSocket close codes in the private range (4000-4999). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  badHello: 4400,
  nameReplaced: 4409,
  heartbeatTimeout: 4408,
  /** A rendezvous party that no second party joined within west.access.pairWait. */
  unpaired: 4410,
} as const;
