/**
 * One stream inside a tunnel: a Duplex whose writable side becomes DATA frames (never more
 * than the peer's window) and whose readable side yields the peer's DATA, granting the peer
 * more window only as the consumer reads (flow.ts decides how much, and grows the window for a
 * fast consumer). Nothing here buffers more than one window.
 */
import { Duplex } from 'node:stream';
import type { ResetCode } from '../errors.js';
import type { Feature } from './features.js';
import { ReceiveWindow, RttEstimator } from './flow.js';
import {
  encodeReset, encodeTrailers, encodeWindow,
  type OpenHead, type ResetInfo, type ResponseHead,
} from './frame.js';

/** Largest DATA payload put in one frame, and accepted in one (doc/protocol.md). */
export const MAX_DATA_FRAME = 64 * 1024;

/**
 * Bytes a stream's writable side takes before write() asks the writer to wait: well under one
 * frame, so a writer out of window (an origin faster than the tunnel) holds about the chunk it
 * already read, not a frame more, while a node carries a thousand such streams.
 */
export const WRITE_HIGH_WATER = 16 * 1024;
/**
 * Why a DATA frame of `length` bytes must reset its stream `id`, whose window grants `credit`
 * (undefined: it may come in).
 */
export function dataRefusal(id: number, length: number, credit: number): string | undefined {
  if (length > MAX_DATA_FRAME) return `peer sent a DATA frame of ${length} bytes on stream ${id}; a frame holds at most ${MAX_DATA_FRAME}`;
  if (length > credit) return `peer overran the flow-control window of stream ${id}`;
  return undefined;
}

/** 1xx heads (102, 103...) passed on per stream; more are dropped. */
export const MAX_INFORMATIONAL = 16;

/** What a stream needs from the session that owns it. */
export interface FrameSink {
  readonly localName: string;
  send(frame: Buffer, cb?: (err?: Error | null) => void): void;
  /** Sends a RESPONSE frame (what send(encodeResponse(stream, head)) would, without a buffer of its own). */
  sendResponse(stream: number, head: ResponseHead): void;
  /** Sends an END frame (as send(encodeEnd(stream), cb) would). */
  sendEnd(stream: number, cb?: (err?: Error | null) => void): void;
  /**
   * Sends a DATA frame of `payload`, which is not copied: a writer must leave a chunk as it is
   * once written (as Node's own sources do; a net.Socket's writes keep their chunks too).
   */
  sendData(stream: number, payload: Buffer, cb?: (err?: Error | null) => void): void;
  /** True while the tunnel holds as much as it should: DATA writers wait (see whenWritable). */
  congested(): boolean;
  /** Calls `resume` once, when the tunnel can take more (or is closed). */
  whenWritable(resume: () => void): void;
  /**
   * A writer given room is about to write about `n` bytes (it reads them first): counted as
   * queued until the next turn, so that room wakes only as many writers as it can take.
   */
  expectData(n: number): number;
  /** The writer counted by expectData (which returned `turn`) has written: the count goes. */
  expectDone(n: number, turn: number): void;
  /** The stream is finished (both ways or reset); the session drops it. */
  release(id: number): void;
  /** Whether the peer can receive `feature` (see handshake.ts). */
  supports(feature: Feature): boolean;
  /**
   * Bytes the tunnel's own window still lets this side send, across all streams (Infinity
   * without a connection window); `spendCredit` takes some, `whenCredit` waits for a grant.
   */
  sendCredit(): number;
  spendCredit(n: number): void;
  whenCredit(resume: () => void): void;
  /**
   * A stream's consumer took `n` bytes (or they were dropped). The tunnel's window had them back
   * on arrival (tunnel-flow.ts); a stream window that grew meanwhile raises the tunnel's, granted now.
   */
  consumed(n: number): void;
}

/**
 * What a session needs of each stream in its map: a TunnelStream, or one leg of a stream this
 * node relays (relay-leg.ts). The session hands it the frames of its id.
 */
