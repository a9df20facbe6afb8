/**
 * What the status page remembers between refreshes: the last failures and tunnel drops (a ring
 * buffer), and each mapping's responses by status over the last minutes. The node's state
 * snapshot only holds counts since start; an operator asking "is it failing now?" needs both.
 */
import type { EventEmitter } from 'node:events';
import type { NodeEvents, TunnelEvent } from '../events.js';
import type { AccessRecord } from '../events.js';

/** How many failures and tunnel drops the page lists. */
export const RECENT_ERRORS = 50;
/** How far back "recent" status counts reach. */
export const RECENT_WINDOW_MS = 15 * 60_000;
const BUCKET_MS = 60_000;

export type RecentError =
  | {
    kind: 'request';
    time: Date;
    id: string;
    listener: string;
    mapping: string;
    status: number;
    code: string;
    /** The node where it failed. */
    node: string;
    message: string;
  }
  | {
    kind: 'tunnel';
    time: Date;
    side: 'client' | 'server';
    /** Server URL (side client) or the peer's name (side server). */
    tunnel: string;
    peer: string;
    /** WebSocket close code, when known. */
    code: number | undefined;
    message: string;
  };

/** Counts per status code for one listener/mapping pair, in one minute. */
interface Bucket {
  start: number;
  counts: Map<number, number>;
}

export class RecentActivity {
  private readonly events: EventEmitter<NodeEvents>;
  private readonly errors: RecentError[] = [];
  /** Key: listener + NUL + mapping. Buckets oldest first. */
  private readonly buckets = new Map<string, Bucket[]>();
  private readonly now: () => number;

  private readonly onAccess = (r: AccessRecord): void => this.recordAccess(r);
  private readonly onTunnel = (e: TunnelEvent): void => this.recordTunnel(e);

  constructor(events: EventEmitter<NodeEvents>, now: () => number = Date.now) {
    this.events = events;
    this.now = now;
    events.on('access', this.onAccess);
    events.on('tunnel', this.onTunnel);
  }

  /** Stops listening to the node's events. Idempotent. */
  close(): void {
    this.events.off('access', this.onAccess);
    this.events.off('tunnel', this.onTunnel);
  }

  /** The remembered failures and drops, newest first. */
  recentErrors(): RecentError[] {
    return [...this.errors].reverse();
  }

  /** Responses by status over the last RECENT_WINDOW_MS for one listener and mapping ('-': none matched). */
  statusCounts(listener: string, mapping: string): Map<number, number> {
    const total = new Map<number, number>();
    const since = this.now() - RECENT_WINDOW_MS;
    for (const b of this.buckets.get(key(listener, mapping)) ?? []) {
      if (b.start + BUCKET_MS <= since) continue;
      for (const [status, n] of b.counts) total.set(status, (total.get(status) ?? 0) + n);
    }
    return total;
  }

  private recordAccess(r: AccessRecord): void {
    const now = this.now();
    const k = key(r.listener, r.mapping);
    let list = this.buckets.get(k);
    if (!list) this.buckets.set(k, list = []);
    const start = now - (now % BUCKET_MS);
    let last = list.at(-1);
    if (last?.start !== start) list.push(last = { start, counts: new Map() });
    last.counts.set(r.status, (last.counts.get(r.status) ?? 0) + 1);
    // Old buckets go as new ones come, so memory stays at one window per mapping.
    while (list[0] !== undefined && list[0].start + BUCKET_MS <= now - RECENT_WINDOW_MS) list.shift();

    if (r.failure) {
      this.remember({
        kind: 'request', time: new Date(now), id: r.id, listener: r.listener, mapping: r.mapping, status: r.status,
        code: r.failure.code, node: r.failure.node, message: r.failure.message,
      });
    }
  }

  private recordTunnel(e: TunnelEvent): void {
    if (e.up) return;
    const why = e.reason ? `closed ${e.code ?? ''} (${e.reason})` : `closed${e.code === undefined ? '' : ` ${e.code}`}`;
    this.remember({
      kind: 'tunnel', time: new Date(this.now()), side: e.side, tunnel: e.side === 'client' ? (e.url ?? e.peer) : e.peer,
      peer: e.peer, code: e.code, message: why,
    });
  }

  private remember(entry: RecentError): void {
    this.errors.push(entry);
    if (this.errors.length > RECENT_ERRORS) this.errors.shift();
  }
}

function key(listener: string, mapping: string): string {
  return `${listener}\u0000${mapping}`;
}
