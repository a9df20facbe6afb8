/**
 * The metrics of `tcp://` listeners (doc/tcp.md): connections by outcome, bytes each way, and
 * connections open now. Labels are listener keys from the config and west's own outcome and
 * failure codes, so the series stay bounded.
 */
import type { EventEmitter } from 'node:events';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { NodeEvents, TcpRecord } from '../events.js';
import type { NodeState } from './state.js';

export class TcpMetrics {
  private readonly connections: Counter<'listener' | 'outcome' | 'code'>;
  private readonly bytes: Counter<'listener' | 'direction'>;
  private readonly onTcp = (r: TcpRecord): void => {
    this.connections.inc({ listener: r.listener, outcome: r.outcome, code: r.failure?.code ?? '' });
    if (r.bytesIn > 0) this.bytes.inc({ listener: r.listener, direction: 'in' }, r.bytesIn);
    if (r.bytesOut > 0) this.bytes.inc({ listener: r.listener, direction: 'out' }, r.bytesOut);
  };

  constructor(registry: Registry, private readonly events: EventEmitter<NodeEvents>, state: () => NodeState) {
    const registers = [registry];
    this.connections = new Counter({
      name: 'west_tcp_connections_total',
      help: 'Connections of tcp:// listeners that ended, by outcome (closed, reset, refused) and, when refused, the failure code.',
      labelNames: ['listener', 'outcome', 'code'], registers,
    });
    this.bytes = new Counter({
      name: 'west_tcp_bytes_total', help: 'Bytes carried by tcp:// listeners\' connections once they ended: in = from the client, out = to it.',
      labelNames: ['listener', 'direction'], registers,
    });
    const open = new Gauge<'listener'>({
      name: 'west_tcp_connections_open', help: 'Connections open now on a tcp:// listener.', labelNames: ['listener'], registers,
      collect: () => {
        open.reset();
        for (const l of state().tcpListeners ?? []) open.set({ listener: l.key }, l.open);
      },
    });
    events.on('tcp', this.onTcp);
  }

  close(): void {
    this.events.off('tcp', this.onTcp);
  }
}
