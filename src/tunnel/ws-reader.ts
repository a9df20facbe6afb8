/**
 * Reads a tunnel's incoming WebSocket frames ahead of ws's Receiver, which hands out a frame
 * only whole: a 64 KiB bulk DATA message nearly always straddles two socket reads, and ws
 * then copies it into a buffer of its own. Here a message that is exactly one bulk DATA frame
 * goes to its stream in pieces, as views of the socket's read buffers (unmasked in place when
 * the peer masks), once the frame is complete (see deliver() and MAX_VIEWS). Every other frame (packed small frames, fragments, control frames, text,
 * anything malformed) is handed to ws's own Receiver as its bytes came, so ws keeps the whole
 * of RFC 6455 as it enforces it: pings, pongs, the close handshake, and every error and its
 * close code. The wire is unchanged.
 */
import { createRequire } from 'node:module';
import type { WebSocket } from 'ws';
import { FrameType, HEADER_SIZE } from './frame.js';
import { BULK_DATA } from './outbox.js';
import { MAX_DATA_FRAME } from './stream.js';

/** Where the pieces of a bulk DATA frame go, in order: its head, then its payload. */
export interface BulkSink {
  /**
   * A DATA frame of `length` payload bytes on `stream` begins; its pieces follow. True: they
   * must come as one buffer (a stream with wholeFrames, whose chunks each become a frame).
   */
  dataHead(stream: number, length: number): boolean;
  /** The next bytes of that frame's payload (views of the socket's buffers, or small copies). */
  dataPiece(piece: Buffer): void;
}

/** What the reader uses of ws's Receiver (lib/receiver.js): a Writable of raw frame bytes. */
export interface FrameReceiver {
  write(chunk: Buffer): boolean;
  /** Bytes written that the Receiver has not processed yet (a deferred event, a paused socket). */
  readonly writableLength: number;
  /** Set as soon as a frame is refused (the 'error' event follows on a later tick). */
  readonly errored: Error | null;
  /** Set once the peer's close frame has been read. */
  readonly writableEnded: boolean;
  on(event: 'error' | 'conclude', listener: () => void): unknown;
}

export interface ReaderOptions {
  /** The accepting side: frames must be masked (the dialing side: they must not be). */
  isServer: boolean;
  /** ws's maxPayload (0: none): a longer frame is ws's to refuse (1009). */
  maxPayload: number;
}

/** A bulk message: one DATA frame whose payload the sender did not pack with others (outbox.ts). */
const MIN_BULK = HEADER_SIZE + BULK_DATA;
const MAX_BULK = HEADER_SIZE + MAX_DATA_FRAME;
/**
 * A piece smaller than this is copied rather than viewed: a peer sending one byte per read
 * must not make a stream hold one Buffer object per byte, nor pin a large read buffer with a
 * few bytes of it.
 */
export const MIN_PIECE = 8 * 1024;
/** Small pieces are gathered into buffers of up to this many bytes. */
const GATHER_BYTES = 16 * 1024;
/**
 * A frame that came in more pieces than this is copied into one buffer at its end. Each piece
 * is a chunk of its stream, and a consumer writing to a socket pays a system call (and a
 * pause and a 'drain') per chunk of 16 KiB or more: a frame straddling two plain reads (the
 * usual case, 64 KiB reads) is worth two chunks rather than a copy; five TLS reads are not.
 */
export const MAX_VIEWS = 2;
/** A WebSocket frame header is at most 14 bytes; a bulk message's DATA header follows it. */
const MAX_HELD = 14 + HEADER_SIZE;

interface BufferUtil { unmask(buffer: Buffer, mask: Buffer): void }

/** ws's choice: the bufferutil addon when it loads (and WS_NO_BUFFER_UTIL is unset), else JavaScript. */
const bufferUtil: BufferUtil | undefined = ((): BufferUtil | undefined => {
  if (process.env.WS_NO_BUFFER_UTIL) return undefined;
  try {
    const loaded = createRequire(import.meta.url)('bufferutil') as Partial<BufferUtil>;
    return typeof loaded.unmask === 'function' ? loaded as BufferUtil : undefined;
  } catch {
    return undefined;
  }
})();

/** Unmasks `buf` in place with `mask` (its first byte at mask[0]), as ws's buffer-util does. */
export function unmaskInPlace(buf: Buffer, mask: Buffer): void {
  if (bufferUtil && buf.length >= 32) {
    bufferUtil.unmask(buf, mask);
    return;
  }
  for (let i = 0; i < buf.length; i++) buf[i] = (buf[i] ?? 0) ^ (mask[i & 3] ?? 0);
}

