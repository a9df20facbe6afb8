/**
 * `west state http://host:cp`: fetches a running node's `/state.json` from its control port
 * and prints it for a person (or, with `--json`, as it came).
 */
import http from 'node:http';
import https from 'node:https';
import type { Writable } from 'node:stream';
import type { ListenerState, NodeState, PeerState, TunnelState } from './control/state.js';
import { formatAddress, formatBytes, formatDuration } from './format.js';
import { isRecord } from './json.js';

/** What `/state.json` serves: the node state without the raw config. */
export type PublishedState = Omit<NodeState, 'raw' | 'routes'> & {
  /** Absent from a node of a release before the mesh. */
  routes?: NodeState['routes'];
};

export interface StateOptions {
  /** The control port: `http://host:port`, `host:port` or `:port` (this machine). */
  target: string;
  json: boolean;
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer` for a control port that requires one (west.cpToken). */
  token?: string;
  /** The clock the ages ("3m 5s ago") are measured against. */
  now?: Date;
}

/** Fetches and prints a node's state; returns the exit status (0, or 1 with one line on `err`). */
export async function showState(opts: StateOptions, out: Writable, err: Writable): Promise<number> {
  const url = stateUrl(opts.target);
  if (typeof url === 'string') {
    err.write(`west state: ${url}\n`);
    return 1;
  }
  let body: string;
  let state: PublishedState;
  try {
    const res = await get(url, opts.timeoutMs ?? 5000, opts.token);
    if (res.status === 401 || res.status === 403) {
      throw new Error(`${url.href} answered ${res.status}: the control port wants a token (west.cpToken); put it in WEST_CP_TOKEN`);
    }
    if (res.status !== 200) throw new Error(`${url.href} answered ${res.status}; is ${url.host} a west control port (west.cp)?`);
    body = res.body;
    state = parseState(body, url);
  } catch (e) {
    err.write(`west state: ${(e as Error).message}\n`);
    return 1;
  }
  out.write(opts.json ? (body.endsWith('\n') ? body : `${body}\n`) : renderState(state, opts.now ?? new Date()));
  return 0;
}

/** The `/state.json` URL of a control port given as a URL, `host:port` or `:port`. */
export function stateUrl(target: string): URL | string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `http://${target.startsWith(':') ? '127.0.0.1' : ''}${target}`;
  if (!URL.canParse(text)) return `${JSON.stringify(target)} is not a control port address; expected http://host:port (west.cp of the node)`;
  const base = new URL(text);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    return `${JSON.stringify(target)} is not an http:// address; the control port (west.cp) speaks plain HTTP`;
  }
  return new URL('/state.json', base);
}

interface Answer {
  status: number;
  body: string;
}

const MAX_BODY = 16 * 1024 * 1024;

function get(url: URL, timeoutMs: number, token: string | undefined): Promise<Answer> {
  const client = url.protocol === 'https:' ? https : http;
  const headers: http.OutgoingHttpHeaders = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const req = client.get(url, { agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new Error(`${url.href} sent more than ${MAX_BODY} bytes; not a west control port`));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs / 1000} s; is ${url.host} a west control port (west.cp)?`)));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot reach ${url.href}: ${reasonOf(e)}`)));
  });
}

function reasonOf(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED': return 'connection refused (is the node running, and is this its west.cp?)';
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'host name does not resolve';
    case 'ECONNRESET': case 'EPIPE': return 'the connection was closed without an answer; not a west control port?';
    case 'EHOSTUNREACH': case 'ENETUNREACH': return 'host is unreachable';
    default: return e.message;
  }
}

/** The JSON of a west node's state, or an error saying this is not a west control port. */
function parseState(body: string, url: URL): PublishedState {
  const notWest = new Error(`${url.href} did not answer with a west node's state; is ${url.host} a west control port (west.cp)?`);
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw notWest;
  }
  if (!isRecord(value) || typeof value.name !== 'string' || !Array.isArray(value.tunnels) || !Array.isArray(value.listeners)) throw notWest;
  // The parts the rendering walks through must have their shape; the rest is printed as found.
  const listenersOk = value.listeners.every((l) => isRecord(l) && Array.isArray(l.mappings) && isRecord(l.statuses) && isRecord(l.target));
  const serverOk = value.server === undefined || (isRecord(value.server) && Array.isArray(value.server.peers));
  if (!listenersOk || !serverOk || !value.tunnels.every(isRecord)) throw notWest;
  return value as unknown as PublishedState;
}

function since(iso: string | undefined, now: Date): string {
  if (!iso) return '';
  const at = Date.parse(iso);
  return Number.isNaN(at) ? ` since ${iso}` : ` since ${iso} (${formatDuration((now.getTime() - at) / 1000)} ago)`;
}

