/**
 * The whole node in worker 0's `/state.json` (and the status page and the gauges read from it):
 * each worker above 0 sends the primary a summary of its tunnels and listeners every second,
 * the primary passes it to worker 0, and worker 0 adds the latest of each into its snapshot.
 * Summaries are up to a second old; a worker that exits is dropped at once.
 */
import type { MetricsJson } from '../control/metrics.js';
import type { ListenerState, NodeState, TunnelState } from '../control/state.js';

/** What a worker above 0 reports of itself. */
export interface WorkerPart {
  worker: number;
  tunnels: Pick<TunnelState, 'url' | 'members' | 'streams' | 'bytesIn' | 'bytesOut' | 'connects'>[];
  listeners: Pick<ListenerState, 'key' | 'requests' | 'inFlight' | 'statuses'>[];
  /** The worker's own counters and histograms of /metrics (src/workers/counters.ts). */
  metrics?: MetricsJson;
}

/** How often a worker above 0 reports (ms). */
export const REPORT_MS = 1000;

export function partOf(worker: number, state: NodeState): WorkerPart {
  return {
    worker,
    tunnels: state.tunnels.map((t) => ({ url: t.url, members: t.members ?? (t.connected ? 1 : 0), streams: t.streams, bytesIn: t.bytesIn, bytesOut: t.bytesOut, connects: t.connects })),
    listeners: state.listeners.map((l) => ({ key: l.key, requests: l.requests, inFlight: l.inFlight, statuses: { ...l.statuses } })),
  };
}

/** Worker 0's snapshot with the other workers' latest parts added in. */
export function withParts(state: NodeState, parts: Iterable<WorkerPart>): NodeState {
  const tunnels = new Map(state.tunnels.map((t) => [t.url, { ...t, members: t.members ?? (t.connected ? 1 : 0) }]));
  const listeners = new Map(state.listeners.map((l) => [l.key, { ...l, statuses: { ...l.statuses } }]));
  let reporting = 1;
  for (const part of parts) {
    reporting++;
    for (const p of part.tunnels) {
      const t = tunnels.get(p.url);
      if (!t) continue;
      t.members += p.members ?? 0;
      t.streams += p.streams;
      t.bytesIn += p.bytesIn;
      t.bytesOut += p.bytesOut;
      t.connects += p.connects;
    }
    for (const p of part.listeners) {
      const l = listeners.get(p.key);
      if (!l) continue;
      l.requests += p.requests;
      l.inFlight += p.inFlight;
      for (const [status, n] of Object.entries(p.statuses)) l.statuses[status] = (l.statuses[status] ?? 0) + n;
    }
  }
  return {
    ...state,
    ...(state.workers ? { workers: { ...state.workers, reporting } } : {}),
    tunnels: [...tunnels.values()],
    listeners: [...listeners.values()],
  };
}
