/**
 * The WebSocket under a tunnel, as a TunnelLink: ws's messages, ping/pong, close codes and
 * bufferedAmount, and the corked, uncopied bulk writes of outbox.ts and wire.ts, unchanged;
 * bulk DATA read in pieces, uncopied, ahead of ws's Receiver (ws-reader.ts).
 */
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { BulkHead, LinkEvents, TunnelLink } from './link.js';
import { writeTurn, type Corkable, type OutboxEntry } from './outbox.js';
import { readAhead } from './ws-reader.js';

/** The TCP (or TLS) socket under the WebSocket: who the peer is, corked while a turn is written. */
export interface LinkSocket extends Corkable {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

export class WebSocketLink extends EventEmitter<LinkEvents> implements TunnelLink {
  readonly transport = 'websocket';
  readonly remoteAddress: string;
  readonly remotePort: number;
  private readonly ws: WebSocket;
  private readonly socket: LinkSocket;
  /** Handed with each 'data-head' (one object, reused). */
  private readonly bulkHead: BulkHead = { whole: false };
  /** The dialing side masks what it sends. */
  private readonly masked: boolean;

  constructor(ws: WebSocket, socket: LinkSocket, masked: boolean) {
    super();
    this.ws = ws;
    this.socket = socket;
    this.masked = masked;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data, isBinary) => {
      if (isBinary && Buffer.isBuffer(data)) this.emit('message', data);
      else this.emit('malformed', 'text message on a binary tunnel');
    });
    ws.on('pong', () => this.emit('pong'));
    ws.on('ping', () => this.emit('ping'));
    ws.on('close', (code, reason) => this.emit('close', code, reason.toString()));
    ws.on('error', (err) => this.emit('error', err));
    // Bulk DATA reaches its stream in pieces, uncopied; everything else still goes through ws.
    readAhead(ws, {
      dataHead: (stream, length) => {
        const head = this.bulkHead;
        head.whole = false;
        this.emit('data-head', stream, length, head);
        return head.whole;
      },
      dataPiece: (piece) => this.emit('data-piece', piece),
    });
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  get queuedBytes(): number {
    return this.ws.bufferedAmount;
  }

  writeTurn(frames: OutboxEntry[], afterLast: () => void): void {
    writeTurn(this.ws, this.socket, this.masked, frames, afterLast);
  }

  ping(): void {
    this.ws.ping();
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
    // A peer that never answers the close handshake must not keep us waiting.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  terminate(): void {
    this.ws.terminate();
  }
}
