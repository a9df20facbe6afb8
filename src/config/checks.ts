/**
 * Checks that relate one part of the config to another, which a JSON Schema cannot express.
 * They run even when the schema found problems (so one run reports everything), and so read
 * the parsed JSON defensively: whatever has the wrong shape was already reported.
 */
import { bindsServer, mqttFindings } from './mqtt-checks.js';
import type { Endpoint } from './types.js';
import { canonicalName } from './types.js';
import {
  endpointsClash, parseEndpoint, parseListenerKey, parseTcpListenerKey, parseTunnelUrl, serverEndpoint, tunnelUrlIdentity,
} from './endpoint.js';
import { isRecord } from '../json.js';
import type { DuplicateKey, PathSegment } from './json-text.js';
import { formatPath, type Finding } from './messages.js';
import { cloudListenerFindings } from '../wazigate/config.js';

type Json = Record<string, unknown>;

function section(root: Json, key: string): Json {
  const value = root[key];
  return isRecord(value) ? value : {};
}

/** The trailing "/" does not change what a mapping matches, so "/px" and "/px/" are one path. */
export function normaliseMappingPath(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') || '/' : path;
}

/** JSON.parse keeps only the last of two equal keys; say so instead of losing one silently. */
export function duplicateKeyFindings(duplicates: readonly DuplicateKey[]): Finding[] {
  const seen = new Set<string>();
  const findings: Finding[] = [];
  for (const { at, key } of duplicates) {
    const path = [...at, key];
    const id = JSON.stringify(path);
    if (seen.has(id)) continue;
    seen.add(id);
    const what = at.length === 2 && at[0] === 'proxy' && key.startsWith('/') ? 'this mapping path' : 'this key';
    findings.push({ at: path, message: `${what} is written more than once in the same object; JSON keeps only the last one` });
  }
  return findings;
}

interface Binding {
  at: PathSegment[];
  /** How the clash message names it: the path, plus the value when the path is not the address. */
  label: string;
  endpoint: Endpoint;
}

/** Everything this node listens on, in file order: control port, tunnel server, listeners. */
function bindings(root: Json): Binding[] {
  const found: Binding[] = [];
  const cp = section(root, 'west').cp;
  if (typeof cp === 'string') {
    try {
      found.push({ at: ['west', 'cp'], label: `west.cp (${JSON.stringify(cp)})`, endpoint: parseEndpoint(cp) });
    } catch {
      // reported by the schema
    }
  }
  const sp = section(root, 'wsts').sp;
  const spUrl = typeof sp === 'string' ? parseTunnelUrl(sp) : undefined;
  // Over MQTT the server binds nothing, unless it embeds the broker.
  if (spUrl && bindsServer(section(root, 'wsts'))) found.push({ at: ['wsts', 'sp'], label: `wsts.sp (${JSON.stringify(sp)})`, endpoint: serverEndpoint(spUrl) });
  for (const key of Object.keys(section(root, 'proxy'))) {
    const endpoint = parseListenerKey(key) ?? parseTcpListenerKey(key);
    if (endpoint) found.push({ at: ['proxy', key], label: formatPath(['proxy', key]), endpoint });
  }
  return found;
}

function portClashes(root: Json): Finding[] {
  const all = bindings(root);
  const findings: Finding[] = [];
  all.forEach((b, index) => {
    const earlier = all.slice(0, index).find((a) => endpointsClash(a.endpoint, b.endpoint));
    if (earlier) {
      findings.push({ at: b.at, message: `port ${b.endpoint.port} is already used by ${earlier.label}` });
    }
  });
  return findings;
}

/** A listener named in west.access serves WebSocket endpoints, and may have no mappings of its own. */
function servesAccess(root: Json, key: string): boolean {
  const access = section(root, 'west').access;
  if (!isRecord(access)) return false;
  return [access.remoteAccess, access.rendezvous].some((list) => Array.isArray(list) && list.includes(key));
}

