/**
 * The origin's answer headers as the stream carries them back: hop-by-hop headers dropped
 * (the same list as passes.ts stripHopByHop(raw, false) gives, which test/unit/h1.test.ts
 * checks), and on the way the origin's Keep-Alive hint read, in one pass.
 */

/** RFC 9110 §7.6.1 connection-specific headers, plus the de-facto ones proxies also drop (as passes.ts). */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'transfer-encoding', 'upgrade', 'http2-settings',
]);

/** How much sooner than the origin's own hint an idle connection is given up (undici's margin). */
const KEEP_ALIVE_MARGIN_MS = 2000;
const KEEP_ALIVE_TIMEOUT = /timeout=(\d+)/;

export interface AnswerHeaders {
  headers: string[];
  /** How long the connection may idle, from `Keep-Alive: timeout=N` (N s less a margin); undefined without a hint. */
  keepAliveMs: number | undefined;
}

export function answerHeaders(raw: string[]): AnswerHeaders {
  let listed: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    if (name?.length !== 10 || name.toLowerCase() !== 'connection') continue;
    const value = (raw[i + 1] ?? '').toLowerCase();
    // Most say keep-alive or close, which name no header to drop besides the hop-by-hop ones.
    if (value === 'keep-alive' || value === 'close') continue;
    listed ??= new Set();
    for (const t of value.split(',')) listed.add(t.trim());
  }
  const headers: string[] = [];
  let keepAliveMs: number | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name === undefined || value === undefined) continue;
    if (listed || mayBeHopByHop(name)) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'keep-alive') {
          const m = KEEP_ALIVE_TIMEOUT.exec(value);
          if (m) keepAliveMs = Number(m[1]) * 1000 - KEEP_ALIVE_MARGIN_MS;
        }
        continue;
      }
      if (listed?.has(lower)) continue;
    }
    headers.push(name, value);
  }
  return { headers, keepAliveMs };
}

/** Whether `name` has the length and first letter of a hop-by-hop name: most names are passed over without a lower-cased copy. */
function mayBeHopByHop(name: string): boolean {
  const first = name.charCodeAt(0) | 0x20;
  switch (name.length) {
    case 2: case 17: return first === 0x74; // te, transfer-encoding
    case 7: return first === 0x75; // upgrade
    case 10: return first === 0x63 || first === 0x6b; // connection, keep-alive
    case 14: return first === 0x68; // http2-settings
    case 16: case 18: case 19: return first === 0x70; // proxy-connection, -authenticate, -authorization
    default: return false;
  }
}

const DIGITS = /^\d+$/;

/**
 * How long the body of an answer that has one (not HEAD, 1xx, 204 or 304) is, read from the
 * head llhttp has checked (it refuses two Content-Lengths, Content-Length with
 * Transfer-Encoding, anything but digits): its Content-Length, or Infinity without
 * Content-Length and Transfer-Encoding (the body runs until the origin closes). Undefined for
 * what llhttp reads itself: any Transfer-Encoding (chunked framing, trailers), a length of 0
 * (no body), one JavaScript cannot count exactly.
 */
export function bodyLength(raw: string[]): number | undefined {
  let length: number | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    if (name === undefined) continue;
    // Only names of 14 and 17 letters need a second look.
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      const value = raw[i + 1] ?? '';
      if (length !== undefined || !DIGITS.test(value)) return undefined;
      length = Number(value);
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      return undefined;
    }
  }
  if (length === undefined) return Infinity;
  return length > 0 && Number.isSafeInteger(length) ? length : undefined;
}
