/**
 * The lean HTTP/1.1 front of a plain-http listener: it takes every connection Node's server
 * accepts before Node's HTTP machinery does, serves the common requests itself
 * (connection.ts), and gives a connection to Node's server (its own 'connection' listener,
 * taken aside here) at the first head it will not serve, unread bytes put back. From then on
 * Node's server answers it exactly as before: chunked bodies, upgrades, Expect, CONNECT,
 * malformed or oversized heads, a missing Host.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import { WestError } from '../../../errors.js';
import type { Logger } from '../../../log.js';
import { FrontConnection, type ConnectionOwner, type FrontHost } from './connection.js';

/** How often the head timeouts and idle keep-alive connections are checked (as Node's connectionsCheckingInterval). */
export function checkingInterval(headerTimeoutMs: number): number {
  return Math.max(250, Math.min(5000, headerTimeoutMs / 4));
}

/** What the front counts: requests it served, connections it handed to Node's server. */
export interface FrontCounts {
  served: number;
  handoffs: number;
}

export class LeanFront implements ConnectionOwner {
  readonly counts: FrontCounts = { served: 0, handoffs: 0 };
  private readonly connections = new Set<FrontConnection>();
  private readonly nodeConnectionListener: (socket: Socket) => void;
  private timer: NodeJS.Timeout | undefined;
  /** Handed-off connections on which Node's server has read a whole head since. */
  private readonly headsRead = new WeakSet<Socket>();

  /** Takes `server`'s own 'connection' listener aside: call it before adding any other. */
  constructor(private readonly server: http.Server, private readonly host: FrontHost, private readonly log: Logger, private readonly listenerKey: () => string) {
    const [nodeListener] = server.listeners('connection') as ((socket: Socket) => void)[];
    if (!nodeListener) throw new Error("an http.Server without its 'connection' listener");
    server.removeListener('connection', nodeListener);
    this.nodeConnectionListener = nodeListener;
    // Every event Node's server emits for a whole head ('checkExpectation' is left alone: a
    // listener there would stop Node answering 417 itself; such a head is read at once anyway).
    for (const event of ['request', 'checkContinue', 'upgrade', 'connect']) {
      server.on(event, (req: http.IncomingMessage) => { this.headsRead.add(req.socket); });
    }
  }

  /** A new (admitted) connection: read by the lean front. */
  accept(socket: Socket): void {
    this.connections.add(new FrontConnection(this.host, this, socket));
    // At least every second: an idle keep-alive connection closes close to the `timeout=5` its answers announce.
    this.timer ??= setInterval(() => this.tick(), Math.min(1000, checkingInterval(this.host.tuning.headerTimeoutMs))).unref();
  }

  /** Closes the connections that serve nothing now (stopAccepting: Node's closeIdleConnections). */
  closeIdle(): void {
    for (const conn of this.connections) if (conn.idle) conn.socket.destroy();
  }

  /** Drops every connection, requests in flight included. */
  closeAll(): void {
    for (const conn of this.connections) conn.socket.destroy();
    this.stopTimer();
  }

  served(): void {
    this.counts.served++;
  }

  handOff(conn: FrontConnection, buffered: Buffer | undefined, reason: string, headSince: number): void {
    this.forget(conn);
    this.counts.handoffs++;
    const { socket } = conn;
    // Node's server starts its own head timer: a head begun here keeps the deadline it had
    // (a slow head must not get a second west.headerTimeout by being handed off).
    if (headSince > 0) this.keepHeadDeadline(socket, headSince + this.host.tuning.headerTimeoutMs - Date.now());
    if (this.log.enabled('debug')) this.log.debug('proxy.handoff', { listener: this.listenerKey(), client: conn.remoteAddress, reason });
    this.nodeConnectionListener.call(this.server, socket);
    if (buffered) socket.unshift(buffered);
    // Node's server reads a socket straight from its handle (bypassing the stream, and so the
    // bytes put back) unless the socket has a 'data' listener: this one keeps it on the stream.
    socket.on('data', keepOnStream);
    socket.resume();
  }

  /** Answers 408 and closes `socket` unless Node's server has read a whole head on it within `ms`. */
  private keepHeadDeadline(socket: Socket, ms: number): void {
    const timer = setTimeout(() => {
      if (socket.destroyed || this.headsRead.has(socket)) return;
      this.host.refuseRaw(socket, new WestError('head_timeout', this.host.nodeName, 'request head took too long'), 'ERR_HTTP_REQUEST_TIMEOUT');
    }, Math.max(0, ms));
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  forget(conn: FrontConnection): void {
    this.connections.delete(conn);
    if (this.connections.size === 0) this.stopTimer();
  }

  private tick(): void {
    const now = Date.now();
    for (const conn of this.connections) conn.tick(now);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function keepOnStream(): void {
  // See handOff: its presence is what matters.
}
