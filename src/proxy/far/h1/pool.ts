/**
 * Keep-alive connections to plain-HTTP origins, per host:port: an idle one is reused (the most
 * recently used first), else a new one is dialled under the node's connect timeout. A
 * connection waits idle at most the origin's Keep-Alive hint less a second, or 4 s without
 * one (below Node's and most servers' own idle timeouts, so the origin rarely closes first),
 * and only so many wait per origin and in all.
 */
import { OriginConnection } from './connection.js';

/** Idle time without a Keep-Alive hint from the origin (undici's default, which west used). */
export const DEFAULT_IDLE_MS = 4000;
/** A Keep-Alive hint is trusted up to this. */
const MAX_IDLE_MS = 600_000;
/** Idle connections kept per origin, and in all; one more is closed instead of kept. */
export const MAX_IDLE_PER_ORIGIN = 64;
export const MAX_IDLE = 512;

/** Why no connection: a connect timeout, or the socket's error. */
export type ConnectFailure = { timeout: true } | { timeout: false; error: NodeJS.ErrnoException };

export class H1Pool {
  private readonly idle = new Map<string, OriginConnection[]>();
  private idleCount = 0;
  private readonly all = new Set<OriginConnection>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly connectTimeoutMs: () => number;
  private closed = false;

  constructor(connectTimeoutMs: () => number) {
    this.connectTimeoutMs = connectTimeoutMs;
  }

  /** Idle connections now, for tests and the pool's own bound. */
  get idleConnections(): number {
    return this.idleCount;
  }

  /** Open connections, idle or in use. */
  get openConnections(): number {
    return this.all.size;
  }

  /**
   * A connection to `host`:`port` (host without brackets), idle or new (`fresh`: always new).
   * `done` is called once, synchronously for an idle one.
   */
  acquire(host: string, port: number, fresh: boolean, done: (conn: OriginConnection | undefined, failure?: ConnectFailure) => void): void {
    const key = `${host}:${port}`;
    if (!fresh) {
      const conn = this.takeIdle(key);
      if (conn) {
        done(conn);
        return;
      }
    }
    if (this.closed) {
      done(undefined, { timeout: false, error: Object.assign(new Error('origin pools are closed'), { code: 'ECONNABORTED' }) });
      return;
    }
    const conn = OriginConnection.connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }, key);
    const socket = conn.socket;
    this.all.add(conn);
    conn.onClosed = (c) => this.forget(c);
    let settled = false;
    const settle = (failure?: ConnectFailure): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('error', onError);
      if (failure) {
        socket.destroy();
        done(undefined, failure);
      } else {
        done(conn);
      }
    };
    const onError = (error: NodeJS.ErrnoException): void => settle({ timeout: false, error });
    const timer = setTimeout(() => settle({ timeout: true }), this.connectTimeoutMs());
    socket.once('connect', () => settle());
    socket.once('error', onError);
  }

  /** An exchange is done with `conn`: kept for the next request, or closed. */
  release(conn: OriginConnection, idleLimitMs: number): void {
    if (this.closed || !conn.usable || idleLimitMs <= 0) {
      conn.destroy();
      return;
    }
    let list = this.idle.get(conn.key);
    if (!list) this.idle.set(conn.key, list = []);
    if (list.length >= MAX_IDLE_PER_ORIGIN || this.idleCount >= MAX_IDLE) {
      conn.destroy();
      return;
    }
    // A socket paused for a slow reader must read again, or the origin's close goes unseen.
    if (conn.socket.isPaused()) conn.socket.resume();
    conn.idleLimitMs = Math.min(idleLimitMs, MAX_IDLE_MS);
    conn.idleSince = Date.now();
    list.push(conn);
    this.idleCount++;
    this.sweeper ??= setInterval(() => this.sweep(), 1000).unref();
  }

  close(): void {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const conn of this.all) conn.destroy();
  }

  /** The newest idle connection that is still good; stale ones are closed on the way. */
  private takeIdle(key: string): OriginConnection | undefined {
    const list = this.idle.get(key);
    if (!list) return undefined;
    const now = Date.now();
    let conn: OriginConnection | undefined;
    while ((conn = list.pop()) !== undefined) {
      this.idleCount--;
      if (conn.usable && now - conn.idleSince < conn.idleLimitMs) return conn;
      conn.idleSince = 0;
      conn.destroy();
    }
    return undefined;
  }

  private forget(conn: OriginConnection): void {
    this.all.delete(conn);
    if (conn.idleSince === 0) return;
    const list = this.idle.get(conn.key);
    const at = list ? list.indexOf(conn) : -1;
    if (list && at >= 0) {
      list.splice(at, 1);
      this.idleCount--;
    }
    conn.idleSince = 0;
  }

  /** Closes connections idle past their limit; stops when none is idle. */
  private sweep(): void {
    const now = Date.now();
    for (const [key, list] of this.idle) {
      const kept = list.filter((conn) => {
        if (now - conn.idleSince < conn.idleLimitMs) return true;
        conn.idleSince = 0;
        this.idleCount--;
        conn.destroy();
        return false;
      });
      if (kept.length === 0) this.idle.delete(key);
      else if (kept.length !== list.length) this.idle.set(key, kept);
    }
    if (this.idleCount === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