const AT_FRAME = 0;
const PASSING = 1;
const BULK = 2;

export class WsFrameReader {
  private readonly receiver: FrameReceiver;
  private readonly sink: BulkSink;
  private readonly opts: ReaderOptions;
  private state = AT_FRAME;
  /** ws's Receiver has stopped reading (an error, or the peer's close frame): so do we. */
  private done = false;
  /** A data message was begun and not finished: its continuation frames are ws's. */
  private fragmented = false;
  /** The first bytes of a frame, when they came split over reads (a fresh buffer each time). */
  private held: Buffer | undefined;
  private heldLength = 0;
  /** Bytes of the frame being passed to ws, or of the bulk payload, still to come. */
  private remaining = 0;
  /** The bulk frame's mask rotated by 0..3 (undefined: unmasked, or a zero mask). */
  private masks: Buffer[] | undefined;
  /** Offset into the bulk payload of the next piece (it picks the mask's rotation). */
  private offset = 0;
  /** Small pieces gathered (see MIN_PIECE). */
  private gather: Buffer | undefined;
  private gathered = 0;
  /** The bulk frame being read goes to its stream as one buffer (see BulkSink.dataHead). */
  private whole = false;
  /** Pieces of the bulk frame being read, delivered when it ends (see deliver()). */
  private waiting: Buffer[] = [];

  constructor(receiver: FrameReceiver, sink: BulkSink, opts: ReaderOptions, fragmented = false) {
    this.receiver = receiver;
    this.sink = sink;
    this.opts = opts;
    this.fragmented = fragmented;
    const stop = (): void => { this.done = true; };
    receiver.on('error', stop);
    receiver.on('conclude', stop);
  }

  /** Reads one chunk of the socket's bytes. */
  push(chunk: Buffer): void {
    const end = chunk.length;
    let pos = 0;
    /** Start of the bytes of this chunk to hand to ws (-1: none yet). */
    let passFrom = -1;
    while (pos < end && !this.done) {
      if (this.state === PASSING) {
        const n = Math.min(this.remaining, end - pos);
        if (passFrom < 0) passFrom = pos;
        pos += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = AT_FRAME;
        continue;
      }
      if (this.state === BULK) {
        const n = Math.min(this.remaining, end - pos);
        this.piece(chunk.subarray(pos, pos + n));
        pos += n;
        continue;
      }
      // At a frame's first byte (some of its first bytes may be held from the last read).
      const used = this.frameStart(chunk, pos);
      if (used < 0) {
        // Too few bytes to decide: hold them (at most MAX_HELD), handing nothing of them on yet.
        if (passFrom >= 0) this.pass(chunk.subarray(passFrom, pos));
        passFrom = -1;
        this.hold(chunk, pos, end);
        pos = end;
        continue;
      }
      if (this.state === PASSING) {
        const held = this.held?.subarray(0, this.heldLength);
        if (held) {
          // The frame's first bytes came in the last read: ws gets them first.
          if (passFrom >= 0) this.pass(chunk.subarray(passFrom, pos));
          passFrom = -1;
          this.held = undefined;
          this.heldLength = 0;
          this.pass(held);
        }
        continue; // the frame's bytes in this chunk are passed from `pos` on
      }
      // A bulk DATA frame: what came before goes to ws first, so events keep their order.
      if (passFrom >= 0) this.pass(chunk.subarray(passFrom, pos));
      passFrom = -1;
      if (this.stopped()) break;
      pos += used;
      this.held = undefined;
      this.heldLength = 0;
      this.whole = this.sink.dataHead(this.bulkStream, this.remaining);
      if (this.remaining === 0) this.endBulk();
    }
    if (passFrom >= 0 && !this.done) this.pass(passFrom === 0 && pos === end ? chunk : chunk.subarray(passFrom, pos));
  }

  /** Whether ws's Receiver has stopped reading: it refused a frame or read the close frame. */
  stopped(): boolean {
    return this.done;
  }

  private pass(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.receiver.write(bytes);
    // Only a write can stop it (the events that say so come later, or after this write).
    if (this.receiver.errored !== null || this.receiver.writableEnded) this.done = true;
  }

  /** Stream id of the bulk frame being read (set by frameStart). */
  private bulkStream = 0;

