/**
 * The original west's plain-text state dump, kept byte-compatible in layout so scripts that
 * read `wget -qO- http://host:cp/` keep working: four sections, each Python-style JSON
 * (sorted keys, 4-space indent, `"key":value`), with live state added beside the old keys.
 */
import { canonicalName } from '../config/types.js';
import type { NodeState } from './state.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Python's `json.dumps(v, sort_keys=True, indent=4, separators=(',', ':'))`, ensure_ascii on. */
export function pythonJson(value: Json, depth = 0): string {
  const pad = '    '.repeat(depth + 1);
  const end = '    '.repeat(depth);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => pad + pythonJson(v, depth + 1)).join(',\n')}\n${end}]`;
  }
  if (value !== null && typeof value === 'object') {
    const members: string[] = [];
    for (const k of Object.keys(value).sort()) {
      const v = value[k];
      if (v !== undefined) members.push(`${pad}${asciiString(k)}:${pythonJson(v, depth + 1)}`);
    }
    if (members.length === 0) return '{}';
    return `{\n${members.join(',\n')}\n${end}}`;
  }
  if (typeof value === 'string') return asciiString(value);
  return JSON.stringify(value);
}

function asciiString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Tokens never leave the node: their values (or where they are read from) print as "[redacted]". */
export function redactSecrets(key: string, value: unknown): unknown {
  if (key === 'token' || key === 'cpToken') return '[redacted]';
  if (key === 'tokens' && value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).map((name) => [name, '[redacted]']));
  }
  return value;
}

function clone(v: unknown): Record<string, Json> {
  return v && typeof v === 'object' ? JSON.parse(JSON.stringify(v, redactSecrets)) as Record<string, Json> : {};
}

/** The text dump for `GET /` on the control port. */
export function renderDump(state: NodeState): string {
  const raw = state.raw;

  const west = clone(raw.west);
  if (state.control) {
    west.addr = state.control.host;
    west.port = state.control.port;
  }
  west.live = { pid: state.pid, ...(state.workers ? { workers: state.workers } : {}), startedAt: state.startedAt, uptimeS: state.uptimeS, version: state.version };

  const wsts = clone(raw.wsts);
  if (state.server) {
    wsts.addr = state.server.host;
    wsts.port = state.server.port;
    wsts.clients = state.server.peers.map((p) => ({
      name: p.name, so: [p.address, p.port], since: p.since, streams: p.streams, bytesIn: p.bytesIn, bytesOut: p.bytesOut,
      // A pool is one client with its connection count; a client of one connection reads as before.
      ...((p.members ?? 1) > 1 ? { members: p.members ?? 1 } : {}),
      ...(p.transport === 'mqtt' ? { transport: 'mqtt' } : {}),
    }));
  }

  // As the original: every tunnel this node dials, and every `en` peer it expects, under wstc.
  const wstc = clone(raw.wstc);
  for (const t of state.tunnels) {
    const entry = wstc[t.url] && typeof wstc[t.url] === 'object' ? wstc[t.url] as Record<string, Json> : { ee: t.early ? 'yes' : 'no' };
    entry.nm = t.as;
    entry.so = t.connected ? [t.address ?? '', t.port ?? 0] : 'unconnected';
    entry.live = {
      state: t.state, since: t.since ?? null, peer: t.peer ?? null, streams: t.streams, connects: t.connects, lastError: t.lastError ?? null,
      ...(t.connections !== undefined ? { members: t.members ?? 0 } : {}),
      ...(t.transport === 'mqtt' ? { transport: 'mqtt' } : {}),
    };
    wstc[t.url] = entry;
  }
  for (const l of state.listeners) {
    if (!('en' in l.target)) continue;
    const name = l.target.en;
    const peer = state.server?.peers.find((p) => canonicalName(p.name) === canonicalName(name));
    wstc[name] = {
      ee: 'no',
      nm: state.name,
      so: peer ? [peer.address, peer.port] : 'unconnected',
      ...(peer ? { live: { since: peer.since, streams: peer.streams } } : {}),
    };
  }

  const proxy = clone(raw.proxy);
  for (const l of state.listeners) {
    const entry = (proxy[l.key] ?? {}) as Record<string, Json>;
    entry.addr = l.host;
    entry.port = l.port;
    entry.live = { connected: l.connected, requests: l.requests, inFlight: l.inFlight, statuses: l.statuses };
    proxy[l.key] = entry;
  }

  const sections: [string, Json][] = [['west', west], ['wsts', wsts], ['wstc', wstc], ['proxy', proxy]];
  // After the original's sections: the mesh's routes, by destination, on a node that routes or
  // relays by name (transit, relays, or an `en` beyond its own peers). A classic deployment's
  // dump stays the original's, section for section.
  if (usesMesh(state)) {
    const routes: Record<string, Json> = {};
    for (const r of state.routes) routes[r.name] = { nextHop: r.nextHop, path: r.path, hops: r.hops, cost: r.cost, since: r.since, ageS: r.ageS };
    sections.push(['routes', routes]);
  }
  return sections
    .map(([name, section]) => `--- ${name} object ---\n${pythonJson(section)}\n`)
    .join('');
}

/** Whether this node takes part in the mesh beyond its own tunnels' peers. */
function usesMesh(state: NodeState): boolean {
  const west = state.raw.west;
  if (west.transit !== undefined || west.relays !== undefined) return true;
  const far = new Set(state.routes.filter((r) => r.hops > 1).map((r) => r.name));
  return state.listeners.some((l) => 'en' in l.target && far.has(canonicalName(l.target.en)));
}
