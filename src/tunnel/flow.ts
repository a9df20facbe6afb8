/**
 * Flow-control arithmetic, apart from the streams and sessions that use it: the round-trip
 * estimate of a tunnel, the receive window of a stream or of a whole tunnel (granted back as
 * the consumer reads, grown when the consumer drains it within a few round trips, as quic-go's
 * flowcontrol and grpc-go's BDP estimator do) and the node-wide budget the windows draw from.
 */

/** Milliseconds from an arbitrary origin (performance.now by default; tests pass their own). */
export type Clock = () => number;

/** How many recent samples the minimum round trip is taken over. */
const MIN_RTT_SAMPLES = 8;

/**
 * Round-trip time of one tunnel, from its WebSocket pings: smoothed (RFC 6298's 1/8 gain), for
 * the control port, and the least of the recent samples, for the windows. A ping's round trip
 * includes the time both event loops took to get to it: on a busy node a loopback tunnel's
 * pings take milliseconds. The least recent sample is the link's own delay, as BBR's min RTT.
 */
export class RttEstimator {
  /** Undefined until the first sample: windows do not grow on RTT grounds without one. */
  smoothedMs: number | undefined;
  latestMs: number | undefined;
  private readonly recent: number[] = [];

  sample(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.latestMs = ms;
    this.smoothedMs = this.smoothedMs === undefined ? ms : this.smoothedMs + (ms - this.smoothedMs) / 8;
    this.recent.push(ms);
    if (this.recent.length > MIN_RTT_SAMPLES) this.recent.shift();
  }

  /** The least of the last few samples (undefined before the first). */
  get minMs(): number | undefined {
    return this.recent.length ? Math.min(...this.recent) : undefined;
  }
}

/** A node's budget lends at most this fraction (1/n) of itself to streams ahead of their answers. */
export const SPECULATIVE_SHARE = 4;

/**
 * A node-wide bound on what its receive windows may commit: the bytes peers may still send
 * (granted credit) plus the bytes received and not yet read, summed over every stream of every
 * tunnel. Grants are cut to fit, but a window is always topped up to `floor`, so every stream
 * keeps moving however many there are.
 */
export class FlowBudget {
  /** Bytes committed now. */
  committed = 0;
  /**
   * Credit granted to streams as they opened, ahead of any byte of their answer (openAt):
   * at most a SPECULATIVE_SHARE-th of the limit, so requests that are never answered (or
   * streams that stay open quietly) cannot take the room every other stream grows into.
   */
  speculative = 0;

  /** `limit` may be changed later (a reloaded config); `floor` is what every window keeps. */
  constructor(public limit: number, readonly floor: number) {}

  /** Room left under the limit (negative when over, e.g. right after many streams opened). */
  room(): number {
    return this.limit - this.committed;
  }

  /** What streams opening now may still be granted ahead of their answers. */
  speculativeRoom(): number {
    return this.limit / SPECULATIVE_SHARE - this.speculative;
  }

  /** How much of `want` a window already committing `holding` bytes may grant now. */
  allow(want: number, holding: number): number {
    return Math.max(0, Math.min(want, Math.max(this.room(), this.floor - holding)));
  }
}

/** How far a node's receive windows may grow, and the budget they share (config: west.*). */
export interface FlowLimits {
  /** Largest window a stream's grows to (west.maxStreamWindow). */
  maxRecvWindow: number;
  /** Largest window a tunnel's own grows to (west.maxConnectionWindow). */
  maxConnectionWindow: number;
  /** The node's budget (west.memoryBudget). */
  budget?: FlowBudget | undefined;
}

export interface ReceiveWindowOptions {
  /** The window granted up front (the handshake's X-West-Window for a stream). */
  initial: number;
  /** Auto-tuning never grows the window past this. */
  max: number;
  rtt: RttEstimator;
  clock: Clock;
  /** Node-wide budget this window's grants are carved from; none for a tunnel's own window. */
  budget?: FlowBudget | undefined;
  /** Called when auto-tuning grows the window. */
  onGrow?: ((size: number) => void) | undefined;
}

