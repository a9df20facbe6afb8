/**
 * The frames a session sends in one turn of the event loop, and how they leave: small frames
 * written straight into a few packed WebSocket messages (slabs, see Outbox), bulk DATA in a
 * message of its own with its payload uncopied (wire.ts), all in one corked write.
 */
import type { WebSocket } from 'ws';
import { encodeDataHeader, encodeText, FrameType, HEADER_SIZE, writeFrameHeader, writeTextFrame } from './frame.js';
import { sendParts } from './wire.js';

/** Frames sent in one turn of the event loop are packed into messages of at most this size (a slab is smaller). */
export const BATCH_BYTES = 64 * 1024;
/**
 * A DATA payload this large goes in a message of its own, written after its header without
 * being copied (wire.ts); smaller ones are copied into the turn's packed messages.
 */
export const BULK_DATA = 16 * 1024;

/** The socket under the WebSocket, corked while a turn is written. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/** A DATA frame kept as header and payload (whole, or in the pieces a relay received it in) until it is written. */
export interface DataParts { head: Buffer; body: Buffer | readonly Buffer[] }

export type OutboxEntry = Buffer | DataParts;

/**
 * The slabs the outbox packs small frames into: a turn's frames are written straight into one
 * (one allocation for many frames, none per frame, no copy into a message at the end). A
 * tunnel's first slab, and its first after a quiet spell, is small (from Node's shared pool):
 * an idle tunnel holds little; a busy one takes SLAB_BYTES at a time.
 */
export const FIRST_SLAB_BYTES = 2 * 1024;
export const SLAB_BYTES = 16 * 1024;

/**
 * The frames a session sends in one turn, in order, as they will leave: runs of small frames
 * already packed into messages (up to BATCH_BYTES, or the end of a slab), and bulk frames
 * apart, uncopied (DATA's payload behind its own header).
 */
export class Outbox {
  /** Bytes queued since the last take(). */
  bytes = 0;
  private entries: OutboxEntry[] = [];
  private slab: Buffer | undefined;
  /** The run being packed is slab[runStart..used); bytes before runStart are handed out, never rewritten. */
  private runStart = 0;
  private used = 0;

  get empty(): boolean {
    return this.entries.length === 0 && this.used === this.runStart;
  }

  /** A frame already encoded: copied into the run, or, when bulky, a message of its own, uncopied. */
  push(frame: Buffer): void {
    this.bytes += frame.length;
    if (frame.length >= BULK_DATA) {
      this.closeRun();
      this.entries.push(frame);
      return;
    }
    const slab = this.room(frame.length);
    frame.copy(slab, this.used);
    this.used += frame.length;
  }

  /** A DATA frame: small payloads copied in behind their header, bulk ones kept apart, uncopied. */
  data(stream: number, payload: Buffer): void {
    this.bytes += HEADER_SIZE + payload.length;
    if (payload.length >= BULK_DATA) {
      this.closeRun();
      this.entries.push({ head: encodeDataHeader(stream, payload.length), body: payload });
      return;
    }
    const slab = this.room(HEADER_SIZE + payload.length);
    writeFrameHeader(slab, this.used, FrameType.data, stream, payload.length);
    payload.copy(slab, this.used + HEADER_SIZE);
    this.used += HEADER_SIZE + payload.length;
  }

  /** A DATA frame of `length` bytes given in pieces (a relayed frame, relay-leg.ts): as data(), the pieces uncopied when bulky. */
  dataPieces(stream: number, pieces: readonly Buffer[], length: number): void {
    this.bytes += HEADER_SIZE + length;
    if (length >= BULK_DATA) {
      this.closeRun();
      this.entries.push({ head: encodeDataHeader(stream, length), body: pieces.length === 1 && pieces[0] ? pieces[0] : pieces });
      return;
    }
    const slab = this.room(HEADER_SIZE + length);
    writeFrameHeader(slab, this.used, FrameType.data, stream, length);
    let at = this.used + HEADER_SIZE;
    for (const piece of pieces) at += piece.copy(slab, at);
    this.used = at;
  }

  /** An END frame, written straight into the run. */
  end(stream: number): void {
    this.bytes += HEADER_SIZE;
    writeFrameHeader(this.room(HEADER_SIZE), this.used, FrameType.end, stream, 0);
    this.used += HEADER_SIZE;
  }

  /** A head frame of `text` (frame.ts checked its fields), encoded straight into the run. */
  text(type: number, stream: number, text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: the bound decides, not a pass to measure.
    const bound = HEADER_SIZE + 3 * text.length;
    if (bound >= BULK_DATA) {
      this.push(encodeText(type, stream, text));
      return;
    }
    const size = writeTextFrame(this.room(bound), this.used, type, stream, text);
    this.used += size;
    this.bytes += size;
  }

  /** The turn's messages, in order; the outbox is empty again. */
  take(): OutboxEntry[] {
    this.closeRun();
    const entries = this.entries;
    this.entries = [];
    this.bytes = 0;
    return entries;
  }

  /**
   * Where `size` more bytes (a frame under BULK_DATA + its header) go: in the run, which closes
   * first when it would pass BATCH_BYTES or its slab is full (a fresh slab starts the next run).
   */
  private room(size: number): Buffer {
    if (this.used - this.runStart + size > BATCH_BYTES) this.closeRun();
    if (!this.slab || this.used + size > this.slab.length) {
      this.closeRun();
      this.slab = Buffer.allocUnsafe(Math.max(this.slab ? SLAB_BYTES : FIRST_SLAB_BYTES, size));
      this.runStart = this.used = 0;
    }
    return this.slab;
  }

  /** An idle session lets its slab go (the heartbeat asks); the next frame takes a fresh one. */
  release(): void {
    if (this.empty) {
      this.slab = undefined;
      this.runStart = this.used = 0;
    }
  }

  private closeRun(): void {
    if (this.used === this.runStart || !this.slab) return;
    this.entries.push(this.slab.subarray(this.runStart, this.used));
    this.runStart = this.used;
  }
}

/**
 * Writes one turn's frames, in order, in one corked write; `afterLast` runs once the socket
 * has taken the last message. `masked`: this side dialed, so what it sends is masked.
 */
export function writeTurn(ws: WebSocket, socket: Corkable, masked: boolean, frames: OutboxEntry[], afterLast: () => void): void {
  // ws writes a message's header and payload separately: cork them into one write.
  socket.cork();
  for (let i = 0; i < frames.length;) {
    const first = frames[i];
    if (first === undefined) break; // i < frames.length: never
    if (!Buffer.isBuffer(first)) {
      // Bulk DATA goes alone, its payload written as it came (not copied behind its header).
      sendParts(ws, masked, first.head, first.body, i + 1 === frames.length ? afterLast : undefined);
      i++;
      continue;
    }
    // Small frames share a message of up to BATCH_BYTES.
    let j = i + 1;
    let size = first.length;
    while (j < frames.length) {
      const next = frames[j];
      if (next === undefined || !Buffer.isBuffer(next) || size + next.length > BATCH_BYTES) break;
      size += next.length;
      j++;
    }
    const message = j - i === 1 ? first : Buffer.concat((i === 0 && j === frames.length ? frames : frames.slice(i, j)) as Buffer[], size);
    ws.send(message, { binary: true }, j === frames.length ? afterLast : undefined);
    i = j;
  }
  socket.uncork();
}
