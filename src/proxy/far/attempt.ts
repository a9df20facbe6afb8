/**
 * What performing one request at the far end shares between its ways (plain.ts for ordinary
 * requests, upgrade.ts for protocol upgrades, a local listener's relay): the node's context,
 * the attempt, and how origin errors map to failure codes.
 */
import type { FailureCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { TunnelStream } from '../../tunnel/stream.js';
import type { EgressPolicy } from './egress.js';
import type { OriginPools } from './origins.js';

/** A listener of this node that can take an attempt straight from its far end (near/relay.ts). */
export interface LocalHandoff {
  relay(a: Attempt): Promise<void>;
}

export interface OutgoingContext {
  nodeName: string;
  /** Undefined: fetch whatever peers ask (open relay). */
  egress: EgressPolicy | undefined;
  responseTimeoutMs: number;
  log: Logger;
  origins: OriginPools;
  /**
   * This node's own plain-HTTP listener that a URL reaches over loopback, if any: a request
   * for it is handed to the listener directly instead of going out and back in through a
   * socket (see near/relay.ts).
   */
  localListener?: (url: URL) => LocalHandoff | undefined;
  /**
   * `west.authHook`'s say on a stream this node performs (asked after egress): a decision at
   * once when cached, else a promise. Absent = no hook.
   */
  authorize?: (q: StreamQuestion) => StreamDecision | Promise<StreamDecision>;
}

/** What the far end asks the auth hook about a stream it is to perform. */
export interface StreamQuestion {
  from: string;
  kind: 'http' | 'tcp';
  method?: string;
  /** The URL's path, without the query. */
  path?: string;
  /** host:port the stream reaches. */
  target: string;
}

export interface StreamDecision {
  allow: boolean;
  reason: string;
  /** The hook could not be asked (fail closed). */
  unavailable?: true;
}

/** One request on its way to the origin, as each way of performing it sees it. */
export interface Attempt {
  stream: TunnelStream;
  url: URL;
  /** Path and query as the near end sent them (not re-serialised by URL). */
  target: string;
  method: string;
  /** Checked request headers, Host set to the outgoing URL's. */
  headers: string[];
  /** The request has a body (chunked, or a Content-Length above 0). */
  hasBody: boolean;
  /** `headers` holds Transfer-Encoding or Expect (which undici must not be given). */
  framing: boolean;
  ctx: OutgoingContext;
  /** Resets the stream with a failure (the first failure is the one logged); `node` defaults to this one. */
  fail(code: FailureCode, message: string, node?: string): void;
  /** The origin answered: stops the response timer. */
  answered(status: number): void;
}

/** Maps an error from the origin connection (Node's or undici's) to a failure code. */
export function classifyOriginError(err: NodeJS.ErrnoException): FailureCode {
  const code = err.code ?? '';
  switch (code) {
    case 'ECONNREFUSED': return 'origin_refused';
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'origin_dns';
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EADDRNOTAVAIL': return 'origin_unreachable';
    case 'UND_ERR_CONNECT_TIMEOUT': return 'connect_timeout';
    case 'UND_ERR_INVALID_ARG': case 'UND_ERR_NOT_SUPPORTED': case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH': return 'bad_request';
    case 'UND_ERR_HEADERS_OVERFLOW': case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH': return 'origin_error';
    default: return code.startsWith('HPE_') ? 'origin_error' : 'origin_reset';
  }
}