export interface StreamEnd {
  readonly id: number;
  /** The OPEN head, on a stream the peer opened. */
  readonly head: OpenHead | undefined;
  /** What the peer may send on it, and how much to grant back (flow.ts). */
  readonly window: ReceiveWindow;
  /** Whether a bulk DATA frame must reach it whole (see TunnelStream.wholeFrames). */
  readonly wholeFrames: boolean;
  /** Last time a byte moved either way (ms since epoch), for the idle timeout. */
  readonly lastActivity: number;
  reset(code: ResetCode, message: string, node?: string): void;
  onResponse(head: ResponseHead): void;
  onData(data: Buffer): void;
  onDataStart(length: number): boolean;
  onDataPiece(data: Buffer): void;
  onTrailers(headers: string[]): void;
  onEnd(): void;
  onReset(info: ResetInfo): void;
  onWindow(increment: number): void;
  onTunnelClosed(info: ResetInfo): void;
}

/** A stream ended by a RESET frame, ours or the peer's. */
export class StreamResetError extends Error {
  readonly info: ResetInfo;
  /** True when the peer sent the reset, false when this side did. */
  readonly remote: boolean;

  constructor(info: ResetInfo, remote: boolean) {
    super(`${info.node}: ${info.message}`);
    this.name = 'StreamResetError';
    this.info = info;
    this.remote = remote;
  }
}

type WriteCallback = (err: Error | null | undefined) => void;

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  cb: (err?: Error | null) => void;
}

export class TunnelStream extends Duplex implements StreamEnd {
  readonly id: number;
  /** Set on streams the peer opened. */
  readonly head: OpenHead | undefined;
  /** Set once the RESPONSE frame arrives (on streams this side opened). */
  response: ResponseHead | undefined;
  bytesIn = 0;
  bytesOut = 0;
  /**
   * Its DATA must arrive a frame per chunk, at the cost of a copy (for a consumer that writes
   * each chunk on as a frame: pieces of a frame read ahead of ws would leave as smaller frames).
   * The mesh relay no longer needs it: its legs gather a frame's pieces uncopied (relay-leg.ts).
   */
  wholeFrames = false;
  /** Last time a byte moved either way (ms since epoch), for the idle timeout. */
  lastActivity = Date.now();

  private readonly sink: FrameSink;
  /** What the peer may send us on this stream, and how much to grant back (flow.ts). */
  readonly window: ReceiveWindow;
  private sendWindow: number;
  /** 1xx heads sent so far. */
  private informed = 0;
  private pending: PendingWrite | undefined;
  /**
   * The callback of a write that was sent whole into a tunnel now full: held until the tunnel
   * has room, so the writer reads nothing more meanwhile (see writeFrom).
   */
  private held: ((err?: Error | null) => void) | undefined;
  /** write() said false for a chunk under the high-water mark that it held: 'drain' is ours to emit. */
  private drainOwed = false;
  /** A held write was let go with room counted for the next chunk (expectData): it need not wait for the tunnel. */
  private roomKept = false;
  /** What expectData returned for it. */
  private roomTurn = 0;
  private resetSent = false;
  private pendingTrailers: string[] | undefined;
  /** Fields the peer sent after its body (feature `trailers`), once they arrive. */
  trailers: string[] | undefined;
  private resetReceived = false;

  constructor(sink: FrameSink, id: number, opts: { head?: OpenHead; recvWindow: number; sendWindow: number; window?: ReceiveWindow }) {
    // The read buffer must stay well under the window, or a blocked peer and a consumer that
    // drained the buffer could both wait for a window grant that _read never sends. It follows
    // the initial window, not a grown one: Node only reads it to decide when to call _read,
    // which does nothing here, so a larger one would only hold more.
    super({
      allowHalfOpen: true,
      readableHighWaterMark: Math.min(MAX_DATA_FRAME, Math.floor(opts.recvWindow / 4)),
      writableHighWaterMark: WRITE_HIGH_WATER,
    });
    this.sink = sink;
    this.id = id;
    this.head = opts.head;
    this.window = opts.window ?? new ReceiveWindow({
      initial: opts.recvWindow, max: opts.recvWindow, rtt: new RttEstimator(), clock: () => performance.now(),
    });
    this.sendWindow = opts.sendWindow;
  }

