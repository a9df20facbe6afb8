/** Failure answers: precise status, a short plain-text body and an RFC 9209 Proxy-Status header. */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { FAILURES, isFailureCode, WestError, type FailureCode } from '../errors.js';
import type { ResetInfo } from '../tunnel/frame.js';
import { StreamResetError } from '../tunnel/stream.js';

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

/** The answer to a failed request: status, headers (flat, as on the wire) and a plain-text body. */
export interface FailureAnswer {
  status: number;
  headers: string[];
  body: string;
}

export function failureAnswer(err: WestError, retryAfterS: number): FailureAnswer {
  const status = err.status;
  const body = `${status} ${STATUS_CODES[status] ?? ''}: west node ${err.node}: ${err.message}\n`;
  const headers = [
    'Content-Type', 'text/plain; charset=utf-8',
    'Content-Length', String(Buffer.byteLength(body)),
    'Proxy-Status', proxyStatusValue(err),
    'Cache-Control', 'no-store',
  ];
  if (status === 503) headers.push('Retry-After', String(retryAfterS));
  return { status, headers, body };
}

/** Answers a request with a failure; does nothing when a response is already under way. */
export function sendFailure(res: ServerResponse, err: WestError, retryAfterS: number): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const answer = failureAnswer(err, retryAfterS);
  res.writeHead(answer.status, answer.headers);
  res.end(res.req.method === 'HEAD' ? undefined : answer.body);
}
