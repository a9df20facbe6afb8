/**
 * The flow control of one tunnel as a whole: its round-trip estimate, the receive windows of
 * its streams (made here, so they share the estimate and the node's budget), and, when both
 * sides announced `connection-window`, the tunnel's own window each way (WINDOW on stream 0,
 * doc/protocol.md). The session owns the socket; this owns the arithmetic and who waits.
 */
import type { FlowState } from '../control/state.js';
import { ReceiveWindow, RttEstimator, type Clock, type FlowBudget } from './flow.js';

/** A tunnel's own window opens at this many stream windows (doc/protocol.md). */
export const CONNECTION_WINDOW_STREAMS = 16;
/** Growth cap of a tunnel's own window when the config names none. */
export const DEFAULT_MAX_CONNECTION_WINDOW = 64 * 1024 * 1024;
/** A tunnel's window is kept at least this many times its largest stream window (as quic-go). */
const CONNECTION_WINDOW_LEAD = 1.5;

export interface TunnelFlowOptions {
  /** Window this side grants per stream, and the peer per stream (the handshake's X-West-Window). */
  recvWindow: number;
  sendWindow: number;
  /** Largest a stream's receive window grows to (west.maxStreamWindow). */
  maxRecvWindow?: number | undefined;
  /** Largest the tunnel's own window grows to (west.maxConnectionWindow). */
  maxConnectionWindow?: number | undefined;
  budget?: FlowBudget | undefined;
  /** Both sides announced `connection-window`. */
  connectionWindow: boolean;
  clock: Clock;
  /** Sends a grant of the tunnel's own window to the peer (a WINDOW frame on stream 0). */
  grant(increment: number): void;
}

export class TunnelFlow {
  /** Round-trip time from the session's pings and the peer's pongs: how far windows may grow. */
  readonly rtt = new RttEstimator();
  /** Largest window any stream of this tunnel has been granted (grows with auto-tuning). */
  streamWindowPeak = 0;
  /** The tunnel's own receive window, when negotiated. */
  private readonly recv: ReceiveWindow | undefined;
  /** What the peer's tunnel window still lets us send (Infinity without one). */
  private sendCredit = Infinity;
  /** DATA writers waiting for the peer to grant tunnel window, woken in the order they came. */
  private waiters: (() => void)[] = [];

  constructor(private readonly opts: TunnelFlowOptions) {
    if (!opts.connectionWindow) return;
    // Each direction's tunnel window opens at the receiver's stream window (which the sender
    // knows from X-West-Window) and is raised at once by a WINDOW on stream 0.
    this.sendCredit = opts.sendWindow;
    this.recv = new ReceiveWindow({
      initial: opts.recvWindow,
      max: Math.max(opts.maxConnectionWindow ?? DEFAULT_MAX_CONNECTION_WINDOW, CONNECTION_WINDOW_STREAMS * opts.recvWindow),
      rtt: this.rtt,
      clock: opts.clock,
    });
    this.recv.ensureAtLeast(CONNECTION_WINDOW_STREAMS * opts.recvWindow);
    this.grantDue();
  }

  /** A stream's window grew: the tunnel's keeps ahead of it (one closure for all the streams). */
  private readonly streamGrew = (size: number): void => {
    this.streamWindowPeak = Math.max(this.streamWindowPeak, size);
    this.recv?.ensureAtLeast(CONNECTION_WINDOW_LEAD * size);
  };

  /** A new stream's receive window, sharing this tunnel's RTT estimate and the node's budget. */
  streamWindow(): ReceiveWindow {
    const window = new ReceiveWindow({
      initial: this.opts.recvWindow,
      max: this.opts.maxRecvWindow ?? this.opts.recvWindow,
      rtt: this.rtt,
      clock: this.opts.clock,
      budget: this.opts.budget,
      onGrow: this.streamGrew,
    });
    this.streamWindowPeak = Math.max(this.streamWindowPeak, window.size);
    return window;
  }

  /**
   * A stream this side opened starts at the largest window this tunnel's streams have needed
   * (budget permitting): on a long link its first round trip then moves what later ones would,
   * instead of one initial window. Returns the credit to grant with the OPEN (0: none).
   */
  opened(window: ReceiveWindow): number {
    if (this.streamWindowPeak <= window.size) return 0;
    const increment = window.openAt(this.streamWindowPeak);
    if (increment > 0) this.grantDue();
    return increment;
  }

  /** What flow control looks like now, for the control port; `streamWindowMax` from the open streams. */
  state(streamWindowMax: number): FlowState {
    return { rttMs: this.rtt.smoothedMs, connectionWindow: this.recv?.size, streamWindowMax, streamWindowPeak: this.streamWindowPeak };
  }

  // ---- sending ----

  credit(): number {
    return this.sendCredit;
  }

  spend(n: number): void {
    this.sendCredit -= n;
  }

  /** Calls `resume` once the peer grants tunnel window (or at once when `closed`). */
  whenCredit(resume: () => void, closed: boolean): void {
    if (closed) queueMicrotask(resume);
    else this.waiters.push(resume);
  }

  /** The peer granted tunnel window: writers waiting for it go on, in order, while it lasts. */
  onGrant(increment: number): void {
    if (!this.recv) return; // not negotiated: nothing of ours waits on it
    this.sendCredit += increment;
    const waiting = this.waiters;
    this.waiters = [];
    for (const resume of waiting) {
      if (this.sendCredit <= 0) this.waiters.push(resume);
      else resume();
    }
  }

  /** The tunnel closed: every writer waiting for credit goes on (and finds it closed). */
  wakeAll(): void {
    for (const resume of this.waiters.splice(0)) resume();
  }

  // ---- receiving ----

  /**
   * Counts arriving DATA against the tunnel's window (false when the peer overran it) and
   * gives the bytes back at once. What a stream's reader has not taken yet is bounded by that
   * stream's own window and by the node's budget; were it to hold the tunnel's window too, a
   * few readers that stop reading (clients that pause a download) would stall every other
   * stream of the tunnel. The tunnel's window bounds what is on the way, as TCP's does.
   */
  received(n: number): boolean {
    if (!this.recv) return true;
    if (!this.recv.onReceive(n)) return false;
    this.recv.onConsumed(n);
    this.grantDue();
    return true;
  }

  /**
   * A stream's consumer took `n` bytes, or they were dropped: nothing to count for the
   * tunnel (its window had them back on arrival), but a stream window that grew has raised
   * the tunnel's, whose extra is granted now.
   */
  consumed(_n: number): void {
    this.grantDue();
  }

  private grantDue(): void {
    const increment = this.recv?.grant() ?? 0;
    if (increment > 0) this.opts.grant(increment);
  }
}
