/**
 * Writes one tunnel message made of two parts (a frame header and a DATA payload) as one
 * WebSocket binary frame, without first copying the payload behind its header: the accepting
 * side (which does not mask) writes the WebSocket header with ours and then the payload as it
 * is; the dialing side, which must mask, builds the message once and lets ws mask it in place
 * instead of copying it a second time. This reaches into ws's Sender (`_sender`, `sendFrame`,
 * `Sender.frame`), so it checks their shape first and falls back to ws.send of one buffer.
 */
import * as wsModule from 'ws';
import type { WebSocket } from 'ws';

type SendCallback = (err?: Error | null) => void;

/** What this file uses of ws's Sender (lib/sender.js). */
interface SenderInstance {
  /** 0 (DEFAULT) while nothing is queued inside ws (no compression, no Blob being read). */
  _state: number;
  _queue: unknown[];
  sendFrame(list: Buffer[], cb?: SendCallback): void;
}

interface SenderClass {
  frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[];
}

const senderClass = (wsModule as unknown as { Sender?: unknown }).Sender;
const Sender: SenderClass | undefined = typeof (senderClass as Partial<SenderClass> | undefined)?.frame === 'function' ? senderClass as SenderClass : undefined;

function senderOf(ws: WebSocket): SenderInstance | undefined {
  const s = (ws as unknown as { _sender?: Partial<SenderInstance> | null })._sender;
  return typeof s?.sendFrame === 'function' && typeof s._state === 'number' && Array.isArray(s._queue) ? s as SenderInstance : undefined;
}

const OPCODE_BINARY = 0x02;
const FIN = 0x80;

/** An unmasked WebSocket frame header for a binary message of `length` bytes, then `head`. */
function headerWith(length: number, head: Buffer): Buffer {
  const ext = length > 0xffff ? 8 : length > 125 ? 2 : 0;
  const buf = Buffer.allocUnsafe(2 + ext + head.length);
  buf[0] = FIN | OPCODE_BINARY;
  if (ext === 0) {
    buf[1] = length;
  } else if (ext === 2) {
    buf[1] = 126;
    buf.writeUInt16BE(length, 2);
  } else {
    buf[1] = 127;
    buf.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2);
    buf.writeUInt32BE(length >>> 0, 6);
  }
  head.copy(buf, 2 + ext);
  return buf;
}

/**
 * Sends `head` + `body` as one binary message on `ws` (which must be open); `body` may come in
 * pieces (a relayed frame as the socket reads cut it), written one after another, uncopied.
 */
export function sendParts(ws: WebSocket, masked: boolean, head: Buffer, body: Buffer | readonly Buffer[], cb?: SendCallback): void {
  const sender = senderOf(ws);
  const pieces = Buffer.isBuffer(body) ? [body] : body;
  let length = head.length;
  for (const piece of pieces) length += piece.length;
  if (sender?._state !== 0 || sender._queue.length > 0 || (masked && !Sender)) {
    ws.send(Buffer.concat([head, ...pieces], length), { binary: true }, cb);
    return;
  }
  if (!masked) {
    // ws writes at most two buffers a frame: the rest follow straight after (nothing can come between).
    const [first, ...rest] = pieces;
    if (first === undefined) { sender.sendFrame([headerWith(length, head)], cb); return; }
    sender.sendFrame([headerWith(length, head), first], rest.length === 0 ? cb : undefined);
    rest.forEach((piece, i) => sender.sendFrame([piece], i === rest.length - 1 ? cb : undefined));
    return;
  }
  // The one copy masking needs; ws masks this fresh buffer in place (readOnly: false).
  const message = Buffer.concat([head, ...pieces], length);
  sender.sendFrame(Sender!.frame(message, { fin: true, opcode: OPCODE_BINARY, mask: true, readOnly: false, rsv1: false }), cb); // eslint-disable-line @typescript-eslint/no-non-null-assertion -- checked above
}
