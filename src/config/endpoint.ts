/**
 * Parsers for the address-like strings of the config: `host:port` endpoints, proxy listener
 * keys, tunnel and outgoing URLs, and `ca` entries. Shared by the schema's formats (which
 * only need yes/no) and by load.ts (which needs the parsed value).
 */
import { isIP } from 'node:net';
import { DEFAULT_LISTENER_PORT, type Endpoint } from './types.js';

// Letters, digits, '-', '_' and dots: wide enough for real host names and IPv4 literals,
// narrow enough to reject URLs, user@host and unbracketed IPv6 written where a host goes.
const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/;
const ENDPOINT = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::([^:]*))?$/;

/** Hosts that mean "every interface" when listening. */
const ALL_INTERFACES = new Set(['', '0.0.0.0', '::']);

/**
 * Splits `"host:port"`, `":port"` (host '' = all interfaces) or `"[::1]:port"`. Without a port
 * part, `defaultPort` is used, or it throws when none is given. Port 0 is accepted: the OS
 * picks a free port, which tests rely on.
 */
export function parseEndpoint(text: string, defaultPort?: number): Endpoint {
  const bad = (why: string): never => {
    throw new Error(`invalid endpoint ${JSON.stringify(text)}: ${why}`);
  };
  const m = ENDPOINT.exec(text);
  if (!m) return bad('expected "host:port", ":port" or "[IPv6 address]:port"');
  const [, v6, name, portText] = m;
  const host = v6 ?? name ?? '';
  if (v6 !== undefined && isIP(v6) !== 6) bad(`"[${v6}]" is not an IPv6 address`);
  if (v6 === undefined && host !== '' && !HOST_NAME.test(host)) bad(`"${host}" is not a host name or IPv4 address`);
  if (portText === undefined) {
    if (host === '') bad('expected "host:port", ":port" or "[IPv6 address]:port"');
    return { host, port: defaultPort ?? bad('the port is missing') };
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) bad(`"${portText}" is not a port number (0-65535)`);
  return { host, port: Number(portText) };
}

/**
 * `http://host:port` (port optional, host may be empty) as the original wrote proxy keys, or
 * `https://host:port` for a TLS listener.
 */
export function parseListenerKey(key: string): (Endpoint & { tls: boolean }) | undefined {
  const m = /^(https?):\/\/([^/?#]*)\/?$/i.exec(key);
  if (!m) return undefined;
  const [, scheme = '', endpoint = ''] = m;
  try {
    return { ...parseEndpoint(endpoint, DEFAULT_LISTENER_PORT), tls: scheme.toLowerCase() === 'https' };
  } catch {
    return undefined;
  }
}

/**
 * A TCP destination `host:port` (a `tcp://` listener's `to`, the address in a tcp OPEN, a
 * `tcp://` egress entry without its scheme): a host name, IPv4 address or `[IPv6]`, and a port
 * 1-65535, nothing else (no spaces, no path, no port 0). The host comes back lowercased,
 * without brackets.
 */
export function parseTcpTarget(text: string): Endpoint | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const [, v6, name, portText = ''] = m;
  const port = Number(portText);
  if (port < 1 || port > 65535 || portText.startsWith('0')) return undefined;
  if (v6 !== undefined) return isIP(v6) === 6 ? { host: v6.toLowerCase(), port } : undefined;
  const host = name ?? '';
  if (!HOST_NAME.test(host) || /^[\d.]+$/.test(host) && isIP(host) !== 4) return undefined;
  return { host: host.toLowerCase(), port };
}

/** `host:port` as written in a tcp OPEN's URL line and in logs: IPv6 in brackets. */
export function formatTcpTarget(t: Endpoint): string {
  return `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
}

/** A `tcp://host:port` proxy key (a TCP listener; host may be empty for every interface). */
export function parseTcpListenerKey(key: string): Endpoint | undefined {
  const m = /^tcp:\/\/([^/?#]*)\/?$/i.exec(key);
  if (!m) return undefined;
  try {
    const endpoint = parseEndpoint(m[1] ?? '');
    return endpoint;
  } catch {
    return undefined;
  }
}

/**
 * An egress allowlist entry: a URL prefix (`http://host:port/path`, matched at a path segment
 * boundary), a bare `host[:port]` (any path on that host; without a port, any port), or
 * `tcp://host:port` (TCP streams to exactly that address).
 */
export function parseEgressEntry(text: string): { origin?: string; host?: string; port?: string; path: string; tcp?: true } | undefined {
  // `tcp://host:port`: that one TCP destination (doc/tcp.md); it allows no HTTP, and no other entry allows TCP.
  if (/^tcp:\/\//i.test(text)) {
    const t = parseTcpTarget(text.slice(6));
    return t ? { host: t.host, port: String(t.port), path: '', tcp: true } : undefined;
  }
  if (/^https?:\/\//i.test(text)) {
    const url = parseOutgoingUrl(text);
    if (!url || url.search || url.hash) return undefined;
    return { origin: url.origin, path: url.pathname.replace(/\/+$/, '') };
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) return undefined;
  const [, host = '', port] = m;
  return { host: host.toLowerCase().replace(/^\[(.*)\]$/, '$1'), ...(port ? { port } : {}), path: '' };
}

function parseUrl(text: string, protocols: readonly string[]): URL | undefined {
  if (!URL.canParse(text)) return undefined;
  const url = new URL(text);
  return protocols.includes(url.protocol) && url.hostname !== '' ? url : undefined;
}

/**
 * A `ws://` or `wss://` URL with a host, or undefined; or an `mqtt://` / `mqtts://` broker
 * URL, which only a tunnel over MQTT uses (config/mqtt-checks.ts requires its `mqtt` settings).
 */
export function parseTunnelUrl(text: string): URL | undefined {
  return parseUrl(text, ['ws:', 'wss:', 'mqtt:', 'mqtts:']);
}

/** Whether a tunnel URL names an MQTT broker by its scheme (`ws://` can name one too, with `mqtt` settings). */
export function isMqttScheme(url: URL): boolean {
  return url.protocol === 'mqtt:' || url.protocol === 'mqtts:';
}

/** An `http://` or `https://` URL with a host, or undefined. */
export function parseOutgoingUrl(text: string): URL | undefined {
  return parseUrl(text, ['http:', 'https:']);
}

/**
 * One spelling per tunnel server, so `ws://H:80` and `ws://h/` are recognised as the same
 * `wstc` entry. Callers keep the URL as written for display.
 */
export function tunnelUrlIdentity(url: URL): string {
  return url.href;
}

/** An IPv4/IPv6 address, or one with a `/bits` prefix length that fits its family. */
export function isIpOrCidr(text: string): boolean {
  const slash = text.indexOf('/');
  if (slash < 0) return isIP(text) !== 0;
  const family = isIP(text.slice(0, slash));
  const bits = text.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** Host/port of the tunnel server URL, with the scheme's default port when none is written. */
export function serverEndpoint(url: URL): Endpoint {
  const defaults: Record<string, number> = { 'wss:': 443, 'mqtt:': 1883, 'mqtts:': 8883 };
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? defaults[url.protocol] ?? 80 : Number(url.port),
  };
}

/** Would binding both endpoints fail (or steal traffic) on one machine? Port 0 never clashes. */
export function endpointsClash(a: Endpoint, b: Endpoint): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  const ha = a.host.toLowerCase();
  const hb = b.host.toLowerCase();
  return ha === hb || ALL_INTERFACES.has(ha) || ALL_INTERFACES.has(hb);
}
