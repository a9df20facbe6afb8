/**
 * The config as written: RawConfig and its parts, what the JSON Schema (schema.ts) checks and
 * load.ts resolves into NodeConfig (types.ts).
 */

/** `west.errorDetail`: how much a failure answer tells its client (security.md). */
export type ErrorDetail = 'full' | 'minimal';

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
  /** A `tcp://` listener only: the `host:port` the far end connects each connection to. */
  to?: string;
  /** A `tcp://` listener only: client addresses (IPs/CIDRs) allowed to connect; absent = all. */
  ca?: string[];
  /** Instead of `ea`/`en` and mappings: this listener is a wazigate-tunnel cloud (doc/wazigate.md). */
  wazigate?: RawWazigateCloud;
  [path: string]: RawMapping | RawWazigateCloud | string | string[] | undefined;
}

/**
 * A secret (token) as written: the value itself, or where to read it so it need not sit in the
 * config: `{ "file": "/etc/west/token" }` (trailing newline trimmed) or `{ "env": "WEST_TOKEN" }`.
 */
export type RawSecret = string | { file: string } | { env: string };

/** What a wazigate side (doc/wazigate.md) needs of its MQTT broker. */
export interface RawWazigateBroker {
  /** `mqtt://host:port` or `mqtts://host:port`. */
  broker: string;
  user?: string;
  password?: RawSecret;
}

/** A proxy listener that plays the wazigate-tunnel cloud: `/{gatewayID}/...` goes to that gateway. */
export interface RawWazigateCloud extends RawWazigateBroker {
  /** Seconds to wait for a gateway's answer before 504 (the original: 10). */
  timeout?: number;
  /** Client addresses (IPs/CIDRs) allowed; absent or empty = everyone. */
  ca?: string[];
  /** The gateway IDs this listener reaches; absent = any well-formed ID (an unknown one times out). */
  gateways?: string[];
}

/** This node as a wazigate gateway of an existing wazigate-tunnel cloud. */
export interface RawWazigateGateway extends RawWazigateBroker {
  gateway: string;
  /** Where the cloud's request URIs are performed, e.g. `http://127.0.0.1:80`. */
  origin: string;
}

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
  /** Remote-access sessions and rendezvous (doc/remote-access.md): which listeners serve them, key lifetime, waits, caps. */
  access?: RawAccess;
  /** An HTTP endpoint asked before a tunnel, a stream or a session key is allowed (doc/remote-access.md#the-auth-hook). */
  authHook?: RawAuthHook;
  /** This node answers an existing wazigate-tunnel cloud as a gateway (doc/wazigate.md). */
  wazigate?: RawWazigateGateway;
}

/** `west.access` as written; times in seconds. */
export interface RawAccess {
  /** Listeners (keys of `proxy`) that serve `/remoteaccess/<key>`. */
  remoteAccess?: string[];
  /** Listeners (keys of `proxy`) that serve `/rendezvous/<key>`. */
  rendezvous?: string[];
  /** Seconds an issued key stays usable (default 60). */
  keyTtl?: number;
  /** Seconds the first party of a rendezvous waits for the second (default 8). */
  pairWait?: number;
  /** Most rendezvous parties waiting at once on this node (default 256), and per client address (default 8). */
  maxWaiting?: number;
  maxWaitingPerAddress?: number;
}

/** `west.authHook` as written; times in seconds. */
export interface RawAuthHook {
  url: string;
  /** Seconds to wait for the hook's answer (default 0.5). */
  timeout?: number;
  /** Seconds an allow is remembered (default 5); a deny (default 1, never longer than an allow). */
  cache?: number;
  denyCache?: number;
  /** When the hook cannot be asked: true lets the event through; false (default) refuses it. */
  failOpen?: boolean;
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
  /** Serve tunnels through the MQTT broker `sp` names instead of listening (doc/mqtt.md). */
  mqtt?: RawMqttServer;
}

/** `wsts.mqtt`: how the tunnel server logs in to its broker. */
export interface RawMqttServer {
  /** MQTT user name (default: `west.nm`). */
  user?: string;
  password?: RawSecret;
  /** PEM CA file to verify an mqtts:// or wss:// broker with. */
  ca?: string;
  /** Run a broker in this process on `sp` (loopback, no passwords): for a quick look only. */
  embed?: boolean;
}

/** `wstc[broker].mqtt`: the tunnel server to reach through the broker the key names. */
export interface RawMqttClient {
  /** The tunnel server's node name (its `west.nm`). */
  server: string;
  /** MQTT user name (default: the name this node presents). */
  user?: string;
  password?: RawSecret;
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
  /** The key is an MQTT broker's URL; the tunnel runs through it (doc/mqtt.md). */
  mqtt?: RawMqttClient;
}

export interface RawConfig {
  west: RawWest;
  wsts?: RawServer;
  wstc?: Record<string, RawClient>;
  proxy?: Record<string, RawListener>;
}
