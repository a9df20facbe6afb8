/**
 * Reads a config file into the NodeConfig a node runs with. Every problem in the file is
 * collected (syntax, schema, duplicate keys, cross-references) and thrown as one ConfigError,
 * so an operator fixes a file in one pass instead of one error per run.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigFiles, whyUnreadable } from './secrets.js';
import { ConfigError, ConfigReadError, type ConfigIssue } from '../errors.js';
import { crossReferenceFindings, duplicateKeyFindings, normaliseMappingPath } from './checks.js';
import { isIpOrCidr, parseEndpoint, parseListenerKey, parseOutgoingUrl, parseTcpListenerKey, parseTcpTarget, parseTunnelUrl, serverEndpoint, tunnelUrlIdentity } from './endpoint.js';
import { pathKey, scanJson, type JsonScan, type PathSegment } from './json-text.js';
import { findingsFromAjv, formatPath, type Finding } from './messages.js';
import { compileConfigSchema } from './schema.js';
import {
  DEFAULT_ACCESS, DEFAULT_AUTH_HOOK, DEFAULT_TUNING, type AccessConfig, type AuthHookConfig, type ClientConfig, type ListenerConfig, type TcpListenerConfig,
  type ListenerTarget, type MappingConfig,
  canonicalName, type NodeConfig, type RawConfig, type RawEgress, type RawServer, type RawListener, type RawWest, type ServerConfig, type Tuning,
  type WazigateCloudConfig,
} from './types.js';
import { resolveCloud, resolveGateway } from '../wazigate/config.js';

export { parseEndpoint } from './endpoint.js';

const validate = compileConfigSchema();

export interface ReadOptions {
  /**
   * Secrets that are not on this machine (a token's unset variable or absent file, a TLS key
   * file) are listed in `skipped` instead of failing the load: `west check --skip-secrets`.
   * Such a config is for checking only; a node never runs with this.
   */
  skipSecrets?: boolean;
}

export interface ReadConfig {
  config: NodeConfig;
  /** Secrets not read (with `skipSecrets`), each at its JSON path with why. */
  skipped: ConfigIssue[];
}

/** Parses and validates config text; `source` names the file in messages. Throws ConfigError. */
export function parseConfig(text: string, source = ''): NodeConfig {
  return readConfig(text, source).config;
}

/** parseConfig, with what `options` left unread. Throws ConfigError. */
export function readConfig(text: string, source = '', options: ReadOptions = {}): ReadConfig {
  const file = source === '' ? undefined : source;
  // Editors on Windows may save a byte-order mark, which JSON.parse rejects.
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const scan = scanJson(body);
  if (scan.syntaxError) {
    const { line, column, message } = scan.syntaxError;
    throw configError([{ path: `line ${line}, column ${column}`, message: `invalid JSON: ${message}` }], file);
  }
  const root: unknown = JSON.parse(body);
  const schemaFindings = validate(root) ? [] : findingsFromAjv(validate.errors ?? [], root);
  const findings = [
    ...schemaFindings,
    ...duplicateKeyFindings(scan.duplicates),
    ...crossReferenceFindings(root),
  ];
  if (findings.length > 0) throw configError(inFileOrder(findings, scan), file);
  const files = new ConfigFiles(source === '' ? process.cwd() : path.dirname(path.resolve(source)), options.skipSecrets);
  const config = resolve(root as RawConfig, source, files);
  if (files.findings.length > 0) throw configError(inFileOrder(files.findings, scan), file);
  return { config, skipped: inFileOrder(files.skipped, scan) };
}

/** Reads and parses a config file. Throws ConfigError (ConfigReadError when the file cannot be read). */
export async function loadConfigFile(file: string): Promise<NodeConfig> {
  return (await readConfigFile(file)).config;
}

/** loadConfigFile, with what `options` left unread. */
export async function readConfigFile(file: string, options: ReadOptions = {}): Promise<ReadConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigReadError(file, whyUnreadable(err));
  }
  return readConfig(text, file, options);
}

function configError(issues: ConfigIssue[], file: string | undefined): ConfigError {
  return new ConfigError(file === undefined ? issues : issues.map((i) => ({ ...i, file })), file);
}

