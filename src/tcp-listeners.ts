/**
 * The `tcp://` listeners of a node (doc/tcp.md), by endpoint, and what a reload does to them:
 * new ones are bound on the side first (so a port that cannot be bound refuses the reload
 * with nothing changed), kept ones take their new target, `to` and `ca` for the next
 * connection, removed ones stop accepting and let their connections run out the drain time.
 */
import type { NodeConfig, TcpListenerConfig, Tuning } from './config/types.js';
import type { TcpListener } from './proxy/near/tcp-listener.js';
import { endpointKey } from './reload.js';

/** A reload's TCP half, bound and waiting to be applied or rolled back. */
export interface StagedTcp {
  commit(): void;
  rollback(): Promise<void>;
}

export class TcpListeners {
  readonly byKey = new Map<string, TcpListener>();

  constructor(private readonly make: (l: TcpListenerConfig, tuning: Tuning) => TcpListener, config: NodeConfig) {
    for (const l of config.tcpListeners) this.byKey.set(endpointKey(l), make(l, config.tuning));
  }

  get size(): number {
    return this.byKey.size;
  }

  values(): IterableIterator<TcpListener> {
    return this.byKey.values();
  }

  async listen(): Promise<void> {
    for (const l of this.byKey.values()) await l.listen();
  }

  /** Connections open on every listener. */
  open(): number {
    let n = 0;
    for (const l of this.byKey.values()) n += l.stats.open;
    return n;
  }

  stopAccepting(): void {
    for (const l of this.byKey.values()) l.stopAccepting();
  }

  abortInFlight(): void {
    for (const l of this.byKey.values()) l.abortInFlight();
  }

  async close(): Promise<void> {
    await Promise.all([...this.byKey.values()].map((l) => l.close()));
  }

  /**
   * Binds what `next` adds (a listener whose port an old one holds takes it over: the old one
   * stops accepting first, and listens again on rollback). Throws, with nothing changed, when
   * one cannot be bound.
   */
  async stage(next: NodeConfig, drainMs: number): Promise<StagedTcp> {
    const wanted = new Map(next.tcpListeners.map((l) => [endpointKey(l), l]));
    const leaving = [...this.byKey].filter(([key]) => !wanted.has(key));
    const added: [string, TcpListener][] = [];
    const released: TcpListener[] = [];
    try {
      for (const [key, config] of wanted) {
        if (this.byKey.has(key)) continue;
        for (const [, old] of leaving) {
          if (old.port === config.port && config.port !== 0 && !released.includes(old)) {
            old.stopAccepting();
            released.push(old);
          }
        }
        const l = this.make(config, next.tuning);
        added.push([key, l]);
        await l.listen();
      }
    } catch (err) {
      await Promise.all(added.map(([, l]) => l.close()));
      for (const old of released) await old.listenAgain().catch(() => { /* reported by the reload's error */ });
      throw err;
    }
    return {
      commit: () => {
        for (const [key, old] of leaving) {
          this.byKey.delete(key);
          void retire(old, drainMs);
        }
        for (const [key, config] of wanted) this.byKey.get(key)?.update(config, next.tuning);
        for (const [key, l] of added) this.byKey.set(key, l);
      },
      rollback: async () => {
        await Promise.all(added.map(([, l]) => l.close()));
        for (const old of released) await old.listenAgain().catch(() => { /* the reload's error says what failed */ });
      },
    };
  }
}

/** A listener that left the config: no new connections; open ones get the drain time, then a reset. */
async function retire(l: TcpListener, drainMs: number): Promise<void> {
  l.stopAccepting();
  const deadline = Date.now() + drainMs;
  while (l.stats.open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await l.close();
}
