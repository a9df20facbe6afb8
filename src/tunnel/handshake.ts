/**
 * What the two ends tell each other on the WebSocket upgrade: the subprotocol (wire version:
 * the client offers the ones it speaks, the server picks the newest both speak), the node name
 * and the per-stream window each side grants.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { PeerCertificate } from 'node:tls';
import { canonicalName } from '../config/types.js';
import { OUR_FEATURES, type Feature } from './features.js';
import { MESH_VERSION, PROTOCOL_VERSION } from './frame.js';
import { MAX_DATA_FRAME } from './stream.js';

export { OUR_FEATURES, type Feature } from './features.js';

export const NODE_HEADER = 'x-west-node';
export const WINDOW_HEADER = 'x-west-window';
export const FEATURES_HEADER = 'x-west-features';

/** The newest wire version this release speaks; it also speaks every one down to PROTOCOL_VERSION. */
export const WIRE_VERSION = MESH_VERSION;

/** The WebSocket subprotocol of wire version `v`: `west.v3`. */
export function subprotocolOf(v: number): string {
  return `west.v${v}`;
}

/** The wire version a subprotocol names, when it is one this release speaks. */
export function versionOf(protocol: string | undefined): number | undefined {
  const m = /^west\.v([1-9][0-9]{0,2})$/.exec(protocol ?? '');
  const v = m ? Number(m[1]) : NaN;
  return v >= PROTOCOL_VERSION && v <= WIRE_VERSION ? v : undefined;
}

/** What a client offers (newest first), speaking at most `max`: `west.v3, west.v2`. */
export function offeredSubprotocols(max = WIRE_VERSION): string[] {
  const out: string[] = [];
  for (let v = Math.min(max, WIRE_VERSION); v >= PROTOCOL_VERSION; v--) out.push(subprotocolOf(v));
  return out;
}

/**
 * The server's pick among what a client offered: the newest version both speak (at most
 * `max`), or undefined when they share none (the client is refused with 400).
 */
export function pickSubprotocol(offered: Iterable<string>, max = WIRE_VERSION): string | undefined {
  let best: number | undefined;
  for (const p of offered) {
    const v = versionOf(p.trim());
    if (v !== undefined && v <= max && (best === undefined || v > best)) best = v;
  }
  return best === undefined ? undefined : subprotocolOf(best);
}

/** The features a peer announced that this side knows. */
export function peerFeatures(headers: IncomingHttpHeaders): ReadonlySet<Feature> {
  const listed = String(headers[FEATURES_HEADER] ?? '').split(',').map((f) => f.trim());
  return new Set(OUR_FEATURES.filter((f) => listed.includes(f)));
}

/** Largest WebSocket message accepted: a DATA frame, or a head with generous headers. */
export const MAX_MESSAGE = MAX_DATA_FRAME + 1024 * 1024;

export const MIN_WINDOW = 16 * 1024;
export const MAX_WINDOW = 16 * 1024 * 1024;

/** Reads the peer's window, falling back to the minimum when absent or out of range. */
export function peerWindow(headers: IncomingHttpHeaders): number {
  const n = Number(headers[WINDOW_HEADER]);
  return Number.isInteger(n) && n >= MIN_WINDOW && n <= MAX_WINDOW ? n : MIN_WINDOW;
}

/** A header value that names a node: printable ASCII, bounded length. */
export function validNodeName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= 255 && /^[\x21-\x7e]+$/.test(name);
}

/** A client certificate's subject as `CN=…, O=…` (empty certificate: undefined), for the auth hook. */
export function certificateSubject(cert: Partial<PeerCertificate> | undefined): string | undefined {
  const subject = cert?.subject;
  if (!subject) return undefined;
  const parts = Object.entries(subject).flatMap(([k, v]: [string, unknown]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${String(x)}`));
  return parts.length > 0 ? parts.join(', ') : undefined;
}

/**
 * The names a client certificate vouches for (`wsts.certNames`): its subject CNs and its DNS
 * subject alternative names, in canonical form. None for a socket without a certificate.
 */
export function certificateNames(cert: Partial<PeerCertificate> | undefined): string[] {
  const names: string[] = [];
  const cn: unknown = cert?.subject?.CN;
  for (const value of Array.isArray(cn) ? cn : [cn]) if (typeof value === 'string' && value) names.push(value);
  // Node writes the SANs as "DNS:a, DNS:b, IP Address:…", JSON-quoting a value that holds a comma.
  for (const [, value = ''] of (cert?.subjectaltname ?? '').matchAll(/(?:^|, )DNS:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    try {
      names.push(value.startsWith('"') ? JSON.parse(value) as string : value);
    } catch { /* not a name this side could present anyway */ }
  }
  return names.filter((n) => n.length > 0).map(canonicalName);
}
