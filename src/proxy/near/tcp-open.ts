/**
 * Opening a TCP stream (kind `tcp`, doc/tcp.md) toward the node at the far end of a tunnel or
 * route: the near-end half that the `tcp://` listener, `west pipe` and anything else that
 * wants a raw byte pipe to `host:port` at a node use.
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { formatTcpTarget, parseTcpTarget } from '../../config/endpoint.js';
import type { Endpoint } from '../../config/types.js';
import { isFailureCode, WestError } from '../../errors.js';
import type { TunnelSession } from '../../tunnel/session.js';
import { StreamResetError, type TunnelStream } from '../../tunnel/stream.js';

/** What opens the stream: a tunnel session, or a mesh route that opens it on one (routing.ts). */
export type TcpOpener = Pick<TunnelSession, 'peerName' | 'openStream'>;

export interface TcpOpenOptions {
  /** This node's name, for the errors it makes itself. */
  nodeName: string;
  /** The id carried to every hop for logs (default: a new UUID). */
  id?: string;
  /** Give up (reset `cancel`, reject `connect_timeout`) when the far end has not answered by then. */
  timeoutMs: number;
}

/**
 * Opens a TCP stream to `target` (`host:port` at the far end) and resolves once the far end has
 * connected (its RESPONSE 200): the stream is then a Duplex whose writes reach the far socket
 * and whose reads are what it sent; `end()` is a FIN (the other direction stays open), and
 * `reset()`/`destroy()` a RST. Bytes written before it resolves are not lost, they wait in the
 * far end's window. Rejects with a WestError naming the node and reason when refused (egress,
 * connection refused, no route, a peer without the `tcp` feature) or out of time.
 */
export function openTcpStream(opener: TcpOpener, target: Endpoint | string, opts: TcpOpenOptions): Promise<TunnelStream> {
  const parsed = typeof target === 'string' ? parseTcpTarget(target) : target;
  if (!parsed || parsed.port < 1 || parsed.port > 65535) {
    return Promise.reject(new WestError('bad_request', opts.nodeName, `TCP destination ${JSON.stringify(typeof target === 'string' ? target : formatTcpTarget(target))} is not host:port (port 1-65535)`));
  }
  let stream: TunnelStream;
  try {
    stream = opener.openStream({
      kind: 'tcp', method: 'CONNECT', url: `tcp://${formatTcpTarget(parsed)}`, headers: [], hops: 1, to: '', id: opts.id ?? randomUUID(),
    });
  } catch (err) {
    return Promise.reject(err instanceof WestError ? err : new WestError('internal', opts.nodeName, String(err)));
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.reset('cancel', `no answer from ${opener.peerName} within ${opts.timeoutMs / 1000} s`);
      reject(new WestError('connect_timeout', opts.nodeName, `the far end did not connect to ${formatTcpTarget(parsed)} within ${opts.timeoutMs / 1000} s`));
    }, opts.timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      stream.off('response', onResponse);
      reject(refusal(err, opts.nodeName));
    };
    const onResponse = (): void => {
      clearTimeout(timer);
      stream.off('error', onError);
      resolve(stream);
    };
    // A RESET can come in the same read of the tunnel as the RESPONSE: its 'error' is emitted
    // before the caller's `await` returns, when only this listener is there to take it.
    // Callers check lostBeforeUse() when they take the stream.
    stream.on('error', () => { /* the caller sees stream.destroyed / stream.errored */ });
    stream.once('error', onError);
    stream.once('response', onResponse);
  });
}

/**
 * Why a stream openTcpStream resolved with is gone already (a RESET that came with its RESPONSE,
 * or a lost tunnel, before the caller's turn): a WestError, or undefined while it is open.
 * Listeners attached now would never hear its 'error' or 'close'.
 */
export function lostBeforeUse(stream: Duplex, nodeName: string): WestError | undefined {
  if (!stream.destroyed) return undefined;
  return refusal(stream.errored ?? new Error('the stream closed before it was used'), nodeName);
}

/** A RESET before the RESPONSE as the WestError it carries (an unknown code reads as tunnel_lost). */
function refusal(err: Error, nodeName: string): WestError {
  if (err instanceof StreamResetError) {
    const { code, node, message } = err.info;
    return new WestError(isFailureCode(code) ? code : 'tunnel_lost', node, message);
  }
  return new WestError('tunnel_lost', nodeName, err.message);
}
