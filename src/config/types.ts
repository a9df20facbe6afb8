/**
 * The config as written (RawConfig, checked by the JSON Schema in schema.ts) and the
 * resolved form a running node uses (NodeConfig, built by load.ts).
 */

/** One path mapping of a proxy listener, as written: `"/px": { "ou": ..., "ca": [...] }`. */
export interface RawMapping {
  ou: string;
  ca?: string[];
}

/** A proxy listener as written. Keys other than `ea`/`en`/`cert`/`key` that start with `/` are mappings. */
export interface RawListener {
  ea?: string;
  en?: string;
  /** PEM files for an `https://` listener. */
  cert?: string;
  key?: string;
  /** With `en`: the nodes the requests must pass, in order, before the one `en` names (the mesh). */
  via?: string[];
  [path: string]: RawMapping | string | string[] | undefined;
}

/**
 * A secret (token) as written: the value itself, or where to read it so it need not sit in the
 * config: `{ "file": "/etc/west/token" }` (trailing newline trimmed) or `{ "env": "WEST_TOKEN" }`.
 */
export type RawSecret = string | { file: string } | { env: string };

/** Peer name (or "*" for any peer) -> URL prefixes or hosts it may make this node fetch. */
export type RawEgress = Record<string, string[]>;

export interface RawWest {
  nm: string;
  cp?: string;
  /** Seconds the far end waits for the origin's response head before answering 504. */
  responseTimeout?: number;
  /** Seconds to wait for a TCP/WebSocket connection (origin or tunnel dial) before giving up. */
  connectTimeout?: number;
  /** Seconds between WebSocket pings; a peer silent for two intervals is dropped. */
  heartbeat?: number;
  /** Seconds SIGTERM/SIGINT wait for in-flight requests before exiting. */
  drainTimeout?: number;
  /** Bytes a stream may have in flight before the receiver grants more (flow-control window). */
  streamWindow?: number;
  /** Largest window a stream's grows to when its reader keeps up with a long link (auto-tuning). */
  maxStreamWindow?: number;
  /** Largest window a whole tunnel's grows to (with a peer that announces `connection-window`). */
  maxConnectionWindow?: number;
  /** Bytes all receive windows of this node together may commit (granted plus unread). */
  memoryBudget?: number;
  /** Most west listeners one request may pass before it is refused with 508. */
  maxHops?: number;
  /** Seconds to put in Retry-After when a tunnel or peer is not connected. */
  retryAfter?: number;
  /** Seconds a request waits for a missing tunnel or peer to (re)connect before 503; 0 = answer at once. */
  peerWait?: number;
  /** Shortest and longest delay (seconds) between redials of a lost tunnel. */
  reconnectMin?: number;
  reconnectMax?: number;
  /** Most streams (requests) in flight on one tunnel; more are answered 503. */
  maxStreams?: number;
  /** Largest request head (request line and headers, bytes) a listener accepts; larger gets 431. */
  maxHeaderSize?: number;
  /** Seconds a stream may carry no bytes either way before it is cut (504 if no response yet). */
  idleTimeout?: number;
  /** Seconds a listener waits for a whole request head (each request of a connection) before 408. */
  headerTimeout?: number;
  /** Most connections one client address may hold open to a listener; 0 = no cap. */
  maxConnectionsPerAddress?: number;
  /** What west's own failure answers tell a client: `full` (node, reason) or `minimal` (status only). */
  errorDetail?: ErrorDetail;
  /** What peers may make this node fetch; absent = anything (an open relay, warned about). */
  egress?: RawEgress;
  /**
   * Client addresses (IPs/CIDRs) whose X-Forwarded-*, Forwarded and X-Real-IP a listener keeps
   * (appending to X-Forwarded-For and Forwarded); from anyone else they are replaced.
   * Absent = loopback (`127.0.0.0/8`, `::1`); `[]` = nobody.
   */
  trustedProxies?: string[];
  /** Bearer token the control port requires. */
  cpToken?: RawSecret;
  /** Newest wire version this node speaks: 3 (the mesh, default) or 2 (as the previous release). */
  wire?: number;
  /** Processes that serve this node (src/workers/): a number, or "auto" (default: 1 on 2 cores or fewer, else one per core). */
  workers?: number | 'auto';
  /**
   * Transit through this node (the mesh): originating node name (or "*") -> destination node
   * names (or "*") whose streams this node relays. Absent = relays nothing.
   */
  transit?: Record<string, string[]>;
  /** Peers whose relayed streams this node takes, believing the origin they name; "*" = any. */
  relays?: string[];
  /**
   * Routes this node learns (the mesh): peer name (or "*") -> destination names (or "*") that
   * peer may advertise beyond itself. Absent for a peer: everything from a tunnel server this
   * node dials, nothing from a client of its own server.
   */
  learn?: Record<string, string[]>;
}