  /**
   * Reads the frame starting at held bytes + chunk[pos..]: -1 when more bytes are needed to
   * judge it; otherwise the state is PASSING (with `remaining` the frame's bytes still to come
   * after the held ones) or BULK (returns how many of this chunk's bytes its headers take).
   */
  private frameStart(chunk: Buffer, pos: number): number {
    const heldLength = this.heldLength;
    const available = heldLength + chunk.length - pos;
    if (available < 2) return -1;
    const b0 = this.byteAt(chunk, pos, 0);
    const b1 = this.byteAt(chunk, pos, 1);
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    const lengthBytes = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const headerSize = 2 + lengthBytes + (masked ? 4 : 0);
    if (available < headerSize) return -1;
    let length = len7;
    let tooLong = false;
    if (lengthBytes === 2) {
      length = this.byteAt(chunk, pos, 2) * 256 + this.byteAt(chunk, pos, 3);
    } else if (lengthBytes === 8) {
      const high = ((this.byteAt(chunk, pos, 2) << 24) | (this.byteAt(chunk, pos, 3) << 16) | (this.byteAt(chunk, pos, 4) << 8) | this.byteAt(chunk, pos, 5)) >>> 0;
      const low = ((this.byteAt(chunk, pos, 6) << 24) | (this.byteAt(chunk, pos, 7) << 16) | (this.byteAt(chunk, pos, 8) << 8) | this.byteAt(chunk, pos, 9)) >>> 0;
      // ws refuses above 2^53 - 1 (1009) as soon as it reads the length: nothing follows.
      tooLong = high > 0x1f_ffff;
      length = tooLong ? Infinity : high * 0x1_0000_0000 + low;
    }
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const candidate = fin && (b0 & 0x70) === 0 && opcode === 0x02 && !this.fragmented && masked === this.opts.isServer && !tooLong &&
      length >= MIN_BULK && length <= MAX_BULK && (this.opts.maxPayload <= 0 || length <= this.opts.maxPayload) &&
      this.receiver.writableLength === 0;
    if (candidate) {
      if (available < headerSize + HEADER_SIZE) return -1;
      const maskAt = headerSize - 4;
      const mask: [number, number, number, number] = masked ? [this.byteAt(chunk, pos, maskAt), this.byteAt(chunk, pos, maskAt + 1), this.byteAt(chunk, pos, maskAt + 2), this.byteAt(chunk, pos, maskAt + 3)] : [0, 0, 0, 0];
      const west = (i: number): number => this.byteAt(chunk, pos, headerSize + i) ^ mask[i & 3]!; // eslint-disable-line @typescript-eslint/no-non-null-assertion -- i & 3 < 4
      const stream = ((west(1) << 24) | (west(2) << 16) | (west(3) << 8) | west(4)) >>> 0;
      const dataLength = ((west(5) << 24) | (west(6) << 16) | (west(7) << 8) | west(8)) >>> 0;
      // Exactly one DATA frame on a real stream; anything else is decoded (and judged) as today.
      if (west(0) === FrameType.data && stream !== 0 && dataLength === length - HEADER_SIZE) {
        this.state = BULK;
        this.bulkStream = stream;
        this.remaining = dataLength;
        this.offset = HEADER_SIZE;
        this.masks = masked && (mask[0] | mask[1] | mask[2] | mask[3]) !== 0 ? rotations(mask) : undefined;
        return headerSize + HEADER_SIZE - heldLength;
      }
    }
    // Follow message fragmentation as ws does (a bad sequence is ws's to refuse).
    if (opcode === 0x00 && fin) this.fragmented = false;
    else if ((opcode === 0x01 || opcode === 0x02) && !fin) this.fragmented = true;
    this.state = PASSING;
    this.remaining = headerSize + length - heldLength;
    return 0;
  }

  /** Byte `i` of the frame that starts with the held bytes, then chunk[pos..]. */
  private byteAt(chunk: Buffer, pos: number, i: number): number {
    return (i < this.heldLength ? this.held?.[i] : chunk[pos + i - this.heldLength]) ?? 0;
  }

  /** Keeps chunk[pos..end) as the first bytes of a frame still to be judged. */
  private hold(chunk: Buffer, pos: number, end: number): void {
    this.held ??= Buffer.allocUnsafe(MAX_HELD);
    chunk.copy(this.held, this.heldLength, pos, end);
    this.heldLength += end - pos;
  }

