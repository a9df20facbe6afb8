/**
 * Byte pipes with back-pressure between a WebSocket and its other side: another WebSocket (a
 * rendezvous pair) or a Duplex such as a TCP stream over the tunnel (remote access). Nothing
 * queues more than `highWater` bytes per direction, plus the one message being handed over:
 * past it the sending side's socket is paused (not read) until the other side has written.
 * Closing either side closes the other.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/** Bytes moved each way, for the log line of the session. */
export interface BridgeCounts {
  /** From the first side (the WebSocket of a bridge, the first party of a pair). */
  up: number;
  down: number;
}

/** A close code a WebSocket may send (1005, 1006 and 1015 are only ever reported). */
function sendable(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 || code < 1000 || code >= 5000 ? 1000 : code;
}

/** Data of a 'message' event as one Buffer (ws hands fragments as a list when binaryType is 'fragments'). */
function asBuffer(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data as Buffer[]);
  return Buffer.from(data as ArrayBuffer);
}

/** Sends each message of `from` to `to`; pauses `from` while more than `highWater` bytes wait in `to`. */
function oneWay(from: WebSocket, to: WebSocket, highWater: number, count: (n: number) => void): void {
  let queued = 0;
  let paused = false;
  from.on('message', (data, isBinary) => {
    const bytes = asBuffer(data);
    count(bytes.length);
    if (to.readyState !== to.OPEN) return;
    queued += bytes.length;
    // The callback runs once ws has handed the bytes to the socket (or failed to).
    to.send(bytes, { binary: isBinary }, () => {
      queued -= bytes.length;
      if (paused && queued <= highWater / 2) {
        paused = false;
        from.resume();
      }
    });
    if (!paused && queued > highWater) {
      paused = true;
      from.pause();
    }
  });
}

/** Joins two WebSockets (a rendezvous pair). `done` runs once, when both are closed. */
export function spliceWebSockets(a: WebSocket, b: WebSocket, highWater: number, done: (counts: BridgeCounts, why: string) => void): void {
  const counts: BridgeCounts = { up: 0, down: 0 };
  oneWay(a, b, highWater, (n) => { counts.up += n; });
  oneWay(b, a, highWater, (n) => { counts.down += n; });
  let closed = 0;
  let why = '';
  const onClose = (other: WebSocket, name: string) => (code: number): void => {
    why ||= `${name} closed (${code})`;
    if (other.readyState === other.OPEN || other.readyState === other.CONNECTING) other.close(sendable(code));
    // A peer that never answers the close handshake must not hold the pair open.
    else if (other.readyState === other.CLOSING) setTimeout(() => other.terminate(), 5000).unref();
    if (++closed === 2) done(counts, why);
  };
  a.once('close', onClose(b, 'first party'));
  b.once('close', onClose(a, 'second party'));
  a.on('error', () => a.terminate());
  b.on('error', () => b.terminate());
}

/**
 * Joins a WebSocket and a Duplex (a TCP stream over the tunnel): each message goes out as
 * bytes, and each chunk read comes back as one binary message. The WebSocket closing ends and
 * then destroys the Duplex; the Duplex ending or failing closes the WebSocket.
 */
export function bridgeToDuplex(ws: WebSocket, stream: Duplex, highWater: number, done: (counts: BridgeCounts, why: string) => void): void {
  const counts: BridgeCounts = { up: 0, down: 0 };
  let finished = false;
  let why = '';
  const finish = (reason: string): void => {
    why ||= reason;
    if (finished) return;
    if (!stream.destroyed || ws.readyState !== ws.CLOSED) return;
    finished = true;
    done(counts, why);
  };

  let waitingForDrain = false;
  ws.on('message', (data) => {
    const bytes = asBuffer(data);
    counts.up += bytes.length;
    if (stream.destroyed || stream.writableEnded) return;
    // Messages ws had already read may still arrive while paused: one drain wait is enough.
    if (!stream.write(bytes) && !waitingForDrain) {
      waitingForDrain = true;
      ws.pause();
      stream.once('drain', () => {
        waitingForDrain = false;
        ws.resume();
      });
    }
  });
  let queued = 0;
  let paused = false;
  stream.on('data', (chunk: Buffer) => {
    counts.down += chunk.length;
    if (ws.readyState !== ws.OPEN) return;
    queued += chunk.length;
    ws.send(chunk, { binary: true }, () => {
      queued -= chunk.length;
      if (paused && queued <= highWater / 2) {
        paused = false;
        stream.resume();
      }
    });
    if (!paused && queued > highWater) {
      paused = true;
      stream.pause();
    }
  });

  ws.once('close', (code) => {
    // What the client sent last still goes out; then the stream is done either way.
    if (!stream.destroyed) {
      stream.end(() => stream.destroy());
      setTimeout(() => stream.destroy(), 5000).unref();
    }
    why ||= `the WebSocket closed (${code})`;
    finish(why);
  });
  ws.on('error', () => ws.terminate());
  stream.once('end', () => {
    if (ws.readyState === ws.OPEN) ws.close(1000, 'the endpoint closed the connection');
    why ||= 'the endpoint closed the connection';
  });
  stream.on('error', (err) => {
    why ||= `the stream failed: ${err.message}`;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1011, err.message.slice(0, 100));
  });
  stream.once('close', () => {
    if (ws.readyState === ws.OPEN) ws.close(1000, 'the endpoint closed the connection');
    else if (ws.readyState === ws.CLOSING) setTimeout(() => ws.terminate(), 5000).unref();
    finish('the endpoint closed the connection');
  });
}
