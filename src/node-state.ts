/** The live-state snapshot of a running node, for the control port (`/state.json`, the dump). */
import { canonicalName } from './config/types.js';
import type { NodeState } from './control/state.js';
import type { RoutingHost } from './routing.js';
import { VERSION } from './version.js';

/** What a snapshot reads of the running node. */
export interface StateSource extends RoutingHost {
  readonly startedAt: Date;
  readonly control: { readonly port: number } | undefined;
}

export function snapshotState(node: StateSource): NodeState {
  const c = node.config;
  const server = node.server;
  return {
    name: c.name,
    version: VERSION,
    pid: process.pid,
    startedAt: node.startedAt.toISOString(),
    uptimeS: Math.round((Date.now() - node.startedAt.getTime()) / 1000),
    raw: c.raw,
    control: c.control ? { ...c.control, port: node.control?.port ?? c.control.port } : undefined,
    server: c.server && server ? {
      url: c.server.url,
      host: c.server.host,
      port: server.port || c.server.port,
      transport: server.transport,
      peers: [...server.sessions.values()].map((s) => ({
        name: s.peerName, address: s.remoteAddress, port: s.remotePort, since: s.connectedAt.toISOString(),
        streams: s.streams.size, streamsOpened: s.streamsOpened, bytesIn: s.bytesIn, bytesOut: s.bytesOut, wire: `west.v${s.wire}`, transport: s.transport,
        flow: s.flowState(),
      })),
    } : undefined,
    tunnels: [...node.clients.values()].map((t) => ({
      url: t.config.url, as: t.config.name, early: t.config.early, state: t.state,
      connected: t.session !== undefined,
      since: t.session?.connectedAt.toISOString(),
      peer: t.session?.peerName,
      address: t.session?.remoteAddress,
      port: t.session?.remotePort,
      streams: t.session?.streams.size ?? 0,
      bytesIn: t.session?.bytesIn ?? 0,
      bytesOut: t.session?.bytesOut ?? 0,
      connects: t.connects,
      lastError: t.lastError,
      wire: t.session ? `west.v${t.session.wire}` : undefined,
      transport: t.session?.transport,
      flow: t.session?.flowState(),
    })),
    listeners: [...node.listeners.values()].map((l) => ({
      key: l.config.key,
      host: l.config.host,
      port: l.port || l.config.port,
      target: l.config.target.kind === 'ea' ? { ea: l.config.target.url } : { en: l.config.target.name },
      connected: l.config.target.kind === 'ea'
        ? node.clients.get(l.config.target.url)?.session !== undefined
        : server?.get(canonicalName(l.config.target.name)) !== undefined || node.mesh?.lookup(l.config.target.name) !== undefined,
      mappings: l.config.mappings.map((m) => ({ path: m.path, ou: m.outgoing.href, ca: m.allow })),
      ...l.stats,
      statuses: { ...l.stats.statuses },
    })),
    routes: (node.mesh?.table.routes() ?? []).map((r) => ({
      name: r.dest, nextHop: r.link.peerName, path: r.path, hops: r.path.length, cost: r.cost,
      since: new Date(r.since).toISOString(), ageS: Math.round((Date.now() - r.since) / 1000),
    })),
  };
}
