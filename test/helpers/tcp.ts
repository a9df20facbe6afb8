/**
 * TCP test peers for the `tcp://` listener tests: origins that behave as real TCP servers do
 * (read to EOF then answer, reset, echo), and a client that reports what it saw (bytes,
 * FIN or RST). Everything on 127.0.0.1, port 0, closed by `close()`.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import type { WestProcess } from './west.js';

/** What an origin does with each connection. */
export type OriginMode =
  /** Reads to EOF, then writes `reply:<bytes>:<sha256>` and closes (FIN). */
  | 'answer-after-eof'
  /** Echoes every byte; FIN after the client's FIN. */
  | 'echo'
  /** Writes a greeting and, once the client has sent something, resets the connection (RST). */
  | 'reset';

export interface TcpOrigin {
  readonly port: number;
  /** Every connection's fate as the origin saw it: 'eof' (the client's FIN), 'reset' (ECONNRESET), 'closed'. */
  readonly seen: string[];
  close(): Promise<void>;
}

export async function tcpOrigin(mode: OriginMode): Promise<TcpOrigin> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const hash = createHash('sha256');
    let bytes = 0;
    let fate: string | undefined;
    socket.on('error', (err: NodeJS.ErrnoException) => { fate ??= err.code === 'ECONNRESET' ? 'reset' : `error ${err.code ?? ''}`; });
    socket.once('close', () => seen.push(fate ?? 'closed'));
    if (mode === 'reset') {
      // (Reset from a write callback, Node 20 sends a FIN instead.)
      socket.write('hello then reset\n');
      socket.once('data', () => socket.resetAndDestroy());
      return;
    }
    if (mode === 'echo') {
      socket.pipe(socket);
      socket.once('end', () => { fate ??= 'eof'; });
      return;
    }
    socket.on('data', (c: Buffer) => { bytes += c.length; hash.update(c); });
    socket.once('end', () => {
      fate ??= 'eof';
      socket.end(`reply:${bytes}:${hash.digest('hex')}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    seen,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

export interface TcpResult {
  data: Buffer;
  /** 'eof': the peer's FIN came; 'reset': ECONNRESET; 'closed': closed without either. */
  how: 'eof' | 'reset' | 'closed';
}

/**
 * Connects to `port`, writes `send` (then FIN unless `keepOpen`), collects everything until the
 * connection closes. `onConnect` may act on the socket (e.g. reset it).
 */
export function tcpExchange(
  to: number | { host: string; port: number }, send: Buffer | string, opts: { keepOpen?: boolean; onData?: (s: net.Socket, data: Buffer) => void } = {},
): Promise<TcpResult> {
  const { host, port } = typeof to === 'number' ? { host: '127.0.0.1', port: to } : to;
  return new Promise((resolve) => {
    const socket = net.connect({ port, host, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let how: TcpResult['how'] = 'closed';
    socket.on('data', (c: Buffer) => { chunks.push(c); opts.onData?.(socket, c); });
    socket.on('end', () => {
      how = 'eof';
      socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'ECONNRESET' || err.code === 'EPIPE') how = 'reset'; });
    socket.on('close', () => resolve({ data: Buffer.concat(chunks), how }));
    socket.once('connect', () => {
      if (opts.keepOpen) socket.write(send);
      else socket.end(send);
    });
  });
}

/** The address of a `tcp://` listener: its key's host and the port from its `tcp.listening` line. */
export async function tcpListenerAddress(p: WestProcess, key: string): Promise<{ host: string; port: number }> {
  const e = await p.waitForEvent('tcp.listening', (x) => x.listener === key);
  const host = /^tcp:\/\/([^:]*):/i.exec(key)?.[1] ?? '';
  return { host: host === '' || host === '0.0.0.0' ? '127.0.0.1' : host, port: Number(e.port) };
}

/** `reply:<bytes>:<sha256>` as answer-after-eof writes it for `data`. */
export function expectedReply(data: Buffer | string): string {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return `reply:${b.length}:${createHash('sha256').update(b).digest('hex')}`;
}
