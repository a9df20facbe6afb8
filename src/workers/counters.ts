/**
 * The request counters and histograms of `/metrics` for the whole node: each worker above 0
 * sends its own (prom-client's JSON form) with its summary every second; worker 0 sums them
 * with its own when scraped (control/metrics.ts). A worker that exits leaves its last counts
 * behind as retired, so the node's counters never go down when a worker is restarted (its
 * successor counts from 0 again).
 */
import { AggregatorRegistry } from 'prom-client';
import type { MetricsJson } from '../control/metrics.js';

export class WorkerCounters {
  private readonly live = new Map<number, MetricsJson>();
  private retired: MetricsJson = [];

  /** Worker `worker`'s latest counts. */
  set(worker: number, metrics: MetricsJson): void {
    this.live.set(worker, metrics);
  }

  /** Worker `worker` exited: its last counts stay in the sums. */
  gone(worker: number): void {
    const last = this.live.get(worker);
    if (!last) return;
    this.live.delete(worker);
    this.retired = sum([this.retired, last]);
  }

  /** Every other worker's counts, live and retired, to be summed with worker 0's. */
  all(): MetricsJson[] {
    return [this.retired, ...this.live.values()].filter((m) => m.length > 0);
  }
}

/**
 * Sums sets of metrics by name and labels, as prom-client's cluster support does. Its
 * aggregated metrics answer get() with the summed value itself (a plain object, at once).
 */
function sum(sets: MetricsJson[]): MetricsJson {
  return AggregatorRegistry.aggregate(sets).getMetricsAsArray().map((m) => (m as unknown as { get(): MetricsJson[number] }).get());
}
