/**
 * What the two ends tell each other on the WebSocket upgrade: the subprotocol (wire version),
 * the node name and the per-stream window each side grants.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { PeerCertificate } from 'node:tls';
import { canonicalName } from '../config/types.js';
import { OUR_FEATURES, type Feature } from './features.js';
import { MAX_DATA_FRAME } from './stream.js';

export { OUR_FEATURES, type Feature } from './features.js';

export const NODE_HEADER = 'x-west-node';
export const WINDOW_HEADER = 'x-west-window';
export const FEATURES_HEADER = 'x-west-features';

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
