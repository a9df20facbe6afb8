/**
 * A socket and a stream joined both ways: after a 101 (near end and far end alike), and for a
 * raw TCP stream (kind `tcp`), where half-close and resets are carried too.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ResetCode } from '../../errors.js';
import type { TunnelStream } from '../../tunnel/stream.js';

/** Joins a socket and a stream both ways; either side closing or failing closes the other. */
export function splice(socket: Duplex, stream: TunnelStream, early: Buffer | undefined): void {
  if (early?.length) stream.write(early);
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', () => stream.destroy());
  stream.on('error', () => socket.destroy());
  socket.on('close', () => { if (!stream.destroyed) stream.destroy(); });
  stream.on('close', () => { if (!socket.destroyed) socket.destroy(); });
}

/**
 * Joins a TCP socket (made with `allowHalfOpen`) and a `tcp` stream as TCP would: a FIN is
 * the stream's END and the other direction stays open; the socket failing or being reset
 * resets the stream with `code` (`cancel` at the near end, `origin_reset` at the far end), and
 * a RESET from the peer (or a lost tunnel) resets the socket (RST, not FIN).
 */
export function spliceTcp(socket: Socket, stream: TunnelStream, code: ResetCode, who: string): void {
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', (err: NodeJS.ErrnoException) => {
    stream.reset(code, `${who} ${err.code === 'ECONNRESET' ? 'reset the connection' : `failed (${err.code ?? err.message})`}`);
  });
  stream.on('error', () => { if (!socket.destroyed) socket.resetAndDestroy(); });
  // Closed without an error before both directions ended (destroyed on our side): that is a reset.
  socket.on('close', () => {
    if (!stream.destroyed && !(stream.readableEnded && stream.writableEnded)) stream.reset(code, `${who} closed the connection`);
  });
  stream.on('close', () => {
    if (!socket.destroyed && !(stream.readableEnded && stream.writableFinished)) socket.resetAndDestroy();
  });
}
