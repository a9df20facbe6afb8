/**
 * A stream relayed through this node as frames, not as two Duplex streams and two pipes: each
 * side is a RelayLeg in its session's stream map (the stream a peer opened here, and the one
 * this node opened onward), and what one leg receives its partner sends. Heads (1xx and final
 * RESPONSE), DATA, TRAILERS and END pass in order; a RESET or a lost tunnel on either side
 * resets the other with the same code, message and node.
 *
 * Each side keeps its own flow control. DATA a leg receives counts against its receive window
 * until its partner has sent it on, within the partner's send window and the tunnel's; only
 * then is the window granted back. A slow side therefore stops the fast side's grants: a
 * relayed stream holds at most about one window of each direction, as the pipes did.
 */
import { isFailureCode, type ResetCode } from '../errors.js';
import type { ReceiveWindow } from './flow.js';
import { encodeReset, encodeTrailers, encodeWindow, type OpenHead, type ResetInfo, type ResponseHead } from './frame.js';
import { dataRefusal, MAX_DATA_FRAME, MAX_INFORMATIONAL, type FrameSink, type StreamEnd } from './stream.js';

/** A code received from a peer, passed on: one this node does not know reads as tunnel_lost. */
function passedCode(code: string): ResetCode {
  return code === 'cancel' || isFailureCode(code) ? code : 'tunnel_lost';
}

/** What a leg sends through: its session (a TunnelSession is one). */
export interface RelaySink extends FrameSink {
  /** Sends a DATA frame of `length` bytes given in `pieces`, uncopied when bulky. */
  sendPieces(stream: number, pieces: readonly Buffer[], length: number): void;
}

/** A DATA frame received, waiting to be sent on: its payload in the pieces the socket reads cut it into. */
interface Chunk {
  pieces: Buffer[];
  length: number;
}

/** Takes the first `n` bytes (fewer than it holds) off `chunk`, as pieces. */
function takeFront(chunk: Chunk, n: number): Buffer[] {
  const out: Buffer[] = [];
  let left = n;
  // n < chunk.length: a piece is always left.
  for (let piece = chunk.pieces[0]; piece !== undefined && left > 0; piece = chunk.pieces[0]) {
    if (piece.length <= left) {
      out.push(piece);
      chunk.pieces.shift();
      left -= piece.length;
    } else {
      out.push(piece.subarray(0, left));
      chunk.pieces[0] = piece.subarray(left);
      left = 0;
    }
  }
  chunk.length -= n;
  return out;
}

export interface RelayLegOptions {
  /** The OPEN head, on the leg the peer opened (undefined on the leg this node opened). */
  head?: OpenHead | undefined;
  /** This leg's receive window (the session's flow makes it). */
  window: ReceiveWindow;
  /** What the peer lets this leg send before its first grant (its X-West-Window). */
  sendWindow: number;
}

export class RelayLeg implements StreamEnd {
  readonly id: number;
  readonly head: OpenHead | undefined;
  readonly window: ReceiveWindow;
  /**
   * A bulk DATA frame comes in the pieces the socket reads cut it into, uncopied; the leg
   * gathers them and its partner sends them as one frame, as it came (relay-leg's own copy-free
   * way to what TunnelStream.wholeFrames asks of the reader with a copy).
   */
  readonly wholeFrames = false;
  lastActivity = Date.now();
  private readonly sink: RelaySink;
  /** The DATA frame being received (its pieces so far), and how many of its bytes are still to come. */
  private frame: Chunk | undefined;
  private frameLeft = 0;
  private partner: RelayLeg | undefined;
  private sendWindow: number;
  /** DATA the partner received, waiting for this leg's window, the tunnel's credit or room. */
  private queue: Chunk[] = [];
  private waiting = false;
  /** END (with trailers before it, if any) is due once the queue has left. */
  private endDue = false;
  private trailers: string[] | undefined;
  private trailersSeen = false;
  /** The peer's END arrived: it sends no more DATA on this leg. */
  private inEnded = false;
  /** This leg's END has been sent. */
  private outEnded = false;
  /** The final RESPONSE has passed (1xx heads after it are dropped). */
  private answered = false;
  /** 1xx heads this leg has sent. */
  private informed = 0;
  /** Released from its session: finished both ways, or reset. */
  closed = false;

  constructor(sink: RelaySink, id: number, opts: RelayLegOptions) {
    this.sink = sink;
    this.id = id;
    this.head = opts.head;
    this.window = opts.window;
    this.sendWindow = opts.sendWindow;
  }

  /** Joins two legs: what either receives, the other sends. */
  static join(a: RelayLeg, b: RelayLeg): void {
    a.partner = b;
    b.partner = a;
  }

  /** Resets this leg and its partner (the idle sweep, a bad frame, a failed relay). */
  reset(code: ResetCode, message: string, node = this.sink.localName): void {
    const info = { code, message, node };
    this.resetOut(info);
    this.partner?.resetOut(info);
  }

  // ---- frames from this leg's peer (the session calls these) ----

  onResponse(head: ResponseHead): void {
    // Heads travel back along the stream: from the leg this node opened to the one the peer did.
    const to = this.partner;
    if (this.head || !to || this.closed) return;
    this.touch();
    if (head.status < 200 && head.status !== 101) {
      if (!this.answered) to.sendInformation(head);
      return;
    }
    if (this.answered) return;
    this.answered = true;
    if (!Number.isInteger(head.status) || head.status > 999) {
      this.reset('origin_error', `the origin answered with status ${head.status}, which HTTP does not allow`);
      return;
    }
    to.sink.sendResponse(to.id, head);
  }

