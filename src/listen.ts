/** Binding and closing the node's servers (listeners, tunnel server, control port). */
import type http from 'node:http';
import type net from 'node:net';
import type { Endpoint } from './config/types.js';

/** Listens on `endpoint` (host '' = all interfaces); rejects with the bind error (EADDRINUSE, …). */
export async function listenOn(server: net.Server, { host, port }: Endpoint): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host || undefined, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The port a server is bound to, 0 before it is. */
export function boundPort(server: net.Server): number {
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
}

/** Stops listening and drops every connection, in-flight ones included. */
export async function closeNow(server: http.Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
