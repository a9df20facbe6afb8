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
    if (name?.length === 10 && name.toLowerCase() === 'connection') {
      listed ??= new Set();
      for (const t of (raw[i + 1] ?? '').split(',')) listed.add(t.trim().toLowerCase());
    }
  }
  const headers: string[] = [];
  let keepAliveMs: number | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name === undefined || value === undefined) continue;
    // Every hop-by-hop name is 2 to 19 letters and starts with c, h, k, p, t or u: most names
    // are passed over on their first letter, without a lower-cased copy.
    const first = name.charCodeAt(0) | 0x20;
    if (first === 0x63 || first === 0x68 || first === 0x6b || first === 0x70 || first === 0x74 || first === 0x75 || listed) {
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
