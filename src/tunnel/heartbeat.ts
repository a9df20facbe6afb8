/**
 * A session's heartbeat: it pings the peer every interval, times the round trip for the
 * windows (a few pings one after another as the session starts, then one per interval), and
 * tells the session when the peer has been silent too long: more than 1.5 intervals, checked
 * every half interval, so a dead peer is dropped within two intervals of its last word.
 */
import type { Clock } from './flow.js';
import type { TunnelLink } from './link.js';

/** RTT samples a session takes as it starts, one after another (see HeartbeatOptions.earlyPings). */
export const EARLY_PINGS = 4;

export interface HeartbeatOptions {
  intervalMs: number;
  /** RTT samples taken as the session starts, before one per interval (default EARLY_PINGS). */
  earlyPings?: number | undefined;
  clock: Clock;
  /** A round trip timed (clock ms). */
  onRtt(ms: number): void;
  /** The peer said something for the first time: the connection is live, not a stale handshake. */
  onAlive(): void;
  /** The peer has been silent for `silentMs`: the session ends. */
  onSilent(silentMs: number): void;
  /** Every tick (half an interval): the session's own upkeep. */
  onTick(): void;
}

export class Heartbeat {
  /** The peer has said something (a pong, a ping or a frame) since the session began. */
  aliveSeen = false;
  private lastHeard = Date.now();
  private lastPing = 0;
  private stopped = false;
  /** When our outstanding ping left (clock ms), or undefined when none is outstanding. */
  private pingSentAt: number | undefined;
  /** RTT samples taken so far (the first few are taken one after another: earlyPings). */
  private earlySamples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly link: TunnelLink, private readonly opts: HeartbeatOptions) {
    // Ticking at half the interval bounds detection of a silent peer to two intervals.
    this.timer = setInterval(() => this.tick(), Math.max(10, opts.intervalMs / 2));
    this.timer.unref();
    // A first RTT sample right away, so the first transfer's windows can grow.
    this.ping();
  }

  /** Sends a ping, timing it for the RTT estimate unless one is already out. */
  ping(): void {
    if (!this.link.open) return;
    this.pingSentAt ??= this.opts.clock();
    this.link.ping();
  }

  onPong(): void {
    if (this.pingSentAt !== undefined) {
      this.opts.onRtt(this.opts.clock() - this.pingSentAt);
      this.pingSentAt = undefined;
      // The first ping goes out while both nodes are still starting (a loopback tunnel's took
      // ~10 ms): a few more right after give the windows the link's round trip, as they grow
      // against the least recent sample.
      if (++this.earlySamples < (this.opts.earlyPings ?? EARLY_PINGS)) setTimeout(this.earlyPing, 50).unref();
    }
    this.heard();
  }

  private readonly earlyPing = (): void => {
    if (!this.stopped) this.ping();
  };

  /** The peer said something. */
  heard(): void {
    this.lastHeard = Date.now();
    if (!this.aliveSeen) {
      this.aliveSeen = true;
      this.opts.onAlive();
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private tick(): void {
    this.opts.onTick();
    const limit = 1.5 * this.opts.intervalMs;
    // Silent for 1.5 intervals while we ping every interval: the peer missed a pong.
    if (Date.now() - this.lastHeard > limit) {
      // Timers run before the poll phase: after this process was paused or blocked, the peer's
      // pings may be sitting unread in the socket. Decide after the poll phase has read them.
      setImmediate(() => {
        const silentMs = Date.now() - this.lastHeard;
        if (!this.stopped && silentMs > limit) this.opts.onSilent(silentMs);
      });
      return;
    }
    if (this.link.open && Date.now() - this.lastPing >= this.opts.intervalMs - 5) {
      this.lastPing = Date.now();
      this.ping();
    }
  }
}
