/**
 * The far end of a TCP stream (kind `tcp`, doc/tcp.md): the address is checked against
 * `west.egress` (a `tcp://host:port` entry, never anything looser), connected to, confirmed
 * with a RESPONSE `200 Connected`, then joined to the stream: END is FIN and RESET is RST, each
 * way. A refusal (egress, bad address, connection refused, timeout) is a RESET before any
 * RESPONSE, so the near end can tell "connected" from "refused".
 */
import net from 'node:net';
import { formatTcpTarget, parseTcpTarget } from '../../config/endpoint.js';
import type { FailureCode } from '../../errors.js';
import type { TunnelStream } from '../../tunnel/stream.js';
import { spliceTcp } from '../shared/splice.js';
import { classifyOriginError, type OutgoingContext, type StreamDecision } from './attempt.js';

/** The status line of the RESPONSE that says the far end is connected. */
export const TCP_CONNECTED = { status: 200, statusMessage: 'Connected', headers: [] };

/** Connects the TCP stream `peer` opened (its origin, for egress). Never throws; failures become RESET frames. */
export function performTcp(stream: TunnelStream, peer: string, ctx: OutgoingContext): void {
  const head = stream.head;
  if (!head) return;
  stream.on('error', () => { /* the reset told the peer; the socket side is handled by spliceTcp */ });
  const started = process.hrtime.bigint();
  let failure: FailureCode | undefined;
  let connected = false;
  const fail = (code: FailureCode, message: string): void => {
    failure ??= code;
    ctx.log.debug('outgoing.failed', { id: head.id, url: head.url, code, error: message, at: ctx.nodeName });
    stream.reset(code, message);
  };
  stream.once('close', () => {
    if (!ctx.log.enabled('info')) return;
    const cut = !(stream.readableEnded && stream.writableFinished);
    ctx.log.info('perform', {
      id: head.id, peer, kind: 'tcp', url: head.url, status: connected ? 200 : undefined,
      error: failure ?? (cut ? (connected ? 'reset' : 'cancel') : undefined),
      ms: Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10, in: stream.bytesIn, out: stream.bytesOut,
    });
  });

  const target = head.url.toLowerCase().startsWith('tcp://') ? parseTcpTarget(head.url.slice(6)) : undefined;
  if (!target) {
    fail('bad_request', `TCP destination ${JSON.stringify(head.url.slice(0, 200))} is not tcp://host:port (port 1-65535)`);
    return;
  }
  if (!ctx.egress?.allowsTcp(peer, target.host, target.port)) {
    ctx.log.warn('outgoing.egress_denied', { id: head.id, peer, url: head.url });
    fail('egress_denied', `node ${ctx.nodeName} does not let ${peer} open TCP connections to ${head.url} (west.egress needs "${head.url}")`);
    return;
  }
  // The auth hook (west.authHook), after egress: it can narrow what egress allows, never widen it.
  const decision = ctx.authorize?.({ from: peer, kind: 'tcp', target: formatTcpTarget(target) });
  const decided = (d: StreamDecision): void => {
    if (stream.destroyed) return;
    if (d.allow) connect();
    else fail(d.unavailable ? 'hook_unavailable' : 'hook_denied', `${d.reason} (west.authHook of ${ctx.nodeName})`);
  };
  const connect = (): void => {
    const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const connectTimeoutMs = ctx.origins.connectTimeoutMs;
    const timer = setTimeout(() => {
      socket.destroy();
      fail('connect_timeout', `no TCP connection to ${head.url} within ${connectTimeoutMs / 1000} s`);
    }, connectTimeoutMs);
    const beforeConnect = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      fail(classifyOriginError(err), `TCP connection to ${head.url} failed: ${err.code ?? err.message}`);
    };
    socket.once('error', beforeConnect);
    // The opener gave up (or the tunnel went) while we were connecting.
    stream.once('close', () => {
      clearTimeout(timer);
      if (!connected) socket.destroy();
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', beforeConnect);
      if (stream.destroyed) {
        socket.destroy();
        return;
      }
      connected = true;
      socket.setNoDelay(true);
      stream.respond(TCP_CONNECTED);
      spliceTcp(socket, stream, 'origin_reset', `origin ${head.url}`);
    });
  };
  if (decision === undefined) connect();
  else if (decision instanceof Promise) void decision.then(decided);
  else decided(decision);
}
