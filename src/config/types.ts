/**
 * The resolved config a running node uses (NodeConfig, built by load.ts), defaults, and the
 * config as written, re-exported from raw.ts.
 */
import type { ErrorDetail, NameClaimPolicy, RawConfig } from './raw.js';

export type { ErrorDetail, RawMapping, RawListener, RawSecret, RawWazigateBroker, RawWazigateCloud, RawWazigateGateway, RawEgress, RawWest, RawAccess, RawAuthHook, RawServer, RawMqttServer, RawMqttClient, NameClaimPolicy, RawClient, RawConfig } from './raw.js';

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
  /** `wsts.mqtt`: tunnels come through the broker at `url`; nothing is listened on (unless embedded). */
  mqtt?: MqttServerConfig;
}

export interface MqttServerConfig {
  user: string;
  password?: string;
  ca?: Buffer;
  embed: boolean;
}

export interface MqttClientConfig {
  /** The tunnel server's node name, as written. */
  server: string;
  user: string;
  password?: string;
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
  /** The tunnel runs through the MQTT broker `url` names. */
  mqtt?: MqttClientConfig;
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

/**
 * A `tcp://host:port` listener (doc/tcp.md): each connection is one TCP stream to `to` at the
 * node its target names, which connects it there if its `west.egress` has `tcp://` + `to`.
 */
export interface TcpListenerConfig extends Endpoint {
  /** The `proxy` key as written, e.g. `tcp://127.0.0.1:2222`. */
  key: string;
  target: ListenerTarget;
  /** Where the far end connects (host lowercase, IPv6 without brackets). */
  to: Endpoint;
  /** `ca`: client addresses (IPs or CIDRs) allowed to connect; empty means everyone. */
  allow: string[];
  /** `via`, canonical: a pinned path to the `en` node. */
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
  /** `tcp://` listeners (doc/tcp.md). */
  tcpListeners: TcpListenerConfig[];
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
  /** `west.access`, resolved; absent = no listener serves remote access or rendezvous. */
  access?: AccessConfig;
  /** `west.authHook`, resolved; absent = no hook is asked. */
  authHook?: AuthHookConfig;
  /** The wazigate-tunnel sides this node plays (doc/wazigate.md); absent = none. */
  wazigate?: WazigateConfig;
  /** `west.workers` as written (absent = "auto"); src/workers/count.ts makes it a number. */
  workers?: number | 'auto';
}

/** A wazigate side's broker connection, resolved. */
export interface WazigateBroker {
  broker: string;
  user?: string;
  password?: string;
}

export interface WazigateCloudConfig extends WazigateBroker, Endpoint {
  /** The `proxy` key as written. */
  key: string;
  timeoutMs: number;
  allow: string[];
  gateways?: string[];
}

export interface WazigateGatewayConfig extends WazigateBroker {
  gateway: string;
  origin: URL;
}

export interface WazigateConfig {
  clouds: WazigateCloudConfig[];
  gateway?: WazigateGatewayConfig;
}

export interface AccessConfig {
  /** Listener keys (as written in `proxy`) serving `/remoteaccess/` and `/rendezvous/`. */
  remoteAccess: string[];
  rendezvous: string[];
  keyTtlMs: number;
  pairWaitMs: number;
  maxWaiting: number;
  maxWaitingPerAddress: number;
}

export interface AuthHookConfig {
  url: string;
  timeoutMs: number;
  cacheMs: number;
  denyCacheMs: number;
  failOpen: boolean;
}

export const DEFAULT_ACCESS = { keyTtlMs: 60_000, pairWaitMs: 8_000, maxWaiting: 256, maxWaitingPerAddress: 8 } as const;
export const DEFAULT_AUTH_HOOK = { timeoutMs: 500, cacheMs: 5_000, denyCacheMs: 1_000 } as const;

export const DEFAULT_TUNING: Tuning = {
  responseTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  heartbeatMs: 15_000,
  drainTimeoutMs: 10_000,
  streamWindow: 256 * 1024,
  maxStreamWindow: 32 * 1024 * 1024,
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
  // Both patterns need a slash; most names have none (a relay asks this several times a stream).
  if (!name.includes('/')) return name;
  return name.replace(/^wss?:\/\//i, '').replace(/\/+$/, '');
}