export interface RawServer {
  sp?: string;
  /** Client addresses (IPs/CIDRs) and names allowed to connect; absent or empty = all. */
  ca?: string[];
  /** PEM certificate chain and key for a `wss://` server. */
  cert?: string;
  key?: string;
  /** PEM CA file: clients must present a certificate it signed (mutual TLS). */
  clientCa?: string;
  /** Client name (or "*") -> the token it must present. */
  tokens?: Record<string, RawSecret>;
  /** What happens when a client presents a name that is already connected. */
  claim?: NameClaimPolicy;
  /** With client certificates: a client's name must be its certificate's CN or a DNS name of it. */
  certNames?: boolean;
}

/**
 * `replace`: the newer connection wins, the older is closed (a restarted site reclaims its
 * name at once). `refuse`: the newer connection is refused while the name is connected.
 */
export type NameClaimPolicy = 'replace' | 'refuse';

export interface RawClient {
  nm?: string;
  ee?: 'yes' | 'no';
  /** Token presented to the server. */
  token?: RawSecret;
  /** PEM CA file to verify the server with (default: the system's CAs). */
  ca?: string;
  /** PEM client certificate and key, for servers that require one. */
  cert?: string;
  key?: string;
  /** What a route through this tunnel costs (the mesh); default 1 per tunnel. */
  cost?: number;
  /** Tunnel connections to this server, one peer there (src/tunnel/pool.ts); default 1. */
  connections?: number;
}

export interface RawConfig {
  west: RawWest;
  wsts?: RawServer;
  wstc?: Record<string, RawClient>;
  proxy?: Record<string, RawListener>;
}

/** `host:port` split; host '' means all interfaces. */
export interface Endpoint {
  host: string;
  port: number;
}

/** The tunnel server this node runs (`wsts.sp`). */
/** PEM contents read from the files the config names. */
export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

export interface ServerConfig extends Endpoint {
  url: string;
  tls: boolean;
  claim: NameClaimPolicy;
  /** Certificate, key and (for mutual TLS) the client CA of a `wss://` server. */
  tlsMaterial?: TlsMaterial;
  /** Canonical client name or "*" -> token; absent = no tokens required. */
  tokens?: Map<string, string>;
  /** Who may connect (`wsts.ca`); both lists empty = everyone. */
  allowAddresses: string[];
  allowNames: string[];
  /** `wsts.certNames`: a client's name must be one its certificate carries (CN or DNS SAN). */
  certNames?: true;
}

/** One tunnel this node dials (`wstc` entry or implied by an `ea`). */
export interface ClientConfig {
  /** Server URL exactly as written in the config (the key of `wstc`, the value of `ea`). */
  url: string;
  /** Name presented to the server, as written (default `west.nm`). */
  name: string;
  /** `ee: "yes"` dials at start-up; `"no"` dials on first use. */
  early: boolean;
  token?: string;
  /** CA to verify the server and client certificate, for `wss://`. */
  tlsMaterial?: TlsMaterial;
  /** `cost`: what a route through this tunnel costs (absent = 1). */
  cost?: number;
  /** `connections`: how many connections this tunnel keeps, as one pool (absent = 1). */
  connections?: number;
}

export interface MappingConfig {
  /** The incoming path, e.g. `/px`; always starts with `/`, no trailing slash unless it is `/`. */
  path: string;
  /** The outgoing URL performed at the far end. */
  outgoing: URL;
  /** Client address allowlist (IPs or CIDRs); empty means everyone. */
  allow: string[];
}

