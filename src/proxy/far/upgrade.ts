/**
 * Protocol upgrades (WebSocket and the like) at the far end: after the origin's 101 the
 * stream is a plain byte pipe between the origin's socket and, at the near end, the client's.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { stripHopByHop } from '../shared/passes.js';
import { splice } from '../shared/splice.js';
import { classifyOriginError, type Attempt } from './attempt.js';

/**
 * Performs an upgrade request at the far end with Node's client: after the origin's 101 the
 * stream and the origin's socket are spliced; any other answer is relayed as a response.
 */
export function performUpgrade(a: Attempt, protocol: string): void {
  const { stream, url, ctx } = a;
  const tls = url.protocol === 'https:';
  let req: http.ClientRequest;
  try {
    req = (tls ? https : http).request(url, {
      method: a.method,
      headers: [...a.headers, 'Connection', 'Upgrade', 'Upgrade', protocol],
      setHost: false,
      agent: tls ? ctx.origins.httpsAgent : ctx.origins.httpAgent,
    });
  } catch (err) {
    a.fail('bad_request', `cannot send this request to the origin: ${err instanceof Error ? err.message : String(err)}`);
    return;
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
  // The origin declined to switch: relay its answer like any other.
  req.on('response', (res) => {
    answered = true;
    a.answered(res.statusCode ?? 502);
    // Nothing of the request side goes to the origin now; read it to its END so the stream
    // finishes both ways and leaves the tunnel (a declined upgrade must not hold a stream).
    stream.resume();
    stream.respond({ status: res.statusCode ?? 502, statusMessage: res.statusMessage ?? '', headers: stripHopByHop(res.rawHeaders, false) });
    res.pipe(stream);
    res.on('close', () => {
      if (!res.complete && !stream.destroyed) a.fail('origin_reset', `origin ${url.origin} closed the connection mid-response`);
    });
  });
  req.on('upgrade', (res, socket, early) => {
    answered = true;
    a.answered(101);
    // A 101 keeps its Connection/Upgrade headers: the client needs them to switch too.
    stream.respond({ status: 101, statusMessage: res.statusMessage ?? '', headers: res.rawHeaders });
    splice(socket, stream, early);
  });
  // The requester gave up (client hung up, or the tunnel fell): stop the origin request too.
  stream.on('close', () => {
    if (!req.destroyed && !(answered && stream.writableFinished)) req.destroy();
  });
  req.end();
}
