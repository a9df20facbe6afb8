/**
 * Header passes, one step each (after node-http-proxy's "passes"): drop hop-by-hop headers,
 * add Via, X-Forwarded-* and Forwarded (replacing a client's own unless it is a trusted proxy),
 * carry a request id. Headers travel as flat raw lists so names
 * keep their case and repeated headers their order.
 */
import { randomUUID } from 'node:crypto';
import { AddressAllowlist } from '../../net/allow.js';

/** RFC 9110 §7.6.1 connection-specific headers, plus the de-facto ones proxies also drop. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'transfer-encoding', 'upgrade', 'http2-settings',
]);

export const VIA_COMMENT = '(west)';
export const REQUEST_ID_HEADER = 'x-request-id';

/** Names listed in Connection headers, which are hop-by-hop too. */
function connectionTokens(raw: string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name === undefined || value === undefined || name.toLowerCase() !== 'connection') continue;
    for (const t of value.split(',')) out.add(t.trim().toLowerCase());
  }
  return out;
}

/**
 * Drops hop-by-hop headers. A chunked request body stays marked `Transfer-Encoding: chunked`
 * so the far end frames it the same way; everything else is re-framed by Node.
 */
export function stripHopByHop(raw: string[], keepChunked: boolean): string[] {
  const listed = hasConnectionHeader(raw) ? connectionTokens(raw) : undefined;
  const out: string[] = [];
  let chunked = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name === undefined || value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'transfer-encoding' && CHUNKED_LAST.test(value)) chunked = true;
      continue;
    }
    if (listed?.has(lower)) continue;
    out.push(name, value);
  }
  if (keepChunked && chunked) out.push('Transfer-Encoding', 'chunked');
  return out;
}

/** The headers a far end sends to the origin, and what its ways of performing need to know of them. */
export interface OutgoingHeaders {
  /** Hop-by-hop headers dropped (a chunked body still marked chunked), Host the outgoing URL's. */
  headers: string[];
  /** The request has a body (chunked, or a Content-Length above 0). */
  hasBody: boolean;
  /** `Expect: 100-continue`. */
  expectsContinue: boolean;
  /** The list holds Transfer-Encoding or Expect, which a client that frames bodies itself (undici) must not be given. */
  framing: boolean;
}

/**
 * `setHeader(stripHopByHop(raw, true), 'Host', host)` in one pass (the same list, checked by
 * test/unit/passes.test.ts), with what the far end asks of it (hasRequestBody, Expect) found on
 * the way.
 */
export function outgoingHeaders(raw: string[], host: string): OutgoingHeaders {
  const listed = hasConnectionHeader(raw) ? connectionTokens(raw) : undefined;
  const headers: string[] = [];
  let chunked = false;
  let contentLength: string | undefined;
  let expectsContinue = false;
  let expect = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name === undefined || value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'transfer-encoding' && CHUNKED_LAST.test(value)) chunked = true;
      continue;
    }
    if (listed?.has(lower) || lower === 'host') continue;
    if (lower === 'content-length') contentLength ??= value;
    else if (lower === 'expect') {
      expect = true;
      if (value.trim().toLowerCase() === '100-continue') expectsContinue = true;
    }
    headers.push(name, value);
  }
  if (chunked) headers.push('Transfer-Encoding', 'chunked');
  headers.push('Host', host);
  return { headers, hasBody: framesBody(chunked ? 'chunked' : undefined, contentLength), expectsContinue, framing: chunked || expect };
}

/** All values of one header (case-insensitive), in order. */
export function headerValues(raw: string[], name: string): string[] {
  const want = name.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name !== undefined && value !== undefined && name.toLowerCase() === want) out.push(value);
  }
  return out;
}

/**
 * HTTP/1.1: a request has a body when it carries Transfer-Encoding or a non-zero
 * Content-Length (given as header values, parsed or raw).
 */
export function framesBody(transferEncoding: string | undefined, contentLength: string | undefined): boolean {
  return transferEncoding !== undefined || Number(contentLength ?? 0) > 0;
}

/** framesBody of a raw header list. */
export function hasRequestBody(raw: string[]): boolean {
  return framesBody(headerValues(raw, 'transfer-encoding')[0], headerValues(raw, 'content-length')[0]);
}

/** Removes every copy of the named headers, in one pass. */
export function withoutHeader(raw: string[], ...names: string[]): string[] {
  const drop = names.map((n) => n.toLowerCase());
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name !== undefined && value !== undefined && !drop.includes(name.toLowerCase())) out.push(name, value);
  }
  return out;
}