/** A window grows at most this many times over at one grant. */
export const MAX_GROWTH_STEP = 8;

/**
 * The receive side of one flow-controlled channel. The peer may send `credit` more bytes; the
 * receiver aims to keep credit plus its unread bytes at `size`, granting the difference back
 * in batches of at least a quarter window. `size` starts at the initial window and grows (up
 * to `max`) whenever the consumer drained a fraction of it (a quarter or more) in less than
 * 4 x fraction x RTT since the last adjustment: the window, not the link, was the limit. It
 * grows towards twice what the consumer's rate moves in a round trip: at least doubling, at
 * most MAX_GROWTH_STEP times over (the first time, straight there). A stream this side opens
 * may start wider (openAt).
 */
export class ReceiveWindow {
  /** The window the receiver aims for now. */
  size: number;
  /** Bytes the peer may still send before it must wait for a grant. */
  credit: number;
  /** Largest size this window has reached (for the control port). */
  peak: number;
  received = 0;
  consumed = 0;
  private readonly max: number;
  private readonly rtt: RttEstimator;
  private readonly clock: Clock;
  private readonly budget: FlowBudget | undefined;
  private readonly onGrow: ((size: number) => void) | undefined;
  private grown = false;
  private epochAt: number | undefined;
  private epochConsumed = 0;
  /** Bytes received and not read when the epoch began. */
  private epochUnread = 0;
  /** This window's share of the budget as last counted (credit + unread bytes). */
  private accounted = 0;
  /** Of this window's credit, what openAt granted and no byte has used yet. */
  private speculative = 0;

  constructor(opts: ReceiveWindowOptions) {
    this.size = opts.initial;
    this.peak = opts.initial;
    this.credit = opts.initial;
    this.max = Math.max(opts.max, opts.initial);
    this.rtt = opts.rtt;
    this.clock = opts.clock;
    this.budget = opts.budget;
    this.onGrow = opts.onGrow;
    this.account();
  }

  /** Bytes received and not yet read by the consumer. */
  get unread(): number {
    return this.received - this.consumed;
  }

  /** Counts `n` arriving bytes; false when they overrun the credit granted. */
  onReceive(n: number): boolean {
    if (n > this.credit) return false;
    // The first epoch starts with the first byte: how long the window takes to drain from there.
    if (this.received === 0) this.epochAt = this.clock();
    if (this.speculative > 0) this.spendSpeculative(Math.min(n, this.speculative));
    this.credit -= n;
    this.received += n;
    return true;
  }

  /** The consumer took `n` bytes (or they were dropped unread). */
  onConsumed(n: number): void {
    if (n <= 0) return;
    this.consumed += n;
    this.account();
  }

  /** The increment to grant the peer now (0: nothing yet). */
  grant(): number {
    const due = this.size - this.credit - this.unread;
    if (due <= 0 || due < this.size / 4) return 0;
    this.maybeGrow();
    const want = this.size - this.credit - this.unread;
    const holding = this.credit + this.unread;
    // Whole bytes: the wire carries whole bytes, and a fraction counted here and not there
    // would be credit the peer does not have (the wait below would then wait for ever).
    const n = Math.floor(this.budget ? this.budget.allow(want, holding) : want);
    // Under budget pressure, wait for a worthwhile grant unless nothing would be left to move.
    if (n <= 0 || (n < want && n < this.size / 16 && holding > 0)) return 0;
    this.credit += n;
    this.account();
    return n;
  }

