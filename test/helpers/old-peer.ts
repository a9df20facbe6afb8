/**
 * A west node of the previous release, as far as a tunnel can tell: it dials a tunnel server
 * speaking west.v3 and announces the features that release had (no `tcp`), and it performs
 * the HTTP streams it is sent with this release's far end. A `tcp` OPEN would have closed its
 * tunnel (1002): it records one and closes the tunnel the same way, so a test can assert that
 * none was ever sent.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { CLOSE } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { OriginPools } from '../../src/proxy/far/origins.js';
import { performRequest } from '../../src/proxy/far/perform.js';
import { peerFeatures, peerWindow, versionOf } from '../../src/tunnel/handshake.js';
import type { Feature } from '../../src/tunnel/features.js';
import { TunnelSession } from '../../src/tunnel/session.js';

/** What the previous release announced. */
export const PREVIOUS_FEATURES: readonly Feature[] = ['informational', 'trailers', 'connection-window'];

export interface OldPeer {
  session: TunnelSession;
  /** tcp OPENs it received (each closed its tunnel). */
  tcpOpens: number;
  close(): void;
}

export async function dialAsOldPeer(url: string, name: string): Promise<OldPeer> {
  const window = 256 * 1024;
  const ws = new WebSocket(url, ['west.v3', 'west.v2'], {
    headers: { 'X-West-Node': name, 'X-West-Window': String(window), 'X-West-Features': PREVIOUS_FEATURES.join(', ') },
    perMessageDeflate: false,
  });
  let upgrade: IncomingMessage | undefined;
  ws.once('upgrade', (res) => { upgrade = res; });
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  if (!upgrade) throw new Error('no upgrade response');
  const origins = new OriginPools(2000);
  const session = new TunnelSession(ws, {
    localName: name, peerName: String(upgrade.headers['x-west-node'] ?? ''), initiator: true,
    recvWindow: window, sendWindow: peerWindow(upgrade.headers), heartbeatMs: 1000,
    socket: upgrade.socket, peerFeatures: peerFeatures(upgrade.headers), localFeatures: new Set(PREVIOUS_FEATURES),
    wireVersion: versionOf(ws.protocol) ?? 2, log: silentLogger,
  });
  const peer: OldPeer = {
    session,
    tcpOpens: 0,
    close: () => {
      session.close();
      origins.close();
    },
  };
  session.on('stream', (stream) => {
    stream.on('error', () => {});
    if (stream.head?.kind === 'tcp') {
      peer.tcpOpens++;
      session.close(CLOSE.protocolError, 'open frame: unsupported stream kind "tcp"');
      return;
    }
    performRequest(stream, session.peerName, { nodeName: name, egress: undefined, responseTimeoutMs: 5000, log: silentLogger, origins });
  });
  return peer;
}
