/**
 * The sending side of a TunnelSession: frames queued through one turn of the event loop leave
 * together at its end, packed into as few WebSocket messages as possible (outbox.ts), in one
 * write; DATA writers wait while the tunnel holds TUNNEL_HIGH_WATER bytes, and room wakes
 * only as many of them as it can take.
 */
import { HEADER_SIZE } from './frame.js';
import type { TunnelLink } from './link.js';
import { Outbox } from './outbox.js';

/**
 * Bytes queued for the tunnel socket (in ws and Node's socket buffer, and frames packed this
 * turn) past which DATA writers wait for it to drain: a bound on the tunnel as a whole,
 * whatever the number of streams (see congested()).
 */
export const TUNNEL_HIGH_WATER = 256 * 1024;

export type SendCallback = (err?: Error | null) => void;

export class SessionOut {
  /** Bytes of frames queued so far (what the control port shows as sent). */
  bytesOut = 0;
  /** Frames waiting for the end of this event-loop turn. */
  private readonly outbox = new Outbox();
  private flushScheduled = false;
  private readonly flushNow = (): void => this.flush();
  /** DATA writers waiting for the tunnel to drain, woken in the order they came. */
  private writers: (() => void)[] = [];
  private readonly afterWrite = (): void => this.wakeWriters();
  /** Bytes writers given room are about to write (expectData), counted as queued until the next turn. */
  private expected = 0;
  private expectedUntil: NodeJS.Immediate | undefined;
  /** Which turn's expectations `expected` counts (a token for expectDone). */
  private expectedTurn = 0;

  /**
   * @param closed whether the session has closed (writers then go on at once, to find it closed)
   * @param closedError the error a send on a closed tunnel fails with
   */
  constructor(private readonly link: TunnelLink, private readonly closed: () => boolean, private readonly closedError: () => Error) {}

  private get shut(): boolean {
    return this.closed() || !this.link.open;
  }

  /**
   * Queues a frame. The frames of one request (OPEN, END; RESPONSE, DATA, END; window grants)
   * come from several ticks of one I/O callback, and under load from many streams at once:
   * they leave together at the end of this turn. `cb` is called at once (so a stream's END
   * leaves with its last DATA): writers are paced before they encode a frame, by congested().
   */
  send(frame: Buffer, cb?: SendCallback): void {
    if (this.refused(cb)) return;
    this.bytesOut += frame.length;
    this.outbox.push(frame);
    this.scheduleFlush();
    cb?.(null);
  }

  /** An END frame; `cb` as send()'s. */
  end(stream: number, cb?: SendCallback): void {
    if (this.refused(cb)) return;
    this.bytesOut += HEADER_SIZE;
    this.outbox.end(stream);
    this.scheduleFlush();
    cb?.(null);
  }

  /** A frame whose payload is `text` (a head), encoded straight into this turn's messages. */
  text(type: number, stream: number, text: string): void {
    if (this.shut) return;
    const before = this.outbox.bytes;
    this.outbox.text(type, stream, text);
    this.bytesOut += this.outbox.bytes - before;
    this.scheduleFlush();
  }

  data(stream: number, payload: Buffer, cb?: SendCallback): void {
    if (this.refused(cb)) return;
    this.bytesOut += HEADER_SIZE + payload.length;
    this.outbox.data(stream, payload);
    this.scheduleFlush();
    cb?.(null);
  }

  /** A DATA frame of `length` bytes in `pieces` (a relayed frame, relay-leg.ts), not copied when bulky. */
  pieces(stream: number, pieces: readonly Buffer[], length: number): void {
    if (this.shut) return;
    this.bytesOut += HEADER_SIZE + length;
    this.outbox.dataPieces(stream, pieces, length);
    this.scheduleFlush();
  }

  /** A closed tunnel fails the send (its callback, a turn later); true when it did. */
  private refused(cb: SendCallback | undefined): boolean {
    if (!this.shut) return false;
    if (cb) queueMicrotask(() => cb(this.closedError()));
    return true;
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
  }

  congested(): boolean {
    return this.link.queuedBytes + this.outbox.bytes + this.expected >= TUNNEL_HIGH_WATER;
  }

  /**
   * A writer given room will read, then write, about `n` bytes: counted as queued until the
   * check phase of the next turn (its read comes in that turn's poll phase, or not at all),
   * so that room wakes only as many writers as it can take, and a writer that has nothing
   * to write after all holds the room for one turn only.
   */
  expectData(n: number): number {
    // Nobody waits for room: nothing to keep it from.
    if (this.writers.length === 0) return -1;
    this.expected += n;
    this.expectedUntil ??= setImmediate(this.expectedLapse);
    return this.expectedTurn;
  }

  /** The writer expectData() counted for (`turn`, what it returned) has written: its count goes. */
  expectDone(n: number, turn: number): void {
    if (turn === this.expectedTurn) this.expected = Math.max(0, this.expected - n);
  }

  private readonly expectedLapse = (): void => {
    this.expectedUntil = undefined;
    this.expected = 0;
    this.expectedTurn++;
    this.wakeWriters();
  };

  whenWritable(resume: () => void): void {
    if (this.closed()) queueMicrotask(resume);
    else this.writers.push(resume);
  }

  /** Wakes waiting writers, in order, until the tunnel is full again (all of them once closed). */
  wakeWriters(): void {
    while (this.closed() || !this.congested()) {
      const writer = this.writers.shift();
      if (!writer) break;
      writer();
    }
  }

  /** Writes what this turn queued now (the session is closing: a RESET, the last DATA leave first). */
  flushPending(): void {
    if (!this.outbox.empty) this.flush();
  }

  /** A tunnel that sent nothing lately need not hold a slab for its frames. */
  releaseIdle(): void {
    this.outbox.release();
  }

  /** The session closed: nothing more is counted, and every waiting writer goes on. */
  stop(): void {
    clearImmediate(this.expectedUntil);
    this.wakeWriters();
  }

  private flush(): void {
    this.flushScheduled = false;
    const frames = this.outbox.take();
    // A socket error (EPIPE, ECONNRESET) before ws reports the close is the tunnel going away:
    // the close that follows fails every stream with tunnel_lost (502), never internal (500).
    if (this.shut) return;
    // One write for the whole turn; once the socket has taken it, writers waiting for room go on.
    this.link.writeTurn(frames, this.afterWrite);
  }
}