export type ListenerTarget =
  | { kind: 'ea'; url: string }
  | { kind: 'en'; name: string };

export interface ListenerConfig extends Endpoint {
  /** The `proxy` key as written, e.g. `http://127.0.0.1:9911`. */
  key: string;
  /** Certificate and key of an `https://` listener. */
  tlsMaterial?: TlsMaterial;
  target: ListenerTarget;
  mappings: MappingConfig[];
  /** `via`, canonical: a pinned path to the `en` node (absent = the mesh's best route). */
  via?: string[];
}

export interface Tuning {
  responseTimeoutMs: number;
  connectTimeoutMs: number;
  heartbeatMs: number;
  drainTimeoutMs: number;
  streamWindow: number;
  maxStreamWindow: number;
  maxConnectionWindow: number;
  memoryBudget: number;
  maxHops: number;
  retryAfterS: number;
  peerWaitMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  maxStreams: number;
  maxHeaderSize: number;
  idleTimeoutMs: number;
  headerTimeoutMs: number;
  maxConnectionsPerAddress: number;
  errorDetail: ErrorDetail;
  /** `west.trustedProxies`, resolved: the addresses whose forwarding headers a listener keeps. */
  trustedProxies: string[];
  /** `west.wire`: the newest wire version this node offers and accepts. */
  wireVersion: number;
}

/**
 * `full`: a failure answer names the node where it failed and why (the default, for operators
 * and chains). `minimal`: status and Proxy-Status error type only, and a mapping `ca` refuses
 * looks unmapped (404), so outsiders learn neither node names, URLs, rules nor which paths exist.
 */
export type ErrorDetail = 'full' | 'minimal';

/** The resolved config of one node. */
export interface NodeConfig {
  /** Path of the file it came from ('' when built in memory). */
  source: string;
  /** The config as written, for the control port's dump. */
  raw: RawConfig;
  /** `west.nm` as written. */
  name: string;
  control?: Endpoint;
  server?: ServerConfig;
  clients: ClientConfig[];
  listeners: ListenerConfig[];
  tuning: Tuning;
  /** Canonical peer name or "*" -> allowed URL prefixes; undefined = open relay. */
  egress?: Map<string, string[]>;
  /** Token the control port requires. */
  controlToken?: string;
  /** `west.transit`, canonical: origin name or "*" -> destination names or "*"; absent = no transit. */
  transit?: Map<string, string[]>;
  /** `west.relays`, canonical: peers whose relayed streams this node takes ("*" = any). */
  relays: string[];
  /** `west.learn`, canonical: peer name or "*" -> destinations it may advertise, or "*"; absent = the defaults. */
  learn?: Map<string, string[]>;
  /** `west.workers` as written (absent = "auto"); src/workers/count.ts makes it a number. */
  workers?: number | 'auto';
}

export const DEFAULT_TUNING: Tuning = {
  responseTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  heartbeatMs: 15_000,
  drainTimeoutMs: 10_000,
  streamWindow: 256 * 1024,
  maxStreamWindow: 16 * 1024 * 1024,
  maxConnectionWindow: 64 * 1024 * 1024,
  memoryBudget: 64 * 1024 * 1024,
  maxHops: 8,
  retryAfterS: 5,
  peerWaitMs: 0,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  maxStreams: 1024,
  maxHeaderSize: 16 * 1024,
  idleTimeoutMs: 300_000,
  headerTimeoutMs: 20_000,
  maxConnectionsPerAddress: 256,
  errorDetail: 'full',
  trustedProxies: ['127.0.0.0/8', '::1'],
  wireVersion: 3,
};

/** Default port of a proxy listener whose key names none (as the original). */
export const DEFAULT_LISTENER_PORT = 18889;

/**
 * Node names compare without a `ws://` or `wss://` prefix and a trailing slash, so the
 * original's URL-style names (`"en": "ws://case2.L.fiap.org"`) match bare names.
 */
export function canonicalName(name: string): string {
  return name.replace(/^wss?:\/\//i, '').replace(/\/+$/, '');
}
