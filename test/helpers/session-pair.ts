/**
 * Two TunnelSessions joined by a real WebSocket on 127.0.0.1, for in-process tests of the
 * layers above the tunnel (the proxy's near and far ends) without spawning west processes.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { silentLogger } from '../../src/log.js';
import { TunnelSession } from '../../src/tunnel/session.js';

export interface SessionPair {
  /** The dialing side (odd stream ids): the near end in proxy tests. */
  near: TunnelSession;
  /** The accepting side: the far end. */
  far: TunnelSession;
  close(): Promise<void>;
}

export async function sessionPair(window = 256 * 1024): Promise<SessionPair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const { port } = wss.address() as AddressInfo;
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const clientWs = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(clientWs, 'open');
  const [serverWs] = await accepted;
  const common = { recvWindow: window, sendWindow: window, heartbeatMs: 5000, log: silentLogger, remoteAddress: '127.0.0.1' };
  const near = new TunnelSession(clientWs, { ...common, localName: 'near', peerName: 'far', initiator: true, remotePort: port });
  const far = new TunnelSession(serverWs, { ...common, localName: 'far', peerName: 'near', initiator: false, remotePort: 0 });
  return {
    near, far,
    async close() {
      for (const s of [...near.streams.values(), ...far.streams.values()]) s.on('error', () => {});
      near.close();
      far.close();
      clientWs.terminate();
      serverWs.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
