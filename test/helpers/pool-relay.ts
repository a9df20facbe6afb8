/**
 * A TCP relay in front of a tunnel server that keeps each connection it carries apart, so a
 * test can cut one of them (one member of a pool) and leave the others, and read what a client
 * sent on its upgrade (as anyone on the path could: the pool header, in the clear on ws://).
 */
import net from 'node:net';

export interface RelayedConnection {
  /** The relay's own port toward the server: the remote port the server sees for this client. */
  readonly upstreamPort: number;
  /** The first bytes the client sent (its upgrade request's head). */
  readonly head: () => string;
  readonly closed: () => boolean;
  /** Destroys both sockets, as a lost TCP connection. */
  cut(): void;
}

export class PoolRelay {
  readonly connections: RelayedConnection[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly target: number) {
    this.server = net.createServer((client) => this.onConnection(client));
  }

  /** Listens on a free port of 127.0.0.1, relaying to `target` on 127.0.0.1. */
  static async listen(target: number): Promise<PoolRelay> {
    const relay = new PoolRelay(target);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The connections still carried. */
  live(): RelayedConnection[] {
    return this.connections.filter((c) => !c.closed());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: net.Socket): void {
    const upstream = net.connect(this.target, '127.0.0.1');
    let head = '';
    let closed = false;
    let upstreamPort = 0;
    const cut = (): void => {
      closed = true;
      client.destroy();
      upstream.destroy();
    };
    upstream.once('connect', () => { upstreamPort = upstream.localPort ?? 0; });
    client.on('data', (chunk: Buffer) => { if (head.length < 4096) head += chunk.toString('latin1'); });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', cut);
      s.on('close', () => { this.sockets.delete(s); cut(); });
    }
    client.pipe(upstream);
    upstream.pipe(client);
    this.connections.push({ get upstreamPort() { return upstreamPort; }, head: () => head, closed: () => closed, cut });
  }
}
