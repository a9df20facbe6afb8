/** After a 101 a stream is a plain byte pipe: joining it to a socket, near end and far end alike. */
import type { Duplex } from 'node:stream';
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
