/**
 * Protocol upgrades (WebSocket and the like) carried through a stream: after the origin's
 * 101 the stream is a plain byte pipe between the client's socket and the origin's.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { FAILURES, type WestError } from '../errors.js';
import { proxyStatusValue } from './failure.js';
import type { TunnelStream } from '../tunnel/stream.js';

/** An HTTP/1.1 response head written straight to a socket (there is no ServerResponse for upgrades). */
export function rawResponseHead(status: number, statusMessage: string, headers: string[]): string {
  const lines = [`HTTP/1.1 ${status} ${statusMessage || STATUS_CODES[status] || ''}`];
  for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/** Answers an upgrade request with a failure and closes the socket. */
export function sendRawFailure(socket: Duplex, err: WestError, retryAfterS: number): void {
  if (socket.destroyed) return;
  const status = err.status;
  const body = `${status} ${STATUS_CODES[status] ?? ''}: west node ${err.node}: ${err.message}\n`;
  const headers = [
    'Content-Type', 'text/plain; charset=utf-8',
    'Content-Length', String(Buffer.byteLength(body)),
    'Proxy-Status', proxyStatusValue(err),
    'Connection', 'close',
  ];
  if (FAILURES[err.code].status === 503) headers.push('Retry-After', String(retryAfterS));
  socket.end(rawResponseHead(status, '', headers) + body);
}

/** Joins a socket and a stream both ways; either side closing or failing closes the other. */
export function splice(socket: Duplex, stream: TunnelStream, early: Buffer | undefined): void {
  if (early && early.length) stream.write(early);
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', () => stream.destroy());
  stream.on('error', () => socket.destroy());
  socket.on('close', () => { if (!stream.destroyed) stream.destroy(); });
  stream.on('close', () => { if (!socket.destroyed) socket.destroy(); });
}