function listenerFindings(root: Json): Finding[] {
  const findings: Finding[] = [];
  const nodeName = section(root, 'west').nm;
  const hasServer = typeof section(root, 'wsts').sp === 'string';
  // With the mesh, `en` may name any node reached through this node's tunnels, its server's
  // clients or the servers it dials: only a node with no tunnel at all cannot reach it.
  const hasTunnel = hasServer || Object.keys(section(root, 'wstc')).length > 0 ||
    Object.values(section(root, 'proxy')).some((l) => isRecord(l) && typeof l.ea === 'string');
  for (const [key, listener] of Object.entries(section(root, 'proxy'))) {
    if (!isRecord(listener)) continue;
    const at = ['proxy', key];
    if (isRecord(listener.wazigate)) {
      findings.push(...cloudListenerFindings(key, listener, at));
      continue;
    }
    const paths = Object.keys(listener).filter((k) => k.startsWith('/'));
    // A tcp:// listener has no mappings (the schema refuses them): one address, `to`.
    if (paths.length === 0 && !parseTcpListenerKey(key) && !servesAccess(root, key)) {
      findings.push({ at, message: 'has no path mappings; add at least one, e.g. "/px": { "ou": "http://host:port/x" }' });
    }
    const byNormal = new Map<string, string>();
    for (const path of paths) {
      if (/[?#]/.test(path)) {
        findings.push({ at: [...at, path], message: 'a mapping path cannot contain "?" or "#" (the query string is passed on, not matched)' });
      }
      const normal = normaliseMappingPath(path);
      const first = byNormal.get(normal);
      if (first === undefined) byNormal.set(normal, path);
      else findings.push({ at: [...at, path], message: `is the same path as ${JSON.stringify(first)} (a trailing "/" does not count)` });
    }
    const en = listener.en;
    const via = listener.via;
    if (Array.isArray(via)) {
      const names = via.filter((v): v is string => typeof v === 'string').map(canonicalName);
      if (typeof en !== 'string') {
        findings.push({ at: [...at, 'via'], message: 'pins a path to the node "en" names: it needs "en"' });
      } else if (names.includes(canonicalName(en)) || (typeof nodeName === 'string' && names.includes(canonicalName(nodeName)))) {
        findings.push({ at: [...at, 'via'], message: 'lists the nodes between this one and the "en" node: neither this node nor the "en" node' });
      } else if (new Set(names).size !== names.length) {
        findings.push({ at: [...at, 'via'], message: 'names a node twice (a path never passes a node twice)' });
      }
    }
    if (typeof en === 'string' && en !== '') {
      if (!hasTunnel) {
        findings.push({ at: [...at, 'en'], message: "names a peer that connects to this node's tunnel server, but wsts.sp is not set" });
      } else if (typeof nodeName === 'string' && canonicalName(en) === canonicalName(nodeName)) {
        findings.push({ at: [...at, 'en'], message: `names this node itself (west.nm is ${JSON.stringify(nodeName)}); it must name a peer` });
      }
    }
  }
  return findings;
}

function clientFindings(root: Json): Finding[] {
  const findings: Finding[] = [];
  const byIdentity = new Map<string, string>();
  for (const key of Object.keys(section(root, 'wstc'))) {
    const url = parseTunnelUrl(key);
    if (!url) continue;
    const first = byIdentity.get(tunnelUrlIdentity(url));
    if (first === undefined) byIdentity.set(tunnelUrlIdentity(url), key);
    else findings.push({ at: ['wstc', key], message: `names the same tunnel server as wstc[${JSON.stringify(first)}]` });
  }
  return findings;
}

/** TLS files belong to TLS ends only, and a TLS end needs its certificate and key. */
function tlsFindings(root: Json): Finding[] {
  const findings: Finding[] = [];
  const needPair = (obj: Json, at: PathSegment[], what: string): void => {
    for (const k of ['cert', 'key'] as const) {
      if (obj[k] === undefined) findings.push({ at: [...at, k], message: `is required for ${what}` });
    }
  };
  const refuse = (obj: Json, at: PathSegment[], keys: readonly string[], why: string): void => {
    for (const k of keys) if (obj[k] !== undefined) findings.push({ at: [...at, k], message: why });
  };

  const wsts = section(root, 'wsts');
  const sp = typeof wsts.sp === 'string' && wsts.mqtt === undefined ? parseTunnelUrl(wsts.sp) : undefined;
  if (sp?.protocol === 'wss:') needPair(wsts, ['wsts'], 'a wss:// tunnel server');
  else refuse(wsts, ['wsts'], ['cert', 'key', 'clientCa'], 'is only used by a wss:// tunnel server (wsts.sp)');
  if (typeof wsts.sp !== 'string') refuse(wsts, ['wsts'], ['tokens'], 'has no effect without a tunnel server (wsts.sp)');
  // Without client certificates there is no name to compare with: a silent no-op would let the
  // operator believe names are tied to certificates.
  if (wsts.certNames === true && (sp?.protocol !== 'wss:' || wsts.clientCa === undefined)) {
    findings.push({ at: ['wsts', 'certNames'], message: 'is only used by a wss:// tunnel server (wsts.sp) that requires client certificates (wsts.clientCa)' });
  }

  for (const [key, entry] of Object.entries(section(root, 'wstc'))) {
    if (!isRecord(entry)) continue;
    const url = parseTunnelUrl(key);
    if (url && url.protocol !== 'wss:' && url.protocol !== 'mqtts:') refuse(entry, ['wstc', key], ['ca', 'cert', 'key'], 'is only used for a wss:// tunnel server (or an mqtts:// broker)');
    else if ((entry.cert === undefined) !== (entry.key === undefined)) needPair(entry, ['wstc', key], 'a client certificate');
  }

  for (const [key, listener] of Object.entries(section(root, 'proxy'))) {
    if (!isRecord(listener) || isRecord(listener.wazigate)) continue;
    const endpoint = parseListenerKey(key);
    if (endpoint?.tls) needPair(listener, ['proxy', key], 'an https:// listener');
    else if (endpoint) refuse(listener, ['proxy', key], ['cert', 'key'], 'is only used by an https:// listener');
  }
  return findings;
}

function tuningFindings(root: Json): Finding[] {
  const west = section(root, 'west');
  const findings: Finding[] = [];
  const { reconnectMin: min, reconnectMax: max } = west;
  if (typeof min === 'number' && typeof max === 'number' && min > max) {
    findings.push({ at: ['west', 'reconnectMin'], message: `must not be above west.reconnectMax (${max})` });
  }
  // Auto-tuning grows a window from streamWindow up to maxStreamWindow; the default is 262144.
  const { streamWindow = 262_144, maxStreamWindow } = west;
  if (typeof streamWindow === 'number' && typeof maxStreamWindow === 'number' && maxStreamWindow < streamWindow) {
    findings.push({ at: ['west', 'maxStreamWindow'], message: `must not be below west.streamWindow (${streamWindow}): windows grow from streamWindow up to maxStreamWindow` });
  }
  return findings;
}

/** `west.access` names listeners of this config, and its keys are issued by a control port with a token. */
function accessFindings(root: Json): Finding[] {
  const west = section(root, 'west');
  const access = isRecord(west.access) ? west.access : undefined;
  if (!access) return [];
  const findings: Finding[] = [];
  const listeners = Object.keys(section(root, 'proxy'));
  let used = 0;
  for (const key of ['remoteAccess', 'rendezvous'] as const) {
    const list = access[key];
    if (!Array.isArray(list)) continue;
    used += list.length;
    list.forEach((entry: unknown, i) => {
      if (typeof entry === 'string' && !listeners.includes(entry)) {
        findings.push({ at: ['west', 'access', key, i], message: `names no listener of this config (the keys of "proxy" are ${listeners.map((l) => JSON.stringify(l)).join(', ') || 'none'})` });
      }
    });
  }
  if (used > 0 && (west.cp === undefined || west.cpToken === undefined)) {
    findings.push({ at: ['west', 'access'], message: 'keys are issued by the control port with its token: set west.cp and west.cpToken' });
  }
  return findings;
}

/** All cross-reference problems of a parsed config, in a stable order. */
export function crossReferenceFindings(root: unknown): Finding[] {
  if (!isRecord(root)) return [];
  return [
    ...tuningFindings(root), ...tlsFindings(root), ...portClashes(root), ...listenerFindings(root), ...clientFindings(root), ...accessFindings(root), ...mqttFindings(root),
  ];
}
