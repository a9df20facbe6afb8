/**
 * What each worker of a node runs (`west.workers` above 1). Worker 0 runs the whole node: the
 * tunnel server (its peers' connections are its own), the control port, the `en` listeners
 * (they reach the server's peers) and, like every worker, the `ea` listeners and the tunnel
 * clients. Workers above 0 run the `ea` listeners and the tunnel clients only; their listening
 * ports are shared with worker 0's by node:cluster, which hands each new connection to the
 * next worker in turn. Each worker's tunnel connections join the node's one pool at the server.
 */
import type { NodeConfig } from '../config/types.js';
import type { PoolShare } from '../tunnel/client.js';

/** The environment the primary gives a worker: its index, the count and the node's pool id. */
export const WORKER_ENV = { worker: 'WEST_WORKER', workers: 'WEST_WORKERS', pool: 'WEST_POOL_ID' } as const;

/** This process's place among the workers, when the primary started it; undefined otherwise. */
export function shareFromEnv(env: NodeJS.ProcessEnv, isWorker: boolean): PoolShare | undefined {
  if (!isWorker) return undefined;
  const worker = Number(env[WORKER_ENV.worker]);
  const workers = Number(env[WORKER_ENV.workers]);
  const id = env[WORKER_ENV.pool] ?? '';
  if (!Number.isInteger(worker) || !Number.isInteger(workers) || workers < 2 || worker < 0 || worker >= workers || !/^[0-9a-f]{32}$/.test(id)) {
    return undefined;
  }
  return { id, worker, workers };
}

/** The part of `config` that worker `worker` runs. */
export function workerPart(config: NodeConfig, worker: number): NodeConfig {
  if (worker === 0) return config;
  const { server: _server, control: _control, ...rest } = config;
  return { ...rest, listeners: config.listeners.filter((l) => l.target.kind === 'ea') };
}
