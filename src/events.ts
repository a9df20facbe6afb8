/** What a running node reports as it happens, for metrics and the status page. */
import type { AccessRecord } from './proxy/listener.js';

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
  tunnel: [TunnelEvent];
  /** A tunnel client failed to connect (it will redial). */
  'dial-failed': [{ url: string; reason: string }];
}
