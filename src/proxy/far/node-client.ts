/**
 * Origin requests through Node's own client, for what undici does not do: protocol upgrades
 * and `Expect: 100-continue`. Wired to their attempt: connect timeout, errors as failure
 * codes, a final answer relayed as the response, and a cancel either way.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { stripHopByHop } from '../shared/passes.js';
import { classifyOriginError, type Attempt } from './attempt.js';

export interface OriginRequest {
  req: http.ClientRequest;
  /** Marks the answer as begun (a 101, say): later errors are mid-response, a cancel is final. */
  answered(): void;
}

/**
 * Sends `a` with `headers` through Node's client. A final (non-101) answer is relayed like any
 * other; `takesBody()` says whether the request body is being sent (else what the client still
 * sends is read and dropped once the origin has answered). Undefined when Node refuses the request.
 */
export function originRequest(a: Attempt, headers: string[], takesBody: () => boolean): OriginRequest | undefined {
  const { stream, url, ctx } = a;
  const tls = url.protocol === 'https:';
  let req: http.ClientRequest;
  try {
    req = (tls ? https : http).request(url, {
      path: a.target, method: a.method, headers, setHost: false, agent: tls ? ctx.origins.httpsAgent : ctx.origins.httpAgent,
    });
  } catch (err) {
    a.fail('bad_request', `cannot send this request to the origin: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  let answered = false;
  req.on('socket', (socket: Socket) => {
    if (!socket.connecting) return;
    const connectTimer = setTimeout(() => {
      a.fail('connect_timeout', `connection to origin ${url.host} timed out after ${ctx.origins.connectTimeoutS} s`);
    }, ctx.origins.connectTimeoutMs);
    socket.once('connect', () => clearTimeout(connectTimer));
    socket.once('close', () => clearTimeout(connectTimer));
  });
  req.on('error', (err: NodeJS.ErrnoException) => {
    if (stream.destroyed) return;
    const why = err.code ? `${err.code}: ${err.message}` : err.message;
    a.fail(classifyOriginError(err), answered ? `origin ${url.origin} broke off mid-response (${why})` : `origin ${url.origin} failed (${why})`);
  });
  req.on('response', (res) => {
    answered = true;
    a.answered(res.statusCode ?? 502);
    // What the origin will not read must not hold the stream: read the request side to its
    // END so the stream finishes both ways (a declined upgrade, an early 413).
    if (!takesBody()) stream.resume();
    stream.respond({ status: res.statusCode ?? 502, statusMessage: res.statusMessage ?? '', headers: stripHopByHop(res.rawHeaders, false) });
    // Registered before pipe()'s own 'end' listener, so the trailers are set when it ends the stream.
    res.once('end', () => stream.setTrailers(res.rawTrailers));
    res.pipe(stream);
    res.on('close', () => {
      if (!res.complete && !stream.destroyed) a.fail('origin_reset', `origin ${url.origin} closed the connection mid-response`);
    });
  });
  // The requester gave up (client hung up, or the tunnel fell): stop the origin request too.
  stream.on('close', () => {
    if (!req.destroyed && !(answered && stream.writableFinished)) req.destroy();
  });
  return { req, answered: () => { answered = true; } };
}
