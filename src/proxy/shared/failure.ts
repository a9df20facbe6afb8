/**
 * Failure answers: precise status, a short plain-text body and an RFC 9209 Proxy-Status
 * header. Every failure west answers itself is built by failureAnswer() and written by one of
 * the three writers below, one per kind of downstream: a ServerResponse, a raw socket (upgrades,
 * CONNECT, parse errors) or a tunnel stream (a middle node answering for its own listener).
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Tuning } from '../../config/types.js';
import { FAILURES, isFailureCode, WestError, type FailureCode } from '../../errors.js';
import type { ResetInfo } from '../../tunnel/frame.js';
import { StreamResetError, type TunnelStream } from '../../tunnel/stream.js';

/** An sf-string for a structured-field header: printable ASCII, quotes and backslashes escaped. */
function sfString(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, '?').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function proxyStatusValue(err: WestError): string {
  return `${sfString(err.node)}; error=${FAILURES[err.code].proxyStatus}; details=${sfString(err.message.slice(0, 200))}`;
}

/** Turns whatever ended a stream into a WestError naming the node where it failed. */
export function toWestError(err: unknown, localNode: string): WestError {
  if (err instanceof WestError) return err;
  if (err instanceof StreamResetError) return fromReset(err.info, localNode);
  return new WestError('internal', localNode, err instanceof Error ? err.message : String(err));
}

function fromReset(info: ResetInfo, localNode: string): WestError {
  const code: FailureCode = isFailureCode(info.code) ? info.code : 'tunnel_lost';
  return new WestError(code, info.node || localNode, info.message);
}

/** The first member of a Proxy-Status value: its name and the `error` and `details` parameters. */
const PROXY_STATUS_MEMBER = /^\s*(?:"((?:[^"\\]|\\.)*)"|([^;,\s]+))((?:\s*;\s*[a-z0-9_.*-]+(?:=(?:"(?:[^"\\]|\\.)*"|[^;,]*))?)*)/i;

/** `;error=…` and `;details=…` of a Proxy-Status member (a token, or a quoted string). */
const PARAMS = {
  error: /;\s*error=("((?:[^"\\]|\\.)*)"|[^;,]*)/i,
  details: /;\s*details=("((?:[^"\\]|\\.)*)"|[^;,]*)/i,
} as const;

function param(params: string, name: keyof typeof PARAMS): string | undefined {
  const m = PARAMS[name].exec(params);
  if (!m) return undefined;
  return m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[1]?.trim();
}

/**
 * A failure further along the chain that came back as an answer rather than a RESET (a middle
 * node answering for its own listener, or another proxy): an error status with a Proxy-Status
 * that names an error. The entry node records it, so its log and metrics show where it failed.
 */
export function failureInAnswer(status: number, headers: string[]): WestError | undefined {
  if (status < 400) return undefined;
  let value: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]?.toLowerCase() === 'proxy-status') {
      value = headers[i + 1];
      break;
    }
  }
  const m = value === undefined ? null : PROXY_STATUS_MEMBER.exec(value);
  if (!m) return undefined;
  const params = m[3] ?? '';
  const type = param(params, 'error');
  if (!type) return undefined;
  // The name becomes a metrics label: only what a west node name can look like is kept.
  const named = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2] ?? '';
  const node = /^[\w.:~/-]{1,64}$/.test(named) ? named : 'unknown';
  const codes = (Object.keys(FAILURES) as FailureCode[]).filter((c) => FAILURES[c].proxyStatus === type);
  const code = codes.find((c) => FAILURES[c].status === status) ?? codes[0] ?? 'origin_error';
  return new WestError(code, node, param(params, 'details') ?? FAILURES[code].summary);
}

/** The answer to a failed request: status, headers (flat, as on the wire) and a plain-text body. */
export interface FailureAnswer {
  status: number;
  headers: string[];
  body: string;
}

/** How a node words its failure answers (west.retryAfter, west.errorDetail). */
export type AnswerStyle = Pick<Tuning, 'retryAfterS' | 'errorDetail'>;

export function failureAnswer(err: WestError, style: AnswerStyle): FailureAnswer {
  const minimal = style.errorDetail === 'minimal';
  // Minimal: a mapping that refuses this client is indistinguishable from none at all.
  const code: FailureCode = minimal && err.code === 'client_denied' ? 'no_mapping' : err.code;
  const status = FAILURES[code].status;
  const body = minimal
    ? `${status} ${STATUS_CODES[status] ?? ''}\n`
    : `${status} ${STATUS_CODES[status] ?? ''}: west node ${err.node}: ${err.message}\n`;
  const headers = [
    'Content-Type', 'text/plain; charset=utf-8',
    'Content-Length', String(Buffer.byteLength(body)),
    'Proxy-Status', minimal ? `west; error=${FAILURES[code].proxyStatus}` : proxyStatusValue(err),
    'Cache-Control', 'no-store',
  ];
  if (status === 503) headers.push('Retry-After', String(style.retryAfterS));
  return { status, headers, body };
}

/** An HTTP/1.1 response head written straight to a socket (there is no ServerResponse for upgrades). */
export function rawResponseHead(status: number, statusMessage: string, headers: string[]): string {
  const lines = [`HTTP/1.1 ${status} ${statusMessage || STATUS_CODES[status] || ''}`];
  for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/** Answers a request with a failure; a response already under way is cut off instead. */
export function sendFailure(res: ServerResponse, err: WestError, style: AnswerStyle): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const answer = failureAnswer(err, style);
  res.writeHead(answer.status, answer.headers);
  res.end(res.req.method === 'HEAD' ? undefined : answer.body);
}

/** How long a refused connection is read (and what arrives dropped) before it is cut. */
const LINGER_MS = 1000;

/**
 * Answers on a raw socket (an upgrade, CONNECT, a head Node could not parse) and closes it;
 * returns the status.
 * A lingering close (RFC 9112 §9.6): what the client still sends is read and dropped, so it
 * gets the answer rather than a reset, and after LINGER_MS the connection is cut whatever the
 * client does.
 */
export function sendRawFailure(socket: Duplex, err: WestError, style: AnswerStyle): number {
  const answer = failureAnswer(err, style);
  if (socket.destroyed) return answer.status;
  socket.resume();
  socket.end(rawResponseHead(answer.status, '', [...answer.headers, 'Connection', 'close']) + answer.body);
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
  return answer.status;
}

/** Answers on a tunnel stream the peer opened, as the listener it was meant for would have; returns the status. */
export function streamFailure(stream: TunnelStream, method: string, err: WestError, style: AnswerStyle): number {
  const answer = failureAnswer(err, style);
  if (stream.destroyed) return answer.status;
  stream.resume();
  stream.respond({ status: answer.status, statusMessage: STATUS_CODES[answer.status] ?? '', headers: answer.headers });
  stream.end(method === 'HEAD' ? undefined : answer.body);
  return answer.status;
}
