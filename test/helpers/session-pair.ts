/**
 * Two TunnelSessions over a real WebSocket on 127.0.0.1, and the waits the session tests share.
 * Every wait is bounded (WAIT_MS); withPair always closes what it opened.
 */
import assert from 'node:assert/strict';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { silentLogger } from '../../src/log.js';
import type { OpenHead } from '../../src/tunnel/frame.js';
import { OUR_FEATURES, type Feature } from '../../src/tunnel/features.js';
import { TunnelSession, type SessionOptions } from '../../src/tunnel/session.js';
import { StreamResetError, TunnelStream } from '../../src/tunnel/stream.js';

export const WAIT_MS = 5000;
export const WINDOW = 64 * 1024;

/** Rejects with `what` if `promise` has not settled within WAIT_MS. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function head(path: string, method = 'POST'): OpenHead {
  return { kind: 'http', method, url: `http://127.0.0.1:9/${path}`, headers: ['X-Path', path], hops: 1, to: '', id: `id-${path}` };
}

export function nextStream(session: TunnelSession): Promise<TunnelStream> {
  return within(new Promise((resolve) => session.once('stream', resolve)), 'a stream from the peer');
}

export function closeOf(session: TunnelSession): Promise<{ code: number; reason: string }> {
  return within(new Promise((resolve) => session.once('close', (code, reason) => resolve({ code, reason }))), 'the session to close');
}

/** Reads a stream to its end. */
export function body(stream: TunnelStream): Promise<Buffer> {
  return within(new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  }), `the body of stream ${stream.id}`);
}

/**
 * Reads a stream to its end with `for await`, as a paused-mode consumer does. (A plain
 * `for await (… of stream)` would destroy the Duplex at the end, cancelling the reply.)
 */
export function bodyByIterator(stream: TunnelStream): Promise<Buffer> {
  return within((async () => {
    const chunks: Buffer[] = [];
    for await (const c of stream.iterator({ destroyOnReturn: false })) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })(), `the body of stream ${stream.id} (for await)`);
}

/** The error a stream fails with (resolves with undefined if it closes without one). */
export function failure(stream: TunnelStream): Promise<unknown> {
  return within(new Promise((resolve) => {
    let error: unknown;
    stream.on('error', (err) => { error = err; });
    stream.on('close', () => resolve(error));
  }), `stream ${stream.id} to fail`);
}

export function resetCode(err: unknown): string {
  return err instanceof StreamResetError ? err.info.code : `not a StreamResetError: ${String(err)}`;
}

export function pattern(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 7 + seed * 13) & 0xff;
  return buf;
}

export interface Pair {
  /** The dialing side (odd ids). */
  client: TunnelSession;
  /** The accepting side (even ids). */
  server: TunnelSession;
  clientWs: WebSocket;
  serverWs: WebSocket;
  /** The sockets under clientWs and serverWs, as their upgrades handed them over. */
  clientSocket: Socket;
  serverSocket: Socket;
  close(): Promise<void>;
}

/** Extra session options for one side or the other (flow-control limits, a clock, features). */
export interface PairOptions {
  client?: Partial<SessionOptions>;
  server?: Partial<SessionOptions>;
}

/** Two sessions over a real WebSocket on 127.0.0.1, granting each other `window` per stream. */
/**
 * `features`: what each side announces it can receive (as nodes of this version do; pass
 * none to stand for an older peer).
 */
export async function pair(window = WINDOW, features: readonly Feature[] = OUR_FEATURES, sides: PairOptions = {}): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await within(new Promise<void>((resolve) => wss.once('listening', resolve)), 'the server to listen');
  const { port } = wss.address() as AddressInfo;
  const accepted = within(new Promise<[WebSocket, Socket]>((resolve) => wss.once('connection', (ws, req) => resolve([ws, req.socket]))), 'the server to accept');
  const clientWs = new WebSocket(`ws://127.0.0.1:${port}`);
  let clientSocket: Socket | undefined;
  clientWs.once('upgrade', (res) => { clientSocket = res.socket; });
  const opened = within(new Promise<void>((resolve, reject) => { clientWs.once('open', resolve); clientWs.once('error', reject); }), 'the client to connect');
  const [[serverWs, serverSocket]] = await Promise.all([accepted, opened]);
  assert.ok(clientSocket, 'ws emits upgrade before open');
  const common = { recvWindow: window, sendWindow: window, heartbeatMs: 1000, log: silentLogger, peerFeatures: new Set(features) };
  const client = new TunnelSession(clientWs, { ...common, localName: 'node-C', peerName: 'node-S', initiator: true, socket: clientSocket, ...sides.client });
  const server = new TunnelSession(serverWs, { ...common, localName: 'node-S', peerName: 'node-C', initiator: false, socket: serverSocket, ...sides.server });
  // Streams the peer opens fail when the pair is torn down; tests that care listen themselves.
  for (const session of [client, server]) session.on('stream', (s) => s.on('error', () => {}));
  return {
    client, server, clientWs, serverWs, clientSocket, serverSocket,
    async close() {
      for (const s of [...client.streams.values(), ...server.streams.values()]) if (s instanceof TunnelStream) s.on('error', () => {});
      client.close();
      server.close();
      clientWs.terminate();
      serverWs.terminate();
      for (const c of wss.clients) c.terminate();
      await within(new Promise<void>((resolve) => wss.close(() => resolve())), 'the server to close');
    },
  };
}

/** Runs `body` with a fresh pair and always closes it. */
export async function withPair(fn: (p: Pair) => Promise<void>, window = WINDOW, features: readonly Feature[] = OUR_FEATURES): Promise<void> {
  const p = await pair(window, features);
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}