/** Sets a header, replacing every existing copy. */
export function setHeader(raw: string[], name: string, value: string): string[] {
  const out = withoutHeader(raw, name);
  out.push(name, value);
  return out;
}

/** A Via received-by pseudonym for a listener: token characters only (RFC 9110 §7.6.3). */
export function viaPseudonym(nodeName: string, port: number): string {
  const token = nodeName.replace(/^wss?:\/\//i, '').replace(/[^A-Za-z0-9.\-_~!$&'*+^`|]/g, '_') || 'west';
  return `${token}:${port}`;
}

/** The west entries in the Via headers, as received-by pseudonyms, oldest first. */
export function westVias(raw: string[]): string[] {
  return westViasOf(headerValues(raw, 'via'));
}

export interface ForwardInfo {
  clientAddress: string;
  /** Scheme the client used to reach the listener. */
  proto: 'http' | 'https';
  /** Host header the client sent. */
  host: string | undefined;
  via: string;
  requestId: string;
  /**
   * The client is a proxy this node trusts (`west.trustedProxies`): its forwarding headers
   * are kept and extended. Otherwise they are replaced by what this listener saw.
   */
  trusted: boolean;
}

/** Headers that say who the client was and how it came: replaced unless the client is trusted. */
function isForwardingHeader(lower: string): boolean {
  return lower === 'forwarded' || lower === 'x-real-ip' || lower.startsWith('x-forwarded-');
}

/** An RFC 7239 value: a token as it is, anything else quoted. */
function forwardedValue(value: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value) ? value : `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** This hop's RFC 7239 `Forwarded` element: `for=...;proto=...;host=...` (IPv6 bracketed and quoted). */
export function forwardedElement(client: string, proto: string, host: string | undefined): string {
  const node = client.includes(':') ? `"[${client}]"` : forwardedValue(client || 'unknown');
  return `for=${node};proto=${proto}${host ? `;host=${forwardedValue(host)}` : ''}`;
}

/**
 * Adds Via, X-Forwarded-For/-Proto/-Host, Forwarded, X-Real-IP and the request id. From a
 * trusted proxy, X-Forwarded-For and Forwarded gain this hop and the other values the first
 * hop set are kept; from anyone else every forwarding header the client sent is dropped first,
 * so a client cannot tell the origin it came from elsewhere.
 */
export function addForwardingHeaders(raw: string[], info: ForwardInfo): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (!info.trusted && isForwardingHeader(name.toLowerCase())) continue;
    out.push(name, raw[i + 1] ?? '');
  }
  const existingVia = headerValues(out, 'via');
  const via = `1.1 ${info.via} ${VIA_COMMENT}`;
  const withVia = existingVia.length ? setHeader(out, 'Via', `${existingVia.join(', ')}, ${via}`) : [...out, 'Via', via];
  const xff = headerValues(withVia, 'x-forwarded-for');
  const client = info.clientAddress.replace(/^::ffff:/i, '');
  let result = setHeader(withVia, 'X-Forwarded-For', xff.length ? `${xff.join(', ')}, ${client}` : client);
  const forwarded = headerValues(result, 'forwarded');
  const element = forwardedElement(client, info.proto, info.host);
  result = setHeader(result, 'Forwarded', forwarded.length ? `${forwarded.join(', ')}, ${element}` : element);
  if (!headerValues(result, 'x-forwarded-proto').length) result.push('X-Forwarded-Proto', info.proto);
  if (!headerValues(result, 'x-forwarded-host').length && info.host) result.push('X-Forwarded-Host', info.host);
  // X-Real-IP names the client the first untrusting hop saw; a trusted proxy's is kept as is.
  if (!info.trusted) result.push('X-Real-IP', client);
  if (!headerValues(result, REQUEST_ID_HEADER).length) result.push('X-Request-Id', info.requestId);
  return result;
}

/**
 * What the near end reads of a request's headers, found in one scan: the framing headers,
 * the Via values (loops, hop count) and the request id a client or an earlier hop sent.
 */
export interface RequestHeadFacts {
  /** Every Transfer-Encoding value, in order. */
  transferEncoding: string[];
  /** The first Content-Length value. */
  contentLength: string | undefined;
  /** Every Via value, in order. */
  via: string[];
  /** The first X-Request-Id value. */
  requestId: string | undefined;
}

export function scanRequestHead(raw: string[]): RequestHeadFacts {
  const facts: RequestHeadFacts = { transferEncoding: [], contentLength: undefined, via: [], requestId: undefined };
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name === undefined || value === undefined) continue;
    // Every name these are about is longer than 2 and starts with c, t, v or x: most names are
    // passed over on their length and first letter, without a lower-cased copy.
    const first = name.charCodeAt(0) | 0x20;
    if (first !== 0x63 && first !== 0x74 && first !== 0x76 && first !== 0x78) continue;
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') facts.transferEncoding.push(value);
    else if (lower === 'content-length') facts.contentLength ??= value;
    else if (lower === 'via') facts.via.push(value);
    else if (lower === REQUEST_ID_HEADER) facts.requestId ??= value;
  }
  return facts;
}

/** The west entries in Via values (see westVias). */
export function westViasOf(values: string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    // No west entry without the comment: most Via headers (and no Via) cost no split.
    if (!value.includes(VIA_COMMENT)) continue;
    for (const entry of value.split(',')) {
      const [, by, ...comment] = entry.trim().split(/\s+/);
      if (by !== undefined && comment.length > 0 && comment.join(' ') === VIA_COMMENT) out.push(by);
    }
  }
  return out;
}

/** An RFC 9110 chunked marker: chunked as the last transfer coding. */
const CHUNKED_LAST = /(^|,)\s*chunked\s*$/i;

/**
 * `addForwardingHeaders(stripHopByHop(raw, true), info)` in one pass over the headers (the
 * list, its order and its case are the same; test/unit/passes.test.ts checks the two agree).
 * The near end runs it once per request.
 */
export function forwardRequestHeaders(raw: string[], info: ForwardInfo): string[] {
  const listed = hasConnectionHeader(raw) ? connectionTokens(raw) : undefined;
  const out: string[] = [];
  let chunked = false;
  let via: string[] | undefined;
  let xff: string[] | undefined;
  let forwarded: string[] | undefined;
  let hasProto = false;
  let hasHost = false;
  let hasId = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name === undefined || value === undefined) continue;
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding' && CHUNKED_LAST.test(value)) chunked = true;
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    if (isForwardingHeader(lower)) {
      if (!info.trusted) continue;
      if (lower === 'x-forwarded-for') { (xff ??= []).push(value); continue; }
      if (lower === 'forwarded') { (forwarded ??= []).push(value); continue; }
      if (lower === 'x-forwarded-proto') hasProto = true;
      else if (lower === 'x-forwarded-host') hasHost = true;
    } else if (lower === 'via') {
      (via ??= []).push(value);
      continue;
    } else if (lower === REQUEST_ID_HEADER) {
      hasId = true;
    }
    out.push(name, value);
  }
  if (chunked) out.push('Transfer-Encoding', 'chunked');
  const hop = `1.1 ${info.via} ${VIA_COMMENT}`;
  out.push('Via', via ? `${via.join(', ')}, ${hop}` : hop);
  const client = info.clientAddress.charCodeAt(0) === 58 /* : */ ? info.clientAddress.replace(/^::ffff:/i, '') : info.clientAddress;
  out.push('X-Forwarded-For', xff ? `${xff.join(', ')}, ${client}` : client);
  const element = forwardedElement(client, info.proto, info.host);
  out.push('Forwarded', forwarded ? `${forwarded.join(', ')}, ${element}` : element);
  if (!hasProto) out.push('X-Forwarded-Proto', info.proto);
  if (!hasHost && info.host) out.push('X-Forwarded-Host', info.host);
  if (!info.trusted) out.push('X-Real-IP', client);
  if (!hasId) out.push('X-Request-Id', info.requestId);
  return out;
}

function hasConnectionHeader(raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name?.length === 10 && name.toLowerCase() === 'connection') return true;
  }
  return false;
}

/** AddressAllowlists of `west.trustedProxies` lists, built once per list (a reload makes a new one). */
const trustLists = new WeakMap<readonly string[], AddressAllowlist>();

/** Is `address` one of `trusted` (IPs/CIDRs)? An empty list trusts nobody. */
export function isTrustedProxy(trusted: readonly string[], address: string): boolean {
  if (trusted.length === 0) return false;
  let list = trustLists.get(trusted);
  if (!list) trustLists.set(trusted, list = new AddressAllowlist([...trusted]));
  return list.allows(address);
}

/** The request id a client or an earlier hop sent, or a new one. Only sane ids are kept. */
export function requestIdOf(raw: string[]): string {
  return requestIdFrom(headerValues(raw, REQUEST_ID_HEADER)[0]);
}

/** requestIdOf, given the first X-Request-Id value (scanRequestHead). */
export function requestIdFrom(given: string | undefined): string {
  return given && /^[\x21-\x7e]{1,128}$/.test(given) ? given : randomUUID();
}
