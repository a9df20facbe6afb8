/** The live-state snapshot of a running node, for the control port (`/state.json`, the dump). */
import { canonicalName } from './config/types.js';
import type { MemberState, NodeState, WazigateState } from './control/state.js';
import { formatTcpTarget } from './config/endpoint.js';
import type { TcpListener } from './proxy/near/tcp-listener.js';
import type { TunnelSession } from './tunnel/session.js';
import type { RoutingHost } from './routing.js';
import { VERSION } from './version.js';

/** What a snapshot reads of the running node. */
export interface StateSource extends RoutingHost {
  readonly startedAt: Date;
  readonly wazigate?: { state(): WazigateState[] };
  readonly control: { readonly port: number } | undefined;
  readonly tcpListeners?: { values(): Iterable<TcpListener> };
  /** With `west.workers` above 1: how many run and which one this is. */
  readonly workers?: { readonly worker: number; readonly workers: number } | undefined;
}

/** One connection of a pool, for the state. */
function memberState(s: TunnelSession): MemberState {
  return {
    address: s.remoteAddress, port: s.remotePort, since: s.connectedAt.toISOString(),
    streams: s.streams.size, streamsOpened: s.streamsOpened, bytesIn: s.bytesIn, bytesOut: s.bytesOut,
  };
}

export function snapshotState(node: StateSource): NodeState {
  const c = node.config;
  const server = node.server;
  return {
    name: c.name,
    version: VERSION,
    pid: process.pid,
    ...(node.workers ? { workers: { count: node.workers.workers, answering: node.workers.worker } } : {}),
    startedAt: node.startedAt.toISOString(),
    uptimeS: Math.round((Date.now() - node.startedAt.getTime()) / 1000),
    raw: c.raw,
    control: c.control ? { ...c.control, port: node.control?.port ?? c.control.port } : undefined,
    server: c.server && server ? {
      url: c.server.url,
      host: c.server.host,
      port: server.port || c.server.port,
      transport: server.transport,
      peers: [...server.pools.values()].flatMap((pool) => {
        const s = pool.first;
        if (!s) return [];
        return [{
          name: pool.peerName, address: s.remoteAddress, port: s.remotePort, since: pool.connectedAt.toISOString(),
          ...pool.totals(), wire: `west.v${s.wire}`, transport: s.transport, flow: s.flowState(),
          members: pool.size,
          ...(pool.id !== undefined ? { pool: pool.members.map(memberState) } : {}),
        }];
      }),
    } : undefined,
    tunnels: [...node.clients.values()].map((t) => {
      // A pool is up while any of its connections is, its own first one or another.
      const s = t.session ?? t.pool?.first;
      const totals = t.pool?.totals();
      return {
        url: t.config.url, as: t.config.name, early: t.config.early, state: s && !t.session ? 'connected' : t.state,
        connected: s !== undefined,
        since: s?.connectedAt.toISOString(),
        peer: s?.peerName,
        address: s?.remoteAddress,
        port: s?.remotePort,
        streams: totals?.streams ?? s?.streams.size ?? 0,
        bytesIn: totals?.bytesIn ?? s?.bytesIn ?? 0,
        bytesOut: totals?.bytesOut ?? s?.bytesOut ?? 0,
        connects: t.connects,
        lastError: t.lastError,
        wire: s ? `west.v${s.wire}` : undefined,
        transport: s?.transport,
        flow: s?.flowState(),
        members: t.members,
        ...(t.config.connections !== undefined ? { connections: t.config.connections, pool: t.pool?.members.map(memberState) ?? [] } : {}),
      };
    }),
    listeners: [...node.listeners.values()].map((l) => ({
      key: l.config.key,
      host: l.config.host,
      port: l.port || l.config.port,
      target: l.config.target.kind === 'ea' ? { ea: l.config.target.url } : { en: l.config.target.name },
      connected: l.config.target.kind === 'ea'
        ? node.clients.get(l.config.target.url)?.opener !== undefined
        : server?.get(canonicalName(l.config.target.name)) !== undefined || node.mesh?.lookup(l.config.target.name) !== undefined,
      mappings: l.config.mappings.map((m) => ({ path: m.path, ou: m.outgoing.href, ca: m.allow })),
      ...l.stats,
      statuses: { ...l.stats.statuses },
      ...(l.frontCounts ? { front: { ...l.frontCounts } } : {}),
    })),
    tcpListeners: [...(node.tcpListeners?.values() ?? [])].map((l) => ({
      key: l.config.key,
      host: l.config.host,
      port: l.port || l.config.port,
      target: l.config.target.kind === 'ea' ? { ea: l.config.target.url } : { en: l.config.target.name },
      to: formatTcpTarget(l.config.to),
      ca: l.config.allow,
      connected: l.config.target.kind === 'ea'
        ? node.clients.get(l.config.target.url)?.session !== undefined
        : server?.get(canonicalName(l.config.target.name)) !== undefined || node.mesh?.lookup(l.config.target.name) !== undefined,
      ...l.stats,
    })),
    routes: (node.mesh?.table.routes() ?? []).map((r) => ({
      name: r.dest, nextHop: r.link.peerName, path: r.path, hops: r.path.length, cost: r.cost,
      since: new Date(r.since).toISOString(), ageS: Math.round((Date.now() - r.since) / 1000),
    })),
    ...(c.wazigate ? { wazigate: node.wazigate?.state() ?? [] } : {}),
  };
}