/** Findings sorted by where their path (or its nearest written ancestor) sits in the file. */
function inFileOrder(findings: Finding[], scan: JsonScan): ConfigIssue[] {
  const offsetOf = (at: PathSegment[]): number => {
    for (let n = at.length; n > 0; n--) {
      const offset = scan.offsets.get(pathKey(at.slice(0, n)));
      if (offset !== undefined) return offset;
    }
    return -1;
  };
  return findings
    .map((f, index) => ({ f, index, offset: offsetOf(f.at) }))
    .sort((a, b) => a.offset - b.offset || a.index - b.index)
    .map(({ f }) => ({ path: formatPath(f.at), message: f.message }));
}

// Everything below runs only on a config that passed every check, so the parsers succeed.

function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`internal: ${what} passed validation but does not parse`);
  return value;
}

function resolveTuning(west: RawWest): Tuning {
  const ms = (seconds: number | undefined, fallback: number): number =>
    seconds === undefined ? fallback : Math.round(seconds * 1000);
  return {
    responseTimeoutMs: ms(west.responseTimeout, DEFAULT_TUNING.responseTimeoutMs),
    connectTimeoutMs: ms(west.connectTimeout, DEFAULT_TUNING.connectTimeoutMs),
    heartbeatMs: ms(west.heartbeat, DEFAULT_TUNING.heartbeatMs),
    drainTimeoutMs: ms(west.drainTimeout, DEFAULT_TUNING.drainTimeoutMs),
    streamWindow: west.streamWindow ?? DEFAULT_TUNING.streamWindow,
    maxStreamWindow: west.maxStreamWindow ?? Math.max(DEFAULT_TUNING.maxStreamWindow, west.streamWindow ?? 0),
    maxConnectionWindow: west.maxConnectionWindow ?? DEFAULT_TUNING.maxConnectionWindow,
    memoryBudget: west.memoryBudget ?? DEFAULT_TUNING.memoryBudget,
    maxHops: west.maxHops ?? DEFAULT_TUNING.maxHops,
    retryAfterS: west.retryAfter ?? DEFAULT_TUNING.retryAfterS,
    peerWaitMs: ms(west.peerWait, DEFAULT_TUNING.peerWaitMs),
    reconnectMinMs: ms(west.reconnectMin, DEFAULT_TUNING.reconnectMinMs),
    reconnectMaxMs: ms(west.reconnectMax, DEFAULT_TUNING.reconnectMaxMs),
    maxStreams: west.maxStreams ?? DEFAULT_TUNING.maxStreams,
    maxHeaderSize: west.maxHeaderSize ?? DEFAULT_TUNING.maxHeaderSize,
    idleTimeoutMs: ms(west.idleTimeout, DEFAULT_TUNING.idleTimeoutMs),
    headerTimeoutMs: ms(west.headerTimeout, DEFAULT_TUNING.headerTimeoutMs),
    maxConnectionsPerAddress: west.maxConnectionsPerAddress ?? DEFAULT_TUNING.maxConnectionsPerAddress,
    errorDetail: west.errorDetail ?? DEFAULT_TUNING.errorDetail,
    trustedProxies: [...(west.trustedProxies ?? DEFAULT_TUNING.trustedProxies)],
    wireVersion: west.wire ?? DEFAULT_TUNING.wireVersion,
  };
}

function resolveAccess(west: RawWest): AccessConfig | undefined {
  const a = west.access;
  if (!a) return undefined;
  const ms = (s: number | undefined, fallback: number): number => (s === undefined ? fallback : Math.round(s * 1000));
  return {
    remoteAccess: [...(a.remoteAccess ?? [])], rendezvous: [...(a.rendezvous ?? [])],
    keyTtlMs: ms(a.keyTtl, DEFAULT_ACCESS.keyTtlMs), pairWaitMs: ms(a.pairWait, DEFAULT_ACCESS.pairWaitMs),
    maxWaiting: a.maxWaiting ?? DEFAULT_ACCESS.maxWaiting, maxWaitingPerAddress: a.maxWaitingPerAddress ?? DEFAULT_ACCESS.maxWaitingPerAddress,
  };
}

