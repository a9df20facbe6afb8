/**
 * What a TunnelSession needs of the connection under it: a message transport that keeps
 * order, tells the session when the peer is heard from, and says how much it has queued.
 * The WebSocket (ws-link.ts) is one; a pair of MQTT topics through a broker (mqtt/link.ts)
 * is another. Frames, streams, windows and heartbeats' timing stay in the session.
 */
import type { EventEmitter } from 'node:events';
import type { OutboxEntry } from './outbox.js';

export type Transport = 'websocket' | 'mqtt';

/** What a 'data-head' listener may ask of the frame's pieces. */
export interface BulkHead {
  /** Set to true: the pieces reach the stream as one buffer (see TunnelStream.wholeFrames). */
  whole: boolean;
}

export interface LinkEvents {
  /** One binary message of packed west frames. */
  message: [data: Buffer];
  /**
   * A bulk DATA frame's head, when the transport delivers it in pieces instead of in a
   * 'message' (the WebSocket, ws-reader.ts): `length` payload bytes follow as 'data-piece's.
   */
  'data-head': [stream: number, length: number, head: BulkHead];
  /** The next bytes of the DATA frame announced by the last 'data-head'. */
  'data-piece': [piece: Buffer];
  /** Something that cannot be a west message arrived (a text message): the tunnel is broken. */
  malformed: [reason: string];
  /** The peer answered our ping. */
  pong: [];
  /** The peer pinged (its link has already answered). */
  ping: [];
  close: [code: number, reason: string];
  error: [err: Error];
}

export interface TunnelLink extends EventEmitter<LinkEvents> {
  readonly transport: Transport;
  /** Who the peer is, as this transport sees it (the broker, for MQTT). */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Whether messages can be sent now. */
  readonly open: boolean;
  /** Bytes handed to the link that have not yet left for the network. */
  readonly queuedBytes: number;
  /** Sends one turn's frames, in order; `afterLast` runs once the last has been taken. */
  writeTurn(frames: OutboxEntry[], afterLast: () => void): void;
  /** Asks the peer for a pong (liveness and an RTT sample). */
  ping(): void;
  /** Tells the peer the tunnel ends, then ends it. */
  close(code: number, reason: string): void;
  /** Ends the tunnel without telling the peer. */
  terminate(): void;
}
