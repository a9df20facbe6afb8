/**
 * A client that reads a response slowly: paced to `rateMiBps` on average, with a full stop of
 * `pauseMs` after every `pauseEveryMiB`. It counts the bytes and keeps none of them.
 */
import http from 'node:http';

export interface SlowReadOptions {
  rateMiBps: number;
  pauseEveryMiB: number;
  pauseMs: number;
  timeoutMs: number;
}

export interface SlowReadResult {
  status: number;
  bytes: number;
  /** False when the body was cut off (or the request failed). */
  complete: boolean;
  elapsedMs: number;
  error?: string;
}

const MIB = 1024 * 1024;

export function slowRead(url: string, opts: SlowReadOptions): Promise<SlowReadResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    let status = 0;
    let bytes = 0;
    let settled = false;
    const finish = (complete: boolean, error?: string): void => {
      if (settled) return;
      settled = true;
      resolve({ status, bytes, complete, elapsedMs: Date.now() - started, ...(error ? { error } : {}) });
    };
    const req = http.get(url, { agent: false }, (res) => {
      status = res.statusCode ?? 0;
      let pausedFor = 0;
      let nextStop = opts.pauseEveryMiB * MIB;
      const hold = (forMs: number): void => {
        res.pause();
        setTimeout(() => res.resume(), forMs);
      };
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes >= nextStop) {
          nextStop += opts.pauseEveryMiB * MIB;
          pausedFor += opts.pauseMs;
          hold(opts.pauseMs);
          return;
        }
        // Where the reader would be at its target rate; ahead of it, wait.
        const due = started + pausedFor + (bytes / (opts.rateMiBps * MIB)) * 1000;
        const ahead = due - Date.now();
        if (ahead > 5) hold(ahead);
      });
      res.on('end', () => finish(res.complete));
      res.on('aborted', () => finish(false, 'response aborted'));
      res.on('error', (err) => finish(false, err.message));
    });
    req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`no progress for ${opts.timeoutMs} ms`)));
    req.on('error', (err) => finish(false, err.message));
  });
}