/** `200: 5, 404: 1`, lowest status first. */
function statusCounts(statuses: Record<string, number>): string {
  const entries = Object.entries(statuses).sort(([a], [b]) => Number(a) - Number(b));
  return entries.length === 0 ? 'none' : entries.map(([code, n]) => `${code}: ${n}`).join(', ');
}

function peerLine(p: PeerState, now: Date): string {
  const pool = (p.members ?? 1) > 1 ? ` (${p.members ?? 1} connections)` : '';
  return `  ${p.name}${pool} from ${formatAddress(p.address, p.port)}${since(p.since, now)}, ` +
    `streams ${p.streams} (${p.streamsOpened} opened), in ${formatBytes(p.bytesIn)}, out ${formatBytes(p.bytesOut)}`;
}

function tunnelLines(t: TunnelState, now: Date): string[] {
  const head = `  ${t.url} as ${t.as}`;
  if (t.connected) {
    const pool = t.connections !== undefined ? ` (${t.members ?? 0} of ${t.connections} connections)` : '';
    return [`${head}: connected to ${t.peer ?? '?'}${pool} at ${formatAddress(t.address, t.port)}${since(t.since, now)}`,
      `    streams ${t.streams}, in ${formatBytes(t.bytesIn)}, out ${formatBytes(t.bytesOut)}, connects ${t.connects}`];
  }
  const why = t.early ? `DOWN (${t.state})` : `not connected (${t.state}; dials on first use)`;
  const lines = [`${head}: ${why}, connects ${t.connects}`];
  if (t.lastError) lines.push(`    last error: ${t.lastError}`);
  return lines;
}

function listenerLines(l: ListenerState): string[] {
  const target = 'ea' in l.target ? `ea ${l.target.ea}` : `en ${l.target.en}`;
  const lines = [
    `  ${formatAddress(l.host || '*', l.port)} -> ${target} (${l.connected ? 'connected' : 'NOT connected'})`,
    `    requests ${l.requests}, in flight ${l.inFlight}; statuses ${statusCounts(l.statuses)}`,
  ];
  for (const m of l.mappings) lines.push(`    ${m.path} -> ${m.ou}${m.ca.length > 0 ? ` (ca ${m.ca.join(', ')})` : ''}`);
  return lines;
}

/** The state as a person reads it: node, tunnel server and peers, tunnels, listeners, totals. */
export function renderState(s: PublishedState, now: Date): string {
  const workers = s.workers ? `, ${s.workers.count} workers (worker ${s.workers.answering} answers)` : '';
  const lines = [`node ${s.name}: west ${s.version}, pid ${s.pid}${workers}, up ${formatDuration(s.uptimeS)} (started ${s.startedAt})`];
  if (s.control) lines.push(`control port ${formatAddress(s.control.host || '*', s.control.port)}`);

  if (s.server) {
    const peers = s.server.peers;
    lines.push('', `tunnel server ${s.server.url}: ${peers.length} peer${peers.length === 1 ? '' : 's'} connected`);
    for (const p of peers) lines.push(peerLine(p, now));
  }

  const up = s.tunnels.filter((t) => t.connected).length;
  lines.push('', `tunnels: ${s.tunnels.length === 0 ? 'none' : `${up} of ${s.tunnels.length} connected`}`);
  for (const t of s.tunnels) lines.push(...tunnelLines(t, now));

  lines.push('', `listeners: ${s.listeners.length === 0 ? 'none' : s.listeners.length}`);
  for (const l of s.listeners) lines.push(...listenerLines(l));
  const tcp = s.tcpListeners ?? [];
  if (tcp.length > 0) {
    lines.push('', `tcp listeners: ${tcp.length}`);
    for (const l of tcp) {
      const target = 'ea' in l.target ? `ea ${l.target.ea}` : `en ${l.target.en}`;
      lines.push(`  ${formatAddress(l.host || '*', l.port)} -> ${target} -> ${l.to} (${l.connected ? 'connected' : 'NOT connected'})${l.ca.length > 0 ? ` (ca ${l.ca.join(', ')})` : ''}`,
        `    connections ${l.connections}, open ${l.open}, refused at once ${l.refused}`);
    }
  }

  if (s.routes && s.routes.length > 0) {
    lines.push('', `routes: ${s.routes.length}`);
    for (const r of s.routes) {
      lines.push(`  ${r.name} via ${r.nextHop}: ${r.path.join(' -> ')} (${r.hops} hop${r.hops === 1 ? '' : 's'}, cost ${r.cost})${since(r.since, now)}`);
    }
  }

  const total: Record<string, number> = {};
  let requests = 0;
  let inFlight = 0;
  for (const l of s.listeners) {
    requests += l.requests;
    inFlight += l.inFlight;
    for (const [code, n] of Object.entries(l.statuses)) total[code] = (total[code] ?? 0) + n;
  }
  lines.push('', `requests: ${requests}, in flight ${inFlight}; statuses ${statusCounts(total)}`);
  return lines.join('\n') + '\n';
}