function resolveAuthHook(west: RawWest): AuthHookConfig | undefined {
  const h = west.authHook;
  if (!h) return undefined;
  const ms = (s: number | undefined, fallback: number): number => (s === undefined ? fallback : Math.round(s * 1000));
  const cacheMs = ms(h.cache, DEFAULT_AUTH_HOOK.cacheMs);
  return {
    url: h.url, timeoutMs: ms(h.timeout, DEFAULT_AUTH_HOOK.timeoutMs), cacheMs,
    // A deny is never remembered longer than an allow would be.
    denyCacheMs: Math.min(cacheMs, ms(h.denyCache, DEFAULT_AUTH_HOOK.denyCacheMs)), failOpen: h.failOpen === true,
  };
}

function resolveServer(wsts: RawServer, sp: string, name: string, files: ConfigFiles): ServerConfig {
  const url = must(parseTunnelUrl(sp), 'wsts.sp');
  const tlsMaterial = files.tls({ cert: wsts.cert, key: wsts.key, ca: wsts.clientCa }, ['wsts'], 'clientCa');
  let tokens: Map<string, string> | undefined;
  if (wsts.tokens) {
    tokens = new Map();
    for (const [name, raw] of Object.entries(wsts.tokens)) {
      const token = files.secret(raw, ['wsts', 'tokens', name]);
      if (token !== undefined) tokens.set(name === '*' ? '*' : canonicalName(name), token);
    }
  }
  const ca = wsts.ca ?? [];
  const mqtt = wsts.mqtt;
  const password = files.secret(mqtt?.password, ['wsts', 'mqtt', 'password']);
  const brokerCa = mqtt ? files.tls({ ca: mqtt.ca }, ['wsts', 'mqtt']) : undefined;
  return {
    url: sp,
    // Over MQTT, `sp` is the broker's URL: TLS there is the broker connection's, not a listener's.
    tls: url.protocol === 'wss:' && !mqtt,
    claim: wsts.claim ?? 'replace',
    ...serverEndpoint(url),
    ...(tlsMaterial ? { tlsMaterial } : {}),
    ...(tokens ? { tokens } : {}),
    allowAddresses: ca.filter(isIpOrCidr),
    allowNames: ca.filter((entry) => !isIpOrCidr(entry)).map(canonicalName),
    ...(wsts.certNames ? { certNames: true as const } : {}),
    ...(mqtt ? {
      mqtt: {
        user: mqtt.user ?? canonicalName(name), embed: mqtt.embed === true,
        ...(password !== undefined ? { password } : {}), ...(brokerCa?.ca ? { ca: brokerCa.ca } : {}),
      },
    } : {}),
  };
}

function resolveEgress(egress: RawEgress | undefined): Map<string, string[]> | undefined {
  if (!egress) return undefined;
  return new Map(Object.entries(egress).map(([name, list]) => [name === '*' ? '*' : canonicalName(name), [...list]]));
}

/** A map of node names (or "*") to lists of node names (or "*"), canonical: `west.transit`, `west.learn`. */
function resolveNameLists(lists: Record<string, string[]> | undefined): Map<string, string[]> | undefined {
  if (!lists) return undefined;
  const name = (n: string): string => (n === '*' ? '*' : canonicalName(n));
  return new Map(Object.entries(lists).map(([key, list]) => [name(key), list.map(name)]));
}

function resolveMappings(listener: RawListener): MappingConfig[] {
  const mappings: MappingConfig[] = [];
  for (const [path, value] of Object.entries(listener)) {
    if (!path.startsWith('/') || typeof value !== 'object' || Array.isArray(value) || !('ou' in value)) continue;
    mappings.push({
      path: normaliseMappingPath(path),
      outgoing: must(parseOutgoingUrl(value.ou), `mapping ${path}`),
      allow: [...(value.ca ?? [])],
    });
  }
  // Longest first, so the first segment-prefix match is the most specific one.
  return mappings.sort((a, b) => b.path.length - a.path.length);
}

