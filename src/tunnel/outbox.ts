/**
 * The frames a session sends in one turn of the event loop, and how they leave: small frames
 * packed into as few WebSocket messages as possible, bulk DATA in a message of its own with
 * its payload uncopied (wire.ts), all in one corked write.
 */
import type { WebSocket } from 'ws';
import { sendParts } from './wire.js';

/** Frames sent in one turn of the event loop are packed into messages of about this size. */
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

/** A DATA frame kept as header and payload until it is written. */
export interface DataParts { head: Buffer; body: Buffer }

export type OutboxEntry = Buffer | DataParts;

/** A DATA frame as the outbox keeps it: bulk payloads apart from their header, small ones copied. */
export function dataEntry(head: Buffer, payload: Buffer): OutboxEntry {
  return payload.length >= BULK_DATA ? { head, body: payload } : Buffer.concat([head, payload]);
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
    const message = j - i === 1 ? first : Buffer.concat(frames.slice(i, j) as Buffer[], size);
    ws.send(message, { binary: true }, j === frames.length ? afterLast : undefined);
    i = j;
  }
  socket.uncork();
}