  /** The next bytes of the bulk payload: unmasked in place, then handed on (small ones gathered). */
  private piece(bytes: Buffer): void {
    const mask = this.masks?.[this.offset & 3];
    if (mask) unmaskInPlace(bytes, mask);
    this.offset += bytes.length;
    this.remaining -= bytes.length;
    const last = this.remaining === 0;
    if (bytes.length >= MIN_PIECE) {
      this.flushGathered();
      this.deliver(bytes);
    } else {
      let from = 0;
      while (from < bytes.length) {
        this.gather ??= Buffer.allocUnsafe(Math.min(GATHER_BYTES, bytes.length - from + this.remaining));
        const n = Math.min(this.gather.length - this.gathered, bytes.length - from);
        bytes.copy(this.gather, this.gathered, from, from + n);
        this.gathered += n;
        from += n;
        if (this.gathered === this.gather.length) this.flushGathered();
      }
    }
    if (last) this.endBulk();
  }

  private flushGathered(): void {
    const gather = this.gather;
    if (!gather || this.gathered === 0) return;
    const n = this.gathered;
    this.gather = undefined;
    this.gathered = 0;
    this.deliver(n === gather.length ? gather : gather.subarray(0, n));
  }

  /**
   * Pieces wait for the end of their frame and go on together, in one turn: a consumer that
   * writes them to a socket (corked for the turn) makes one system call per frame, as with
   * whole frames, not one per read the frame straddled (with many streams, the frames on
   * either side of a read's end are for different streams). A frame reaches its stream when
   * it is complete, as it did through ws; at most one frame's views wait here.
   */
  private deliver(piece: Buffer): void {
    this.waiting.push(piece);
  }

  private endBulk(): void {
    this.flushGathered();
    const waiting = this.waiting;
    if (waiting.length > MAX_VIEWS || (this.whole && waiting.length > 1)) {
      // Many short reads (TLS hands out 16 KiB at a time): one copy, as ws made, costs less
      // than a write per piece further on.
      this.waiting = [];
      this.sink.dataPiece(Buffer.concat(waiting));
    } else if (waiting.length > 0) {
      this.waiting = [];
      for (const piece of waiting) this.sink.dataPiece(piece);
    }
    this.masks = undefined;
    this.state = AT_FRAME;
  }
}

function rotations(mask: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let r = 0; r < 4; r++) out.push(Buffer.from([mask[r & 3] ?? 0, mask[(r + 1) & 3] ?? 0, mask[(r + 2) & 3] ?? 0, mask[(r + 3) & 3] ?? 0]));
  return out;
}

/** What this file reads of a ws WebSocket's internals (lib/websocket.js, lib/receiver.js). */
interface WsInternals {
  _socket?: { listeners(event: 'data'): ((...args: unknown[]) => void)[]; on(event: 'data', fn: (chunk: Buffer) => void): unknown; removeListener(event: 'data', fn: (...args: unknown[]) => void): unknown; pause(): unknown } | null;
  _receiver?: (FrameReceiver & {
    _state?: unknown; _bufferedBytes?: unknown; _allowSynchronousEvents?: unknown; _maxPayload?: unknown;
    _fragmented?: unknown; _isServer?: unknown; _extensions?: unknown;
  }) | null;
}

/**
 * Puts a reader in front of `ws`'s Receiver on its socket, in place of ws's own 'data'
 * listener; undefined (ws reads alone, as before) when ws's internals are not as expected or
 * the Receiver is in the middle of a frame.
 */
export function readAhead(ws: WebSocket, sink: BulkSink): WsFrameReader | undefined {
  const w = ws as unknown as WsInternals;
  const socket = w._socket;
  const r = w._receiver;
  if (!socket || !r || typeof r.write !== 'function' || typeof r.on !== 'function') return undefined;
  if (r._state !== 0 || r._bufferedBytes !== 0 || r.writableLength !== 0) return undefined;
  if (r._allowSynchronousEvents !== true || typeof r._maxPayload !== 'number' || typeof r._isServer !== 'boolean') return undefined;
  if (typeof r._extensions !== 'object' || r._extensions === null || Object.keys(r._extensions).length > 0) return undefined;
  const wsListeners = socket.listeners('data').filter((fn) => fn.name === 'socketOnData');
  const wsOnData = wsListeners[0];
  if (wsListeners.length !== 1 || !wsOnData) return undefined;
  const reader = new WsFrameReader(r, sink, { isServer: r._isServer, maxPayload: r._maxPayload }, r._fragmented !== 0);
  const onData = (chunk: Buffer): void => {
    if (reader.stopped()) return;
    reader.push(chunk);
    // As ws does when its Receiver holds bytes back (it resumes the socket on 'drain').
    if (r.writableLength > 0) socket.pause();
  };
  socket.removeListener('data', wsOnData);
  socket.on('data', onData);
  const detach = (): void => { socket.removeListener('data', onData as (...args: unknown[]) => void); };
  r.on('error', detach);
  r.on('conclude', detach);
  return reader;
}
