/**
 * The primary process of a node with `west.workers` above 1 (node:cluster). It serves nothing
 * itself: it forks the workers (src/workers/split.ts says what each runs), hands each the
 * node's pool id, restarts a worker that dies (with back-off), passes SIGTERM/SIGINT (drain),
 * SIGHUP (each worker reloads the file) and, with `-O`, SIGUSR1 on to them, and exits once
 * they are all gone: 0 when every worker drained cleanly.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../log.js';
import { Backoff } from '../tunnel/backoff.js';
import type { WorkerPart } from './aggregate.js';
import { newPoolId } from '../tunnel/pool.js';
import { WORKER_ENV } from './split.js';

/** What a worker tells the primary over the cluster's channel, and the primary worker 0. */
export type WorkerMessage =
  | { west: 'ready' }
  /** A worker above 0 found a tunnel server that cannot pool (NO_POOL_REASON). */
  | { west: 'no-pool'; url: string }
  /** A worker above 0's summary, passed on to worker 0 (src/workers/aggregate.ts). */
  | { west: 'part'; part: WorkerPart }
  /** To worker 0: that worker exited, its summary no longer counts. */
  | { west: 'part-gone'; worker: number };

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { west?: unknown }).west === 'string';
}

/** A worker that lived this long before it died is restarted after the shortest delay again. */
const STABLE_MS = 10_000;

interface Slot {
  index: number;
  worker: Worker | undefined;
  /** Reported ready at least once (a worker that never did failed to start: the node exits). */
  ready: boolean;
  startedAt: number;
  backoff: Backoff;
  timer?: NodeJS.Timeout;
  /** No longer run: the node fell back to fewer workers. */
  retired: boolean;
}

export interface PrimaryOptions {
  count: number;
  log: Logger;
  /** `-O`: SIGUSR1 is passed on so each worker reopens the file. */
  forwardUsr1: boolean;
}

/** Runs the workers until they are all gone; the process exits then. */
export function runPrimary(opts: PrimaryOptions): void {
  const { count, log } = opts;
  const poolId = newPoolId();
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index, worker: undefined, ready: false, startedAt: 0, backoff: new Backoff(100, 10_000), retired: false,
  }));
  let stopping = false;
  let failed = false;

  const fork = (slot: Slot): void => {
    const worker = cluster.fork({ [WORKER_ENV.worker]: String(slot.index), [WORKER_ENV.workers]: String(count), [WORKER_ENV.pool]: poolId });
    slot.worker = worker;
    slot.startedAt = Date.now();
    worker.on('message', (m: unknown) => {
      if (!isWorkerMessage(m)) return;
      if (m.west === 'ready') {
        log.info('node.worker_started', { worker: slot.index, pid: worker.process.pid, ...(slot.ready ? { restarted: true } : {}) });
        slot.ready = true;
      } else if (m.west === 'part' && slot.index > 0) {
        toFirst({ west: 'part', part: { ...m.part, worker: slot.index } });
      } else if (m.west === 'no-pool' && slot.index > 0) {
        fallBack(m.url);
      }
    });
  };

  /** A server that cannot pool would see the workers take the name from each other: worker 0 alone goes on. */
  const fallBack = (url: string): void => {
    const others = slots.filter((s) => s.index > 0 && !s.retired);
    if (others.length === 0) return;
    log.warn('node.workers_reduced', { workers: 1, was: count, server: url, reason: 'the tunnel server cannot pool connections (no feature "pool")' });
    for (const s of others) {
      s.retired = true;
      clearTimeout(s.timer);
      s.worker?.process.kill('SIGTERM');
    }
  };

  /** A message to worker 0, when it is there to hear it. */
  const toFirst = (m: WorkerMessage): void => {
    const first = slots[0]?.worker;
    if (first?.isConnected()) first.send(m);
  };

  const live = (): Worker[] => slots.flatMap((s) => (s.worker && !s.worker.isDead() ? [s.worker] : []));

  const finishIfDone = (): void => {
    if (slots.some((s) => s.worker !== undefined)) return;
    if (!stopping && slots.some((s) => !s.retired)) return;
    log.info('node.stopped', { workers: count });
    process.exit(failed ? 1 : 0);
  };

  cluster.on('exit', (worker, code, signal) => {
    // A worker of this node, still its slot's (not one replaced already).
    const slot = slots.find((x) => x.worker === worker);
    if (!slot) return;
    slot.worker = undefined;
    if (slot.index > 0) toFirst({ west: 'part-gone', worker: slot.index });
    if (stopping || slot.retired) {
      if (code !== 0 && !slot.retired) failed = true;
      finishIfDone();
      return;
    }
    if (!slot.ready) {
      // It never came up (a port in use, say): it said why; the node does not run half-started.
      log.error('node.worker_failed', { worker: slot.index, pid: worker.process.pid, code, signal });
      failed = true;
      stop('worker_failed');
      finishIfDone();
      return;
    }
    if (Date.now() - slot.startedAt >= STABLE_MS) slot.backoff.reset();
    const inMs = slot.backoff.next();
    log.warn('node.worker_exited', { worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: inMs });
    slot.timer = setTimeout(() => {
      if (!stopping && !slot.retired) fork(slot);
    }, inMs);
  });

  const stop = (signal: string): void => {
    stopping = true;
    for (const s of slots) clearTimeout(s.timer);
    log.info('node.stopping', { signal, workers: live().length });
    for (const w of live()) w.process.kill('SIGTERM');
  };

  const onStopSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn('node.forced_exit', { signal });
      for (const w of live()) w.process.kill('SIGKILL');
      process.exit(1);
    }
    stop(signal);
    finishIfDone();
  };
  process.on('SIGINT', onStopSignal);
  process.on('SIGTERM', onStopSignal);
  process.on('SIGHUP', () => {
    if (stopping) return;
    // Each worker reads the file again and applies what it runs of it.
    for (const w of live()) w.process.kill('SIGHUP');
  });
  if (opts.forwardUsr1) process.on('SIGUSR1', () => { for (const w of live()) w.process.kill('SIGUSR1'); });

  log.info('node.workers', { workers: count, pid: process.pid });
  for (const slot of slots) fork(slot);
}
