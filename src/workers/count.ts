/**
 * How many workers serve a node (`west.workers`, `--workers`): "auto" is 1 on a machine of 2
 * cores or fewer (a second process there only competes with the first) and one per core above.
 * All workers' connections to a tunnel server join one pool there, which holds at most
 * MAX_POOL_MEMBERS: the count is capped so that workers × connections fits.
 */
import { availableParallelism } from 'node:os';
import type { NodeConfig } from '../config/types.js';
import { MAX_POOL_MEMBERS } from '../tunnel/pool.js';

export interface WorkerCount {
  count: number;
  /** Set when the count asked for was lowered: what was asked, and why it was lowered. */
  asked?: number;
  reason?: string;
}

/** `--workers`' value: a whole number from 1, or "auto"; an Error otherwise. */
export function parseWorkersFlag(value: string): number | 'auto' | Error {
  if (value === 'auto') return 'auto';
  if (/^[0-9]{1,4}$/.test(value) && Number(value) >= 1 && Number(value) <= 1024) return Number(value);
  return new Error(`--workers must be a whole number from 1 to 1024, or "auto" (got ${JSON.stringify(value)})`);
}

export function workerCount(
  config: Pick<NodeConfig, 'workers' | 'clients' | 'server' | 'transit'>, flag?: number | 'auto', cores = availableParallelism(),
): WorkerCount {
  const setting = flag ?? config.workers ?? 'auto';
  const asked = setting === 'auto' ? (cores <= 2 ? 1 : cores) : setting;
  if (asked === 1) return { count: 1 };
  if (config.server && config.transit && config.clients.length > 0) {
    // A peer spreads its streams over all of the pool's connections, and only worker 0 has the
    // tunnel server: a stream relayed through this node to one of its server's peers could land
    // on a worker that cannot reach it.
    return { count: 1, asked, reason: 'this node relays (west.transit) between its tunnel server and the servers it dials' };
  }
  if (config.clients.some((c) => c.mqtt)) {
    // Pools ride on the upgrade's X-West-Pool: a second worker's tunnel through an MQTT broker
    // would claim the node's name against the first's.
    return { count: 1, asked, reason: 'a tunnel of this node runs over MQTT, which carries one connection per name' };
  }
  const widest = Math.max(1, ...config.clients.map((c) => c.connections ?? 1));
  const fits = Math.max(1, Math.floor(MAX_POOL_MEMBERS / widest));
  if (asked > fits) return { count: fits, asked, reason: `a pool holds at most ${MAX_POOL_MEMBERS} connections (workers × wstc connections)` };
  return { count: asked };
}