  /** Bytes this side may still send on the stream before the peer grants more. */
  get sendCredit(): number {
    return this.sendWindow;
  }

  /**
   * Sends a 1xx head ahead of the response (on a stream the peer opened), when the peer can
   * take it (feature `informational`); otherwise it is dropped, as before.
   */
  inform(head: ResponseHead): void {
    if (this.destroyed || head.status === 101 || !this.sink.supports('informational')) return;
    // A RESPONSE frame outside 100..999 closes the whole tunnel at a peer (a protocol error):
    // one origin's odd status must cost no more than its own request.
    if (!Number.isInteger(head.status) || head.status < 100 || head.status > 199) return;
    // An origin sending 1xx heads without end would fill the tunnel with them: no window
    // holds them back. Past a few, they are dropped.
    if (++this.informed > MAX_INFORMATIONAL) return;
    this.sink.sendResponse(this.id, head);
  }

  /**
   * Fields to send after the body, just before END (a chunked answer's trailers), when the
   * peer takes them (feature `trailers`); otherwise they are dropped, as before.
   */
  setTrailers(headers: string[]): void {
    if (headers.length > 0 && this.sink.supports('trailers')) this.pendingTrailers = headers;
  }

  /** Whether the peer at the other end of this stream can receive `feature`. */
  peerSupports(feature: Feature): boolean {
    return this.sink.supports(feature);
  }

  /** Sends the response head (on a stream the peer opened). */
  respond(head: ResponseHead): void {
    if (this.destroyed) return;
    if (!Number.isInteger(head.status) || head.status < 100 || head.status > 999) {
      this.reset('origin_error', `the origin answered with status ${head.status}, which HTTP does not allow`);
      return;
    }
    this.lastActivity = Date.now();
    this.sink.sendResponse(this.id, head);
  }

  /** Aborts the stream both ways and tells the peer why. */
  reset(code: ResetCode, message: string, node = this.sink.localName): void {
    if (this.destroyed) return;
    const info = { code, message, node };
    this.sendReset(info);
    this.destroy(new StreamResetError(info, false));
  }

  // ---- called by the session for incoming frames ----

  onResponse(head: ResponseHead): void {
    // A 1xx head (feature `informational`) comes before the final one: passed on, not kept.
    // 101 is the final answer to an upgrade.
    if (head.status < 200 && head.status !== 101) {
      if (!this.response) this.emit('information', head);
      return;
    }
    this.response = head;
    this.lastActivity = Date.now();
    this.emit('response', head);
  }

  onData(data: Buffer): void {
    if (this.onDataStart(data.length)) this.onDataPiece(data);
  }

  /**
   * A DATA frame of `length` bytes begins (its payload follows whole, or in pieces from the
   * WebSocket reader, ws-reader.ts): false when the stream takes none of it (all counted back).
   */
  onDataStart(length: number): boolean {
    // Bytes that will never be read still count against the tunnel's window: give them back.
    if (this.readableEnded || this.destroyed) {
      this.sink.consumed(length);
      return false;
    }
    // A bad frame costs its stream, not the tunnel: the codec has told us which stream it is.
    const refused = dataRefusal(this.id, length, this.window.credit);
    if (refused) {
      this.sink.consumed(length);
      this.reset('internal', refused);
      return false;
    }
    return true;
  }

  /** The next bytes of a DATA frame onDataStart took (pieces of one frame never pass its length). */
  onDataPiece(data: Buffer): void {
    // The stream may have been destroyed since the frame began: the rest is dropped.
    if (this.readableEnded || this.destroyed) {
      this.sink.consumed(data.length);
      return;
    }
    if (!this.window.onReceive(data.length)) {
      this.sink.consumed(data.length);
      this.reset('internal', `peer overran the flow-control window of stream ${this.id}`);
      return;
    }
    this.bytesIn += data.length;
    this.lastActivity = Date.now();
    this.push(data);
  }

