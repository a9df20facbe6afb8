/** What a running node reports as it happens, for metrics and the status page. */
import type { FailureCode } from './errors.js';

/** One finished request, as the access log and the metrics see it. */
export interface AccessRecord {
  id: string;
  listener: string;
  /** The mapping path, or '-' when none matched. */
  mapping: string;
  method: string;
  path: string;
  /** 499: the client went away before any response. */
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  client: string;
  /** False when the response was cut off. */
  completed: boolean;
  /** Upgrade protocol (e.g. "websocket") for upgrade requests. */
  upgrade?: string;
  /** Why west answered with a failure, and where it happened. */
  failure?: { code: FailureCode; node: string; message: string };
}

/** One finished connection of a `tcp://` listener (doc/tcp.md). */
export interface TcpRecord {
  id: string;
  listener: string;
  /** The node the stream went to (`en`, or the `ea` URL) and the address it connected to there. */
  node: string;
  to: string;
  client: string;
  /**
   * `closed`: both directions ended (FIN each way); `reset`: either side reset it (or the
   * tunnel went) after it connected; `refused`: it never connected (`failure` says why).
   */
  outcome: 'closed' | 'reset' | 'refused';
  durationMs: number;
  /** Bytes from the client, and to it. */
  bytesIn: number;
  bytesOut: number;
  failure?: { code: FailureCode; node: string; message: string };
}

export interface TunnelEvent {
  /** 'client': a tunnel this node dials; 'server': a peer connected to this node's server. */
  side: 'client' | 'server';
  /** The peer's name (as presented or reported). */
  peer: string;
  /** Server URL (client side only). */
  url?: string;
  up: boolean;
  /** Close code and reason when it went down. */
  code?: number;
  reason?: string;
}

export interface NodeEvents {
  access: [AccessRecord];
  tcp: [TcpRecord];
  tunnel: [TunnelEvent];
  /** A tunnel client failed to connect (it will redial). */
  'dial-failed': [{ url: string; reason: string }];
  /**
   * A stream a peer opened is performed here; `hops`: the tunnels it crossed since the first
   * west listener (1 from a direct peer, more through a chain or relays of the mesh).
   */
  performed: [{ hops: number }];
}
