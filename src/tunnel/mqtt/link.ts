/**
 * One tunnel session over MQTT, as a TunnelLink: frames packed into messages on the topic
 * this side sends on, the peer's messages from the topic it reads, each in sequence (a gap
 * means the broker lost one: the tunnel ends). Heartbeats are control messages of the link
 * (ping/pong), so the session times them as it times WebSocket pings.
 */
import { EventEmitter } from 'node:events';
import type { LinkEvents, TunnelLink } from '../link.js';
import type { OutboxEntry } from '../outbox.js';
import type { BrokerConnection } from './connection.js';
import { decodeEnvelope, encodeControl, ENVELOPE_BYTES, envelopeHead, KIND_FRAMES, KIND_PIECE, type Control } from './envelope.js';
import { MAX_MESSAGE } from '../handshake.js';

/** Frames of one turn are packed into MQTT messages of about this size (a DATA frame is at most 64 KiB). */
export const MQTT_BATCH_BYTES = 256 * 1024;

/**
 * The largest MQTT message west sends through a broker reached over WebSocket: mosquitto
 * 2.0.11's WebSocket listener stalls delivering larger ones to a WebSocket subscriber, so a
 * packed message is sent in pieces of this size there.
 */
export const WS_BROKER_MESSAGE_BYTES = 4000;

/** The largest message to send through the broker at `url`. */
export function brokerMessageLimit(url: string): number {
  return /^wss?:/i.test(url) ? WS_BROKER_MESSAGE_BYTES : MQTT_BATCH_BYTES + ENVELOPE_BYTES;
}

export interface MqttLinkOptions {
  conn: BrokerConnection;
  /** Topic this side publishes on, and the one the peer does. */
  sendTopic: string;
  /** Describes the peer in state and logs: the broker's URL. */
  remote: string;
  /** Sequence numbers already used each way by the handshake. */
  sentSeq: number;
  recvSeq: number;
  /** Largest MQTT message to publish (envelope included); larger ones go in pieces. */
  maxMessage: number;
}

export class MqttLink extends EventEmitter<LinkEvents> implements TunnelLink {
  readonly transport = 'mqtt';
  readonly remoteAddress: string;
  readonly remotePort = 0;
  private readonly conn: BrokerConnection;
  private readonly sendTopic: string;
  private sendSeq: number;
  private recvSeq: number;
  private ended = false;
  private readonly maxMessage: number;
  /** Pieces of a split message received so far, and their bytes. */
  private pieces: Buffer[] = [];
  private pieceBytes = 0;
  /**
   * This link's bytes handed to the broker connection and not yet written. The server's
   * connection is shared by every session: its total would make a quiet session wait for a
   * wake-up that only its own writes bring (TunnelSession.afterWrite), so each counts its own.
   */
  private queued = 0;

  constructor(opts: MqttLinkOptions) {
    super();
    this.maxMessage = Math.max(opts.maxMessage, ENVELOPE_BYTES + 256);
    this.conn = opts.conn;
    this.sendTopic = opts.sendTopic;
    this.remoteAddress = opts.remote;
    this.sendSeq = opts.sentSeq;
    this.recvSeq = opts.recvSeq;
  }

  get open(): boolean {
    return !this.ended && this.conn.connected;
  }

  get queuedBytes(): number {
    return this.queued;
  }

  /** A message from the peer's topic. */
  deliver(payload: Buffer): void {
    if (this.ended) return;
    let envelope;
    try {
      envelope = decodeEnvelope(payload);
    } catch (err) {
      this.emit('malformed', err instanceof Error ? err.message : String(err));
      return;
    }
    if (envelope.seq !== this.recvSeq) {
      this.emit('malformed', `MQTT message ${envelope.seq} arrived where ${this.recvSeq} was due (lost or reordered by the broker)`);
      return;
    }
    this.recvSeq = (this.recvSeq + 1) >>> 0;
    if (envelope.kind === 'piece') {
      this.pieces.push(envelope.data);
      this.pieceBytes += envelope.data.length;
      // A message is at most a turn's batch; more is a peer that never ends one.
      if (this.pieceBytes > MAX_MESSAGE) this.emit('malformed', `split MQTT message over ${MAX_MESSAGE} bytes`);
      return;
    }
    if (envelope.kind === 'frames') {
      if (this.pieces.length === 0) {
        this.emit('message', envelope.data);
        return;
      }
      const whole = Buffer.concat([...this.pieces, envelope.data], this.pieceBytes + envelope.data.length);
      this.pieces = [];
      this.pieceBytes = 0;
      this.emit('message', whole);
      return;
    }
    if (this.pieces.length > 0) {
      this.emit('malformed', 'control message inside a split MQTT message');
      return;
    }
    const c = envelope.control;
    switch (c.t) {
      case 'ping': this.control({ t: 'pong' }); this.emit('ping'); break;
      case 'pong': this.emit('pong'); break;
      case 'close': this.lost(c.code, c.reason); break;
      default: this.emit('malformed', `unexpected ${c.t} message on an open MQTT tunnel`);
    }
  }

  writeTurn(frames: OutboxEntry[], afterLast: () => void): void {
    let parts: Buffer[] = [];
    let size = 0;
    const send = (message: Buffer, done: (() => void) | undefined): void => {
      this.queued += message.length;
      this.conn.publish(this.sendTopic, message, () => {
        this.queued = Math.max(0, this.queued - message.length);
        done?.();
      });
    };
    const publish = (last: boolean): void => {
      const room = this.maxMessage - ENVELOPE_BYTES;
      if (size <= room) {
        const head = envelopeHead(KIND_FRAMES, this.nextSeq());
        send(Buffer.concat([head, ...parts], head.length + size), last ? afterLast : undefined);
      } else {
        // In pieces, all published now, so nothing else comes between them.
        const body = Buffer.concat(parts, size);
        for (let at = 0; at < size; at += room) {
          const end = Math.min(size, at + room);
          const head = envelopeHead(end === size ? KIND_FRAMES : KIND_PIECE, this.nextSeq());
          send(Buffer.concat([head, body.subarray(at, end)]), last && end === size ? afterLast : undefined);
        }
      }
      parts = [];
      size = 0;
    };
    for (const frame of frames) {
      const pieces = Buffer.isBuffer(frame) ? [frame] : [frame.head, ...(Buffer.isBuffer(frame.body) ? [frame.body] : frame.body)];
      const length = pieces.reduce((n, p) => n + p.length, 0);
      if (size > 0 && size + length > MQTT_BATCH_BYTES) publish(false);
      parts.push(...pieces);
      size += length;
    }
    if (size > 0) publish(true);
    else afterLast();
  }

  ping(): void {
    this.control({ t: 'ping' });
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    this.control({ t: 'close', code, reason });
    this.lost(code, reason);
  }

  terminate(): void {
    this.lost(1006, 'terminated');
  }

  /** Ends the link without a word to the peer (its broker connection is gone, or it said close). */
  lost(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.queued = 0;
    this.emit('close', code, reason);
  }

  private control(c: Control): void {
    if (!this.open) return;
    this.conn.publish(this.sendTopic, encodeControl(this.nextSeq(), c));
  }

  private nextSeq(): number {
    const seq = this.sendSeq;
    this.sendSeq = (this.sendSeq + 1) >>> 0;
    return seq;
  }
}
