/**
 * A user-space stand-in for a long link (this kernel has no netem): a TCP relay that holds
 * every chunk for a one-way delay before passing it on, in order, each direction on its own.
 * It preserves bandwidth (chunks are released by time, not one at a time) and applies
 * back-pressure: a direction holding more than `maxQueued` bytes, or whose destination is not
 * draining, stops reading its source. Half-close travels like data (after the bytes before
 * it); a reset or error on either side destroys both.
 */
import net from 'node:net';

export interface DelayRelayOptions {
  /** Where to connect for each accepted connection. */
  targetPort: number;
  targetHost?: string;
  /** Round-trip time added: each direction holds data for half of it. */
  rttMs: number;
  /** Bytes a direction may hold before it stops reading (default 256 MiB: 2.5 GB/s at 100 ms). */
  maxQueued?: number;
}

export interface DelayRelay {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  close(): Promise<void>;
}

interface Held { at: number; chunk: Buffer | null }

/** Passes `from`'s bytes to `to`, each one `delayMs` after it arrived. */
function delayOneWay(from: net.Socket, to: net.Socket, delayMs: number, maxQueued: number): void {
  const queue: Held[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  let waitingDrain = false;

  const throttle = (): void => {
    if (queued > maxQueued || waitingDrain) from.pause();
    else if (from.isPaused()) from.resume();
  };
  const release = (): void => {
    timer = undefined;
    // A destination that is gone takes nothing more: drop what is held, so no timer is left.
    if (to.destroyed) {
      queue.length = 0;
      return;
    }
    const now = performance.now();
    while (queue.length > 0) {
      const head = queue[0];
      if (!head || head.at > now || waitingDrain) break;
      queue.shift();
      if (head.chunk === null) { to.end(); return; }
      queued -= head.chunk.length;
      if (!to.write(head.chunk)) {
        waitingDrain = true;
        to.once('drain', () => { waitingDrain = false; release(); });
      }
    }
    throttle();
    schedule();
  };
  const schedule = (): void => {
    const head = queue[0];
    if (timer || !head || waitingDrain) return;
    timer = setTimeout(release, Math.max(0, head.at - performance.now()));
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ at: performance.now() + delayMs, chunk });
    queued += chunk.length;
    throttle();
    schedule();
  });
  from.on('end', () => {
    queue.push({ at: performance.now() + delayMs, chunk: null });
    schedule();
  });
  to.on('close', () => {
    clearTimeout(timer);
    timer = undefined;
    queue.length = 0;
  });
}

export async function startDelayRelay(opts: DelayRelayOptions): Promise<DelayRelay> {
  const oneWay = opts.rttMs / 2;
  const maxQueued = opts.maxQueued ?? 256 * 1024 * 1024;
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    accepted++;
    const upstream = net.connect({ port: opts.targetPort, host: opts.targetHost ?? '127.0.0.1', allowHalfOpen: true, noDelay: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    const both = (err?: Error): void => {
      client.destroy(err);
      upstream.destroy(err);
    };
    client.on('error', both);
    upstream.on('error', both);
    // A side that is gone entirely (not half-closed) takes the other with it.
    client.on('close', () => { if (!upstream.destroyed && upstream.writableFinished && upstream.readableEnded) upstream.destroy(); });
    upstream.on('close', () => { if (!client.destroyed && client.writableFinished && client.readableEnded) client.destroy(); });
    delayOneWay(client, upstream, oneWay, maxQueued);
    delayOneWay(upstream, client, oneWay, maxQueued);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('delay relay has no port');
  return {
    port: address.port,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
