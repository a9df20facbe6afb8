/**
 * The payload of a ROUTES frame (wire version 3, doc/protocol.md): JSON, UTF-8,
 *
 *   { "a": [[cost, name, name, ..., dest], ...], "w": [dest, ...] }
 *
 * `a` announces routes (the path runs from the sender to the destination, the sender first),
 * `w` withdraws them. Either may be absent. Anything else, or a payload that breaks these
 * rules, is refused whole (the table keeps what it had).
 */
import type { Advert } from './table.js';

export interface RoutesMessage {
  announced: Advert[];
  withdrawn: string[];
}

/** Largest ROUTES payload accepted or sent in one frame. */
export const MAX_ROUTES_PAYLOAD = 512 * 1024;

/** A node name as the mesh carries it: what a tunnel handshake accepts (validNodeName). */
function isName(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 255 && /^[\x21-\x7e]+$/.test(v);
}

export function encodeRoutesPayload(m: RoutesMessage): Buffer {
  const body: { a?: (string | number)[][]; w?: string[] } = {};
  if (m.announced.length > 0) body.a = m.announced.map((a) => [a.cost, ...a.path]);
  if (m.withdrawn.length > 0) body.w = m.withdrawn;
  return Buffer.from(JSON.stringify(body), 'utf8');
}

/** Splits a message into payloads that each fit in one frame. */
export function encodeRoutesPayloads(m: RoutesMessage): Buffer[] {
  const whole = encodeRoutesPayload(m);
  const parts = m.announced.length + m.withdrawn.length;
  if (whole.length <= MAX_ROUTES_PAYLOAD || parts <= 1) return [whole];
  const half = Math.ceil(m.announced.length / 2);
  const wHalf = Math.ceil(m.withdrawn.length / 2);
  return [
    ...encodeRoutesPayloads({ announced: m.announced.slice(0, half), withdrawn: m.withdrawn.slice(0, wHalf) }),
    ...encodeRoutesPayloads({ announced: m.announced.slice(half), withdrawn: m.withdrawn.slice(wHalf) }),
  ];
}

/** Decodes a ROUTES payload; throws an Error saying what is wrong. */
export function decodeRoutesPayload(payload: Buffer): RoutesMessage {
  if (payload.length > MAX_ROUTES_PAYLOAD) throw new Error(`routes payload of ${payload.length} bytes is over ${MAX_ROUTES_PAYLOAD}`);
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new Error('routes payload is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('routes payload is not an object');
  const { a = [], w = [] } = body as { a?: unknown; w?: unknown };
  if (!Array.isArray(a) || !Array.isArray(w)) throw new Error('routes payload: "a" and "w" must be lists');
  const announced: Advert[] = [];
  for (const entry of a) {
    if (!Array.isArray(entry) || entry.length < 2) throw new Error('routes payload: an announcement is [cost, name, ..., dest]');
    const [cost, ...path] = entry as unknown[];
    if (typeof cost !== 'number' || !Number.isInteger(cost) || cost < 0) throw new Error('routes payload: a cost must be a whole number');
    if (!path.every(isName)) throw new Error('routes payload: a path holds something that is not a node name');
    const dest = path[path.length - 1];
    if (dest === undefined) throw new Error('routes payload: an announcement names no destination');
    announced.push({ dest, path, cost });
  }
  if (!w.every(isName)) throw new Error('routes payload: a withdrawal is not a node name');
  return { announced, withdrawn: w };
}