  onTrailers(headers: string[]): void {
    if (this.readableEnded || this.destroyed || this.trailers) return;
    this.trailers = headers;
    this.emit('trailers', headers);
  }

  onEnd(): void {
    if (!this.destroyed) this.push(null);
  }

  onReset(info: ResetInfo): void {
    this.resetReceived = true;
    this.destroy(new StreamResetError(info, true));
  }

  onWindow(increment: number): void {
    this.sendWindow += increment;
    this.resumePending();
  }

  private resumePending(): void {
    const p = this.pending;
    if (p && !this.destroyed) {
      this.pending = undefined;
      this.writeFrom(p.chunk, p.offset, p.cb);
    }
  }

  /** The tunnel went away: fail the stream without trying to send anything. */
  onTunnelClosed(info: ResetInfo): void {
    this.resetSent = true;
    this.destroy(new StreamResetError(info, true));
  }

  // ---- Duplex plumbing ----

  override _read(): void {
    // Grants happen in read(), after the chunk has left the buffer (see there).
  }

  /**
   * Every consumption goes through read() (pipe and 'data' via flow(), for-await via
   * 'readable'), so this is where the peer gets its window back. Node calls _read() *before*
   * taking the chunk, and only once per push, so granting there can leave a peer whose window
   * is used up waiting for ever.
   */
  override read(size?: number): Buffer | null {
    const chunk = super.read(size) as Buffer | null;
    this.grantConsumed();
    return chunk;
  }

  /** Grants the peer what the consumer has taken, in batches of at least a quarter window. */
  private grantConsumed(): void {
    const taken = this.window.unread - this.readableLength;
    if (taken <= 0) return;
    this.window.onConsumed(taken);
    if (!this.destroyed && !this.readableEnded) {
      const increment = this.window.grant();
      if (increment > 0) this.sink.send(encodeWindow(this.id, increment));
    }
    // After the stream's grant: a window that just grew has raised the tunnel's, granted here.
    this.sink.consumed(taken);
  }

  /**
   * False also when the chunk, however small, could not leave (out of window, or the tunnel
   * full): a writer that stops on false then holds nothing more until 'drain'.
   */
  override write(chunk: unknown, cb?: WriteCallback): boolean;
  override write(chunk: unknown, encoding: BufferEncoding, cb?: WriteCallback): boolean;
  override write(chunk: unknown, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
    const ok = typeof encoding === 'function' ? super.write(chunk, encoding)
      : encoding === undefined ? super.write(chunk, cb) : super.write(chunk, encoding, cb);
    if (!ok) {
      this.drainOwed = false; // Node emits this one
      return false;
    }
    if (!this.pending && !this.held) return true;
    this.drainOwed = true;
    return false;
  }

  /** A writer that ends has nothing more to read: a held write is let go, and END follows it. */
  override end(cb?: () => void): this;
  override end(chunk: unknown, cb?: () => void): this;
  override end(chunk: unknown, encoding: BufferEncoding, cb?: () => void): this;
  override end(chunk?: unknown, encoding?: BufferEncoding | (() => void), cb?: () => void): this {
    if (typeof chunk === 'function') super.end(chunk as () => void);
    else if (typeof encoding === 'function') super.end(chunk, encoding);
    else if (encoding === undefined) super.end(chunk, cb);
    else super.end(chunk, encoding, cb);
    this.releaseHeld(false);
    return this;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeFrom(chunk, 0, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.pendingTrailers) this.sink.send(encodeTrailers(this.id, this.pendingTrailers));
    this.sink.sendEnd(this.id, cb);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    const cleanlyDone = this.writableFinished && this.readableEnded;
    if (!cleanlyDone && !this.resetReceived) {
      const info = err instanceof StreamResetError
        ? err.info
        : { code: 'cancel', message: err ? err.message : 'stream cancelled', node: this.sink.localName };
      this.sendReset(info);
    }
    const p = this.pending;
    this.pending = undefined;
    const held = this.held;
    this.held = undefined;
    if (held) held(err ?? new Error('stream destroyed'));
    // Bytes left unread are dropped: the stream's window and the budget get them back.
    const unread = this.window.unread;
    if (unread > 0) {
      this.window.onConsumed(unread);
      this.sink.consumed(unread);
    }
    this.window.close();
    this.sink.release(this.id);
    if (p) p.cb(err ?? new Error('stream destroyed'));
    cb(err);
  }

