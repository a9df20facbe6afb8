/**
 * The wazigate-tunnel payloads (doc/wazigate.md#the-format), byte for byte as the original
 * (Go) writes them. A request is four fields, a response a 2-byte status and two fields; a
 * field is a 3-byte big-endian length and its bytes. Headers are JSON the way Go marshals an
 * `http.Header`: canonical names, sorted, each with its list of values.
 */

/** The largest field the 3-byte length can describe: 16 MiB - 1. */
export const MAX_FIELD = 0xff_ff_ff;

export interface WazigateRequest {
  method: string;
  /** Path and query, as the gateway is to perform them (`/rest/...`). */
  uri: string;
  /** Flat name/value list, in Node's form (values as latin1 strings, like rawHeaders). */
  headers: string[];
  body: Buffer;
}

export interface WazigateResponse {
  status: number;
  headers: string[];
  body: Buffer;
}

/** A payload that does not read as the format says, with why. */
export class MalformedPayload extends Error {
  override readonly name = 'MalformedPayload';
}

/** Go's textproto.CanonicalMIMEHeaderKey: `content-type` -> `Content-Type`; names with other bytes stay as they are. */
export function canonicalHeaderName(name: string): string {
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) return name;
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/** JSON as Go's encoding/json writes strings: `<`, `>`, `&`, U+2028 and U+2029 escaped. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A flat header list as Go's `json.Marshal(http.Header)`: names canonical, sorted by their
 * bytes, values in arrival order. Node holds header bytes as latin1; Go reads them as UTF-8.
 */
export function headersJson(headers: string[]): Buffer {
  const byName = new Map<string, string[]>();
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = canonicalHeaderName(headers[i] ?? '');
    const value = Buffer.from(headers[i + 1] ?? '', 'latin1').toString('utf8');
    const values = byName.get(name);
    if (values) values.push(value);
    else byName.set(name, [value]);
  }
  const names = [...byName.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const object: Record<string, string[]> = {};
  for (const name of names) object[name] = byName.get(name) ?? [];
  return Buffer.from(goJson(object), 'utf8');
}

/** Headers JSON back to a flat list in Node's (latin1) form; throws MalformedPayload. */
export function parseHeadersJson(json: Buffer): string[] {
  if (json.length === 0) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch {
    throw new MalformedPayload('headers are not JSON');
  }
  if (parsed === null) return [];
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new MalformedPayload('headers are not a JSON object');
  const flat: string[] = [];
  for (const [name, values] of Object.entries(parsed as Record<string, unknown>)) {
    if (!Array.isArray(values) || !values.every((v): v is string => typeof v === 'string')) {
      throw new MalformedPayload(`header ${JSON.stringify(name.slice(0, 40))} is not a list of strings`);
    }
    const latin1Name = Buffer.from(name, 'utf8').toString('latin1');
    for (const v of values) flat.push(latin1Name, Buffer.from(v, 'utf8').toString('latin1'));
  }
  return flat;
}

function lengthPrefix(n: number, what: string): Buffer {
  if (n > MAX_FIELD) throw new RangeError(`${what} is ${n} bytes; the wazigate format carries at most ${MAX_FIELD}`);
  return Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

function field(bytes: Buffer, what: string): Buffer[] {
  return [lengthPrefix(bytes.length, what), bytes];
}

/** Throws RangeError when a field is too long for the format. */
export function encodeRequest(r: WazigateRequest): Buffer {
  return Buffer.concat([
    ...field(Buffer.from(r.method, 'latin1'), 'the method'),
    ...field(Buffer.from(r.uri, 'latin1'), 'the request URI'),
    ...field(headersJson(r.headers), 'the request headers'),
    ...field(r.body, 'the request body'),
  ]);
}

/** Throws RangeError when a field is too long for the format. */
export function encodeResponse(r: WazigateResponse): Buffer {
  return Buffer.concat([
    Buffer.from([(r.status >> 8) & 0xff, r.status & 0xff]),
    ...field(headersJson(r.headers), 'the response headers'),
    ...field(r.body, 'the response body'),
  ]);
}

/** Reads fields one after another; every read is bounds-checked. */
class FieldReader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}

  u16(what: string): number {
    if (this.at + 2 > this.buf.length) throw new MalformedPayload(`truncated before ${what}`);
    const n = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return n;
  }

  field(what: string): Buffer {
    if (this.at + 3 > this.buf.length) throw new MalformedPayload(`truncated before the length of ${what}`);
    const n = this.buf.readUIntBE(this.at, 3);
    this.at += 3;
    if (this.at + n > this.buf.length) throw new MalformedPayload(`${what} says ${n} bytes, ${this.buf.length - this.at} are there`);
    const bytes = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return bytes;
  }

  end(): void {
    if (this.at !== this.buf.length) throw new MalformedPayload(`${this.buf.length - this.at} bytes after the last field`);
  }
}

/** Throws MalformedPayload. */
export function decodeRequest(payload: Buffer): WazigateRequest {
  const r = new FieldReader(payload);
  const method = r.field('the method').toString('latin1');
  const uri = r.field('the request URI').toString('latin1');
  const headers = parseHeadersJson(r.field('the headers'));
  const body = Buffer.from(r.field('the body'));
  r.end();
  return { method, uri, headers, body };
}

/** Throws MalformedPayload. */
export function decodeResponse(payload: Buffer): WazigateResponse {
  const r = new FieldReader(payload);
  const status = r.u16('the status');
  const headers = parseHeadersJson(r.field('the headers'));
  const body = Buffer.from(r.field('the body'));
  r.end();
  return { status, headers, body };
}
