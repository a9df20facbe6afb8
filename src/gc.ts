/**
 * How a node's garbage collector runs. A tunnel moving bulk bytes allocates a buffer for every
 * socket read; with V8's incremental marking on, a node under such traffic fell, at random,
 * into a run of back-to-back mark-compact collections (one every ~15 MiB moved, each freeing
 * next to nothing: 13 MB live heap) that took up to half its CPU. Without incremental marking
 * V8 still collects the young generation as before and marks the old one when it reaches its
 * limit, in one pause (a few ms on a node's heap of tens of MB). doc/operations.md (memory and the garbage collector).
 */
import v8 from 'node:v8';

/** Set WEST_INCREMENTAL_MARKING=1 to keep V8's default. */
export function tuneGarbageCollector(env: NodeJS.ProcessEnv = process.env): void {
  if (env.WEST_INCREMENTAL_MARKING === '1') return;
  v8.setFlagsFromString('--no-incremental-marking');
}
