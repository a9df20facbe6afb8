/**
 * WebSocket frames built by hand (RFC 6455 section 5.2), for tests that play a peer ws would
 * never be: reserved bits, any opcode, a declared length that is not the payload's, masked or not.
 */

export interface WsFrame { fin?: boolean; rsv?: number; opcode: number; payload: Buffer; mask?: Buffer | null; length?: number }

/** One WebSocket frame's bytes; `mask` null: unmasked; `length` overrides the declared length. */
export function wsFrame(f: WsFrame): Buffer {
  const length = f.length ?? f.payload.length;
  const masked = f.mask !== null && f.mask !== undefined;
  const ext = length > 0xffff ? 8 : length > 125 ? 2 : 0;
  const head = Buffer.alloc(2 + ext + (masked ? 4 : 0));
  head[0] = ((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode;
  head[1] = (masked ? 0x80 : 0) | (ext === 8 ? 127 : ext === 2 ? 126 : length);
  if (ext === 2) head.writeUInt16BE(length, 2);
  if (ext === 8) {
    head.writeUInt32BE(Math.floor(length / 0x1_0000_0000) >>> 0, 2);
    head.writeUInt32BE(length >>> 0, 6);
  }
  const payload = Buffer.from(f.payload);
  if (masked) {
    const mask = f.mask!;
    mask.copy(head, 2 + ext);
    for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] ?? 0) ^ (mask[i & 3] ?? 0);
  }
  return Buffer.concat([head, payload]);
}
