/** The live state a node reports on its control port (`/state.json` and the text dump). */
import type { Endpoint, RawConfig } from '../config/types.js';

/** Flow control of one live tunnel (doc/operations.md, flow control). */
export interface FlowState {
  /** Smoothed round-trip time from the heartbeat's pings, ms; absent before the first pong. */
  rttMs: number | undefined;
  /** The tunnel's own receive window (feature connection-window), bytes; absent without it. */
  connectionWindow: number | undefined;
  /** Largest receive window among the streams open now, bytes (0 when none). */
  streamWindowMax: number;
  /** Largest receive window any stream of this tunnel has had, bytes. */
  streamWindowPeak: number;
}

/** One connection of a pool. */
export interface MemberState {
  address: string;
  port: number;
  since: string;
  streams: number;
  streamsOpened: number;
  bytesIn: number;
  bytesOut: number;
}

/** A client of this node's tunnel server: its one connection, or its pool's sums. */
export interface PeerState extends MemberState {
  name: string;
  flow?: FlowState;
  /** The negotiated wire version (`west.v3`). */
  wire: string;
  /** Connections of this peer (a pool, src/tunnel/pool.ts; 1 for a client without one). */
  members?: number;
  /** Each connection of a pooled peer (absent when the client did not pool); the counts above are their sums. */
  pool?: MemberState[];
  /** What carries the tunnel: `websocket`, or `mqtt` through a broker. */
  transport?: string;
}

/** One best route of the mesh (src/mesh/table.ts). */
export interface RouteState {
  /** Destination node. */
  name: string;
  /** The peer the route's streams are opened to. */
  nextHop: string;
  /** Node names from the next hop to the destination. */
  path: string[];
  hops: number;
  cost: number;
  /** When it became the best route, and for how long (seconds). */
  since: string;
  ageS: number;
}

export interface TunnelState {
  url: string;
  /** Name presented to the server. */
  as: string;
  early: boolean;
  state: string;
  connected: boolean;
  since: string | undefined;
  /** Name the server reported. */
  peer: string | undefined;
  address: string | undefined;
  port: number | undefined;
  streams: number;
  bytesIn: number;
  bytesOut: number;
  connects: number;
  lastError: string | undefined;
  /** The negotiated wire version while connected (`west.v3`). */
  wire: string | undefined;
  /** `websocket`, or `mqtt` (the URL is the broker's); undefined while not connected. */
  transport?: string | undefined;
  /** Absent while not connected. */
  flow?: FlowState | undefined;
  /** Connections up now (a pool's live members; 0 or 1 without `connections`). */
  members?: number;
  /** `wstc[url].connections` when above 1, with each live connection of the pool. */
  connections?: number;
  pool?: MemberState[];
}

export interface ListenerState {
  key: string;
  host: string;
  port: number;
  target: { ea: string } | { en: string };
  connected: boolean;
  mappings: { path: string; ou: string; ca: string[] }[];
  requests: number;
  inFlight: number;
  statuses: Record<string, number>;
  /**
   * A plain-http listener's lean front (src/proxy/near/h1/): requests it served itself, and
   * connections it gave to Node's server (chunked bodies, upgrades, odd heads). Absent for an
   * https listener and from nodes of earlier releases.
   */
  front?: { served: number; handoffs: number };
}

/** A `tcp://` listener (doc/tcp.md). */
export interface TcpListenerState {
  key: string;
  host: string;
  port: number;
  target: { ea: string } | { en: string };
  /** `host:port` the far end connects to. */
  to: string;
  ca: string[];
  connected: boolean;
  /** Connections accepted, open now, and closed at once (ca, the per-address cap, draining). */
  connections: number;
  open: number;
  refused: number;
}

/** A wazigate side (doc/wazigate.md): a cloud listener or this node as a gateway. */
export interface WazigateState {
  side: 'cloud' | 'gateway';
  /** The listener key (cloud) or `wazigate:<gatewayID>`. */
  key: string;
  broker: string;
  connected: boolean;
  connects: number;
  lastError: string | undefined;
  requests: number;
  inFlight: number;
  statuses: Record<string, number>;
}

export interface NodeState {
  name: string;
  version: string;
  pid: number;
  /**
   * With `west.workers` above 1: how many workers serve the node and which one answers (the
   * control port lives in worker 0), and how many workers' counts the tunnels' `members`,
   * `streams`, bytes and `connects` and the listeners' counts sum (worker 0 and each other
   * worker's latest report, at most a second old). Absent with one worker.
   */
  workers?: { count: number; answering: number; reporting?: number };
  startedAt: string;
  uptimeS: number;
  raw: RawConfig;
  control: Endpoint | undefined;
  server: { url: string; host: string; port: number; transport?: string; peers: PeerState[] } | undefined;
  tunnels: TunnelState[];
  listeners: ListenerState[];
  /** `tcp://` listeners; absent from nodes of earlier releases. */
  tcpListeners?: TcpListenerState[];
  /** The mesh's best route to every node this one reaches. */
  routes: RouteState[];
  /** The wazigate sides, when this node plays any. */
  wazigate?: WazigateState[];
}