  /**
   * A stream this side opens starts at `target` (what the tunnel's streams have needed) instead
   * of the initial window, as far as the budget allows (at most half its room, and within
   * what the budget lends ahead of answers: FlowBudget.speculative), so that its first round
   * trip moves what later ones would. Returns the extra credit to grant the peer now (0: none).
   */
  openAt(target: number): number {
    if (this.received > 0 || target <= this.size) return 0;
    const lend = this.budget ? this.budget.speculativeRoom() : Infinity;
    if (lend <= 0) return 0;
    const before = this.size;
    this.grow(Math.min(target, this.size + lend), true);
    if (this.budget && this.size > before) {
      this.speculative = this.size - before;
      this.budget.speculative += this.speculative;
    }
    return this.grant();
  }

  /** `n` bytes of the answer used credit openAt lent: the budget may lend it again. */
  private spendSpeculative(n: number): void {
    this.speculative -= n;
    if (this.budget) this.budget.speculative -= n;
  }

  /**
   * Raises the window to at least `size` (a tunnel's window keeps ahead of its streams'); the
   * extra is granted with the next grant().
   */
  ensureAtLeast(size: number): void {
    const next = Math.min(size, this.max);
    if (next > this.size) this.setSize(next);
  }

  /** The channel is finished: its bytes no longer count against the budget. */
  close(): void {
    if (this.speculative > 0) this.spendSpeculative(this.speculative);
    if (this.budget) this.budget.committed -= this.accounted;
    this.accounted = 0;
    this.credit = 0;
  }

  private maybeGrow(): void {
    // Judged at every grant (a quarter window), not only past half a window as quic-go does:
    // the test is a rate (faster than size / (4 x RTT)), whatever the fraction, and a long link
    // reaches its window in half as many round trips.
    const inEpoch = this.consumed - this.epochConsumed;
    if (inEpoch < this.size / 4) return;
    const rtt = this.rtt.minMs;
    if (rtt === undefined || this.epochAt === undefined) return;
    const now = this.clock();
    const allowed = 4 * (inEpoch / this.size) * rtt;
    const took = now - this.epochAt;
    // Bytes that sat unread when the epoch began say how fast the reader catches up, not how
    // fast the link delivers: a reader back from a pause drains its whole window at once.
    if (took < allowed && this.epochUnread < this.size / 4) this.grow(this.size * allowed / Math.max(took, 0.01) / 2);
    this.epochAt = now;
    this.epochConsumed = this.consumed;
    this.epochUnread = this.unread;
  }

  /**
   * Grows towards `target` (twice the bytes the consumer's rate moves in a round trip): the
   * first time straight there, later by 2 to MAX_GROWTH_STEP times; `exact` (a stream opened
   * at the tunnel's learned size) to `target` itself. Never past `max`, and only with room in
   * the budget.
   */
  private grow(target: number, exact = false): void {
    // A reader whose rate the window already covers twice over gains nothing from more (and a
    // slow reader's node would only hold more of its bytes).
    if (target <= this.size) return;
    // The first growth has the link's own evidence: the first bytes came as fast as the link
    // brings them and the window, not the reader, held them back. Stepping at most 8x a round
    // trip from there would take a long link three more round trips to reach its need. Later
    // growths step, as the estimate then includes a reader that may be slowing down.
    let next = exact ? target : Math.max(this.size * 2, target);
    if (this.grown && !exact) next = Math.min(next, this.size * MAX_GROWTH_STEP);
    next = Math.min(next, this.max);
    // Growing needs room in the budget for the extra (as quic-go's allowWindowIncrease): for
    // at least a doubling; a bigger step takes at most half the room, so that streams growing
    // at the same time all get some.
    if (this.budget) {
      const room = this.budget.room();
      if (room < Math.min(next, this.size * 2) - this.size) return;
      next = Math.min(next, Math.max(this.size * 2, this.size + room / 2));
    }
    if (next <= this.size) return;
    this.grown = true;
    this.setSize(next);
    this.onGrow?.(this.size);
  }

  private setSize(size: number): void {
    this.size = Math.floor(size);
    this.peak = Math.max(this.peak, size);
  }

  private account(): void {
    if (!this.budget) return;
    const now = this.credit + this.unread;
    this.budget.committed += now - this.accounted;
    this.accounted = now;
  }
}
