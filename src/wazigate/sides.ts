/** The wazigate sides one node plays (doc/wazigate.md): cloud listeners and at most one gateway. */
import type { NodeConfig } from '../config/types.js';
import type { WazigateState } from '../control/state.js';
import type { AccessRecord } from '../events.js';
import type { Logger } from '../log.js';
import type { EgressPolicy } from '../proxy/far/egress.js';
import { WazigateCloud } from './cloud.js';
import { WazigateGateway } from './gateway.js';
import { RefBook } from './refs.js';

export class WazigateSides {
  readonly clouds: WazigateCloud[];
  readonly gateway: WazigateGateway | undefined;

  constructor(config: NodeConfig, log: Logger, egress: () => EgressPolicy | undefined, onAccess: (r: AccessRecord) => void) {
    const common = { nodeName: config.name, tuning: config.tuning, log, onAccess };
    const refs = new RefBook();
    const held = { bytes: 0 };
    this.clouds = (config.wazigate?.clouds ?? []).map((c) => new WazigateCloud({ ...common, config: c, refs, held }));
    const g = config.wazigate?.gateway;
    this.gateway = g ? new WazigateGateway({ ...common, config: g, egress }) : undefined;
  }

  /** Binds the cloud listeners (failing if a port is taken), then connects every side to its broker. */
  async listen(): Promise<void> {
    for (const c of this.clouds) await c.listen();
    this.gateway?.start();
  }

  async close(): Promise<void> {
    await Promise.all([...this.clouds.map((c) => c.close()), this.gateway?.close()]);
  }

  inFlight(): number {
    return this.clouds.reduce((n, c) => n + c.stats.inFlight, 0) + (this.gateway?.stats.inFlight ?? 0);
  }

  state(): WazigateState[] {
    const side = (s: WazigateCloud | WazigateGateway, kind: 'cloud' | 'gateway'): WazigateState => ({
      side: kind, key: s.key, broker: s.link.broker, connected: s.link.connected,
      connects: s.link.connects, lastError: s.link.lastError, ...s.stats, statuses: { ...s.stats.statuses },
    });
    return [...this.clouds.map((c) => side(c, 'cloud')), ...(this.gateway ? [side(this.gateway, 'gateway')] : [])];
  }
}
