/**
 * Just enough of the Chrome DevTools Protocol to ask another Node process (started with
 * `--inspect=127.0.0.1:0`) for a full GC and its heap use: RSS alone moves with when the
 * garbage collector last ran, which blurs a figure of a few KiB per connection.
 */
import WebSocket from 'ws';
import { waitFor } from './net.js';
import type { Child } from './procs.js';

/** Node flag for a child whose heap the benchmark will read (loopback, a free port). */
export const INSPECT_FLAG = '--inspect=127.0.0.1:0';

export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } }; // eslint-disable-line @typescript-eslint/no-base-to-string -- the inspector sends text frames
      if (msg.id === undefined) return;
      const waiter = this.pending.get(msg.id);
      if (!waiter) return;
      this.pending.delete(msg.id);
      if (msg.error) waiter.reject(new Error(msg.error.message));
      else waiter.resolve(msg.result);
    });
    ws.on('close', () => {
      for (const w of this.pending.values()) w.reject(new Error('inspector connection closed'));
      this.pending.clear();
    });
  }

  /** Connects to the inspector a child announced on stderr ("Debugger listening on ws://..."). */
  static async attach(child: Child): Promise<Inspector> {
    const url = await waitFor(`the inspector URL of ${child.name}`, () => /Debugger listening on (ws:\/\/\S+)/.exec(child.stderr)?.[1], 10_000);
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new Inspector(ws);
  }

  call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Bytes of JS heap in use right after a full garbage collection. */
  async heapUsedAfterGc(): Promise<number> {
    await this.call('HeapProfiler.collectGarbage');
    const usage = await this.call<{ usedSize: number; totalSize: number }>('Runtime.getHeapUsage');
    return usage.usedSize;
  }

  close(): void {
    this.ws.close();
  }
}

/** Stderr lines the inspector prints, which are not the program's own. */
export function isInspectorNoise(line: string): boolean {
  return /^(Debugger (listening|ending) on|For help, see: https:\/\/nodejs\.org\/en\/docs\/inspector|Debugger attached|Waiting for the debugger to disconnect)/.test(line);
}