  private sendReset(info: ResetInfo): void {
    if (this.resetSent || this.resetReceived) return;
    this.resetSent = true;
    this.sink.send(encodeReset(this.id, info));
  }

  private writeFrom(chunk: Buffer, offset: number, cb: (err?: Error | null) => void): void {
    while (offset < chunk.length) {
      if (this.destroyed) { cb(new Error('stream destroyed')); return; }
      const n = Math.min(this.sendWindow, this.sink.sendCredit(), MAX_DATA_FRAME, chunk.length - offset);
      if (n <= 0) {
        this.pending = { chunk, offset, cb };
        // Out of the stream's window: its WINDOW resumes us. Out of the tunnel's: the tunnel's does.
        if (this.sendWindow > 0) this.sink.whenCredit(() => this.resumePending());
        return;
      }
      // The tunnel as a whole is full (a bound across all its streams): wait for the socket.
      // A chunk the tunnel kept room for goes.
      if (!this.roomKept && this.sink.congested()) {
        this.pending = { chunk, offset, cb };
        this.sink.whenWritable(() => this.resumePending());
        return;
      }
      const last = offset + n === chunk.length;
      if (this.roomKept) {
        this.roomKept = false;
        this.sink.expectDone(MAX_DATA_FRAME, this.roomTurn);
      }
      this.sendWindow -= n;
      this.sink.spendCredit(n);
      this.bytesOut += n;
      this.lastActivity = Date.now();
      this.sink.sendData(this.id, chunk.subarray(offset, offset + n), last ? (err) => this.sent(cb, err) : undefined);
      offset += n;
    }
    if (chunk.length === 0) this.done(cb);
  }

  /**
   * The last of a chunk is queued. Were the writer told at once that the stream cannot send
   * more now (its window or the tunnel's used up, or the tunnel full), it would read its next
   * chunk, and that chunk would wait here: a thousand streams behind one busy tunnel each held
   * one. So the callback is held until the stream can send, and the writer reads nothing
   * meanwhile (its bytes wait in the kernel, not here).
   */
  private sent(cb: (err?: Error | null) => void, err: Error | null | undefined): void {
    if (err || this.destroyed) {
      this.done(cb, err);
      return;
    }
    this.held = cb;
    this.whenRoom();
  }

  /**
   * Lets a held write go once the tunnel can take more: the tunnel's grant or room in it calls
   * again. A stream out of its own window is not held: its peer grants only as its consumer
   * reads, and a consumer may wait for the END that would follow (the next write waits for the
   * grant instead, as before).
   */
  private whenRoom(): void {
    if (!this.held || this.destroyed) return;
    if (this.sendWindow > 0 && this.sink.sendCredit() <= 0) {
      this.sink.whenCredit(this.onRoom);
      return;
    }
    if (this.sendWindow > 0 && this.sink.congested()) {
      this.sink.whenWritable(this.onRoom);
      return;
    }
    this.releaseHeld(this.sendWindow > 0);
  }

  private readonly onRoom = (): void => {
    this.whenRoom();
  };

  /** Lets a held write go: `expect`, the writer will read and write again soon. */
  private releaseHeld(expect: boolean): void {
    const cb = this.held;
    if (!cb) return;
    this.held = undefined;
    if (expect) {
      this.roomTurn = this.sink.expectData(MAX_DATA_FRAME);
      this.roomKept = true;
    }
    this.done(cb);
  }

  /** Completes a write, and emits the 'drain' write() promised when it said false on its own. */
  private done(cb: (err?: Error | null) => void, err?: Error | null): void {
    cb(err ?? null);
    if (this.drainOwed && !this.pending && !this.held && this.writableLength === 0 && !this.destroyed && !this.writableEnded) {
      this.drainOwed = false;
      this.emit('drain');
    }
  }
}