  onData(data: Buffer): void {
    if (this.onDataStart(data.length)) this.onDataPiece(data);
  }

  /** As TunnelStream.onDataStart: false when the leg takes none of the frame (all counted back). */
  onDataStart(length: number): boolean {
    if (this.inEnded || this.closed) {
      this.sink.consumed(length);
      return false;
    }
    const refused = dataRefusal(this.id, length, this.window.credit);
    if (refused) {
      this.sink.consumed(length);
      this.reset('internal', refused);
      return false;
    }
    if (length === 0) return false;
    this.frame = { pieces: [], length };
    this.frameLeft = length;
    return true;
  }

  onDataPiece(data: Buffer): void {
    if (this.inEnded || this.closed) {
      this.sink.consumed(data.length);
      return;
    }
    if (!this.window.onReceive(data.length)) {
      this.sink.consumed(data.length);
      this.reset('internal', `peer overran the flow-control window of stream ${this.id}`);
      return;
    }
    this.touch();
    const frame = this.frame ?? { pieces: [], length: data.length };
    frame.pieces.push(data);
    this.frameLeft -= data.length;
    if (this.frameLeft > 0) return;
    this.frame = undefined;
    this.partner?.forward(frame);
  }

  onTrailers(headers: string[]): void {
    if (this.inEnded || this.closed || this.trailersSeen) return;
    this.trailersSeen = true;
    const to = this.partner;
    if (to && headers.length > 0 && to.sink.supports('trailers')) to.trailers = headers;
  }

  onEnd(): void {
    if (this.inEnded || this.closed) return;
    this.inEnded = true;
    this.partner?.endOut();
    this.finishIfDone();
  }

  onReset(info: ResetInfo): void {
    if (this.closed) return;
    this.release();
    this.partner?.resetOut(info);
  }

  onWindow(increment: number): void {
    this.sendWindow += increment;
    this.pump();
  }

  onTunnelClosed(info: ResetInfo): void {
    this.onReset(info);
  }

  // ---- what the partner hands this leg to send ----

  private sendInformation(head: ResponseHead): void {
    // A 1xx the peer cannot take is dropped, as TunnelStream.inform drops it, and so are
    // those past MAX_INFORMATIONAL (no window holds them back).
    if (this.closed || !this.sink.supports('informational') || !Number.isInteger(head.status) || head.status < 100) return;
    if (++this.informed > MAX_INFORMATIONAL) return;
    this.sink.sendResponse(this.id, head);
  }

  private forward(chunk: Chunk): void {
    if (this.closed) return;
    this.queue.push(chunk);
    if (!this.waiting) this.pump();
  }

  private endOut(): void {
    this.endDue = true;
    if (this.queue.length === 0) this.sendEnd();
  }

  private resetOut(info: ResetInfo): void {
    if (this.closed) return;
    this.sink.send(encodeReset(this.id, { code: passedCode(info.code), message: info.message, node: info.node }));
    this.release();
  }

  /** Sends what the queue holds, as far as this leg's window, the tunnel's credit and room allow. */
  private pump(): void {
    this.waiting = false;
    const queue = this.queue;
    for (let chunk = queue[0]; chunk !== undefined; chunk = queue[0]) {
      if (this.closed) return;
      const n = Math.min(this.sendWindow, this.sink.sendCredit(), MAX_DATA_FRAME, chunk.length);
      if (n <= 0) {
        // Out of this leg's window: its WINDOW frame resumes us. Out of the tunnel's: a grant does.
        if (this.sendWindow > 0) this.wait((resume) => this.sink.whenCredit(resume));
        return;
      }
      if (this.sink.congested()) {
        this.wait((resume) => this.sink.whenWritable(resume));
        return;
      }
      let pieces: Buffer[];
      if (n === chunk.length) {
        queue.shift();
        pieces = chunk.pieces;
      } else {
        pieces = takeFront(chunk, n);
      }
      this.sendWindow -= n;
      this.sink.spendCredit(n);
      this.sink.sendPieces(this.id, pieces, n);
      this.touch();
      this.partner?.sentOn(n);
    }
    if (this.endDue && !this.outEnded) this.sendEnd();
  }

  private wait(register: (resume: () => void) => void): void {
    this.waiting = true;
    register(() => { if (this.waiting) this.pump(); });
  }

  /** `n` bytes this leg received have left through its partner: its window may grant them back. */
  private sentOn(n: number): void {
    this.window.onConsumed(n);
    if (!this.closed && !this.inEnded) {
      const increment = this.window.grant();
      if (increment > 0) this.sink.send(encodeWindow(this.id, increment));
    }
    this.sink.consumed(n);
    if (!this.closed) this.finishIfDone();
  }

  private sendEnd(): void {
    if (this.closed || this.outEnded) return;
    this.outEnded = true;
    if (this.trailers) this.sink.send(encodeTrailers(this.id, this.trailers));
    this.sink.sendEnd(this.id);
    this.finishIfDone();
  }

  /** Done both ways, and every byte received here has left through the partner. */
  private finishIfDone(): void {
    if (this.inEnded && this.outEnded && this.window.unread === 0) this.release();
  }

  private touch(): void {
    const now = Date.now();
    this.lastActivity = now;
    if (this.partner) this.partner.lastActivity = now;
  }

  /** Leaves the session: bytes received and not sent on are counted back, the window closed. */
  private release(): void {
    this.closed = true;
    this.waiting = false;
    this.queue = [];
    this.frame = undefined;
    const unread = this.window.unread;
    if (unread > 0) {
      this.window.onConsumed(unread);
      this.sink.consumed(unread);
    }
    this.window.close();
    this.sink.release(this.id);
  }
}