function resolve(raw: RawConfig, source: string, files: ConfigFiles): NodeConfig {
  const west = raw.west;
  const clients: ClientConfig[] = [];
  // Keyed by normalised URL so an `ea` written slightly differently still finds its wstc entry.
  const clientByIdentity = new Map<string, ClientConfig>();
  const addClient = (client: ClientConfig): ClientConfig => {
    clients.push(client);
    clientByIdentity.set(tunnelUrlIdentity(must(parseTunnelUrl(client.url), client.url)), client);
    return client;
  };
  for (const [url, entry] of Object.entries(raw.wstc ?? {})) {
    const token = files.secret(entry.token, ['wstc', url, 'token']);
    const tlsMaterial = files.tls({ cert: entry.cert, key: entry.key, ca: entry.ca }, ['wstc', url]);
    const name = entry.nm ?? west.nm;
    const password = files.secret(entry.mqtt?.password, ['wstc', url, 'mqtt', 'password']);
    addClient({
      url, name, early: entry.ee !== 'no',
      ...(entry.mqtt ? { mqtt: { server: entry.mqtt.server, user: entry.mqtt.user ?? canonicalName(name), ...(password !== undefined ? { password } : {}) } } : {}),
      ...(token !== undefined ? { token } : {}), ...(tlsMaterial ? { tlsMaterial } : {}),
      ...(entry.cost !== undefined ? { cost: entry.cost } : {}),
      ...(entry.connections !== undefined && entry.connections > 1 ? { connections: entry.connections } : {}),
    });
  }

  const listeners: ListenerConfig[] = [];
  const tcpListeners: TcpListenerConfig[] = [];
  const clouds: WazigateCloudConfig[] = [];
  for (const [key, listener] of Object.entries(raw.proxy ?? {})) {
    if (listener.wazigate) {
      clouds.push(resolveCloud(key, must(parseListenerKey(key), key), listener.wazigate, files));
      continue;
    }
    let target: ListenerTarget;
    if (listener.ea !== undefined) {
      const identity = tunnelUrlIdentity(must(parseTunnelUrl(listener.ea), listener.ea));
      const client = clientByIdentity.get(identity) ?? addClient({ url: listener.ea, name: west.nm, early: true });
      // The client's URL as written, so the tunnel for this listener is found by plain equality.
      target = { kind: 'ea', url: client.url };
    } else {
      target = { kind: 'en', name: must(listener.en, `${key} en`) };
    }
    const tcp = parseTcpListenerKey(key);
    if (tcp) {
      tcpListeners.push({
        key, ...tcp, target, to: must(parseTcpTarget(listener.to ?? ''), `${key} to`), allow: [...(listener.ca ?? [])],
        ...(listener.via ? { via: listener.via.map(canonicalName) } : {}),
      });
      continue;
    }
    const { host, port, tls } = must(parseListenerKey(key), key);
    const tlsMaterial = tls ? files.tls({ cert: listener.cert, key: listener.key }, ['proxy', key]) : undefined;
    listeners.push({
      key, host, port, ...(tlsMaterial ? { tlsMaterial } : {}), target, mappings: resolveMappings(listener),
      ...(listener.via ? { via: listener.via.map(canonicalName) } : {}),
    });
  }
  const controlToken = files.secret(west.cpToken, ['west', 'cpToken']);
  const egress = resolveEgress(west.egress);
  const transit = resolveNameLists(west.transit);
  const learn = resolveNameLists(west.learn);
  const access = resolveAccess(west);
  const authHook = resolveAuthHook(west);
  const gateway = west.wazigate ? resolveGateway(west.wazigate, files) : undefined;

  return {
    source,
    raw,
    name: west.nm,
    ...(west.cp !== undefined ? { control: parseEndpoint(west.cp) } : {}),
    ...(raw.wsts?.sp !== undefined ? { server: resolveServer(raw.wsts, raw.wsts.sp, west.nm, files) } : {}),
    clients,
    listeners,
    tcpListeners,
    tuning: resolveTuning(west),
    ...(egress ? { egress } : {}),
    ...(transit ? { transit } : {}),
    ...(learn ? { learn } : {}),
    ...(access ? { access } : {}),
    ...(authHook ? { authHook } : {}),
    relays: (west.relays ?? []).map((n) => (n === '*' ? '*' : canonicalName(n))),
    ...(west.workers !== undefined ? { workers: west.workers } : {}),
    ...(controlToken !== undefined ? { controlToken } : {}),
    ...(clouds.length > 0 || gateway ? { wazigate: { clouds, ...(gateway ? { gateway } : {}) } } : {}),
  };
}
