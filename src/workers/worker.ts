/**
 * A worker's side of the cluster's channel (the primary's is primary.ts): it says when it is
 * up, when a server cannot pool, and, above worker 0, what it serves (aggregate.ts); worker 0
 * takes the others' summaries into its state.
 */
import { NodeMetrics, type MetricsJson } from '../control/metrics.js';
import type { NodeState } from '../control/state.js';
import type { WestNode } from '../node.js';
import { NO_POOL_REASON, type PoolShare } from '../tunnel/client.js';
import { partOf, REPORT_MS, withParts, type WorkerPart } from './aggregate.js';
import { WorkerCounters } from './counters.js';
import { isWorkerMessage, type WorkerMessage } from './primary.js';

/** A message to this worker's primary (nothing when the channel is gone: the worker exits with it). */
function tell(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

/** Wires a started worker's node to its primary. */
export function joinPrimary(
  node: Pick<WestNode, 'events' | 'state'> & { stateWith: ((s: NodeState) => NodeState) | undefined; countsWith: (() => MetricsJson[]) | undefined },
  share: PoolShare,
): void {
  node.events.on('dial-failed', ({ url, reason }) => { if (reason === NO_POOL_REASON) tell({ west: 'no-pool', url }); });
  if (share.worker === 0) {
    const parts = new Map<number, WorkerPart>();
    const counters = new WorkerCounters();
    process.on('message', (m: unknown) => {
      if (!isWorkerMessage(m)) return;
      if (m.west === 'part') {
        parts.set(m.part.worker, m.part);
        if (m.part.metrics) counters.set(m.part.worker, m.part.metrics);
      } else if (m.west === 'part-gone') {
        parts.delete(m.worker);
        counters.gone(m.worker);
      }
    });
    node.stateWith = (s) => withParts(s, parts.values());
    node.countsWith = () => counters.all();
  } else {
    // This worker has no control port; its counters reach /metrics through worker 0.
    const metrics = new NodeMetrics(() => node.state(), node.events, undefined, false);
    setInterval(() => {
      const state = node.state();
      void metrics.counts(state).then((counts) => tell({ west: 'part', part: { ...partOf(share.worker, state), metrics: counts } }));
    }, REPORT_MS).unref();
  }
  tell({ west: 'ready' });
}
