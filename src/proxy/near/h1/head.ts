/**
 * The lean front's request-head parser: strict and conservative. It accepts only the plain
 * requests most clients send (a common method, an origin-form target, HTTP/1.1 or 1.0, CRLF
 * lines, header values of visible ASCII and spaces, exactly one Host, at most one digits-only
 * Content-Length) and answers "hand off" to anything else, or to anything it is not sure Node's
 * own parser (llhttp) would read the same way: that request, and the rest of its connection,
 * go to Node's server, which keeps today's answers for every odd case (doc/architecture.md).
 */

/** A request head the lean front serves itself. */
export interface LeanHead {
  method: string;
  /** The request target as sent (origin-form: a path and query). */
  url: string;
  /** HTTP/1.0 (else 1.1). */
  http10: boolean;
  /** Names and values as sent (values without their surrounding whitespace), flat. */
  rawHeaders: string[];
  host: string;
  /** The body's length (0: no body). */
  contentLength: number;
  /** What the client asked for the connection (RFC 9112 §9.3, as llhttp reads it). */
  keepAlive: boolean;
  /** Bytes of the head, its blank line included. */
  length: number;
}

export type HeadParse =
  | { kind: 'head'; head: LeanHead }
  | { kind: 'incomplete' }
  | { kind: 'handoff'; reason: string };

/** The methods served here; any other (CONNECT, WebDAV's, unknown ones) goes to Node. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
/** Header lines past which a head is handed off (Node keeps at most 2000 in rawHeaders). */
const MAX_HEADERS = 200;
/** Content-Length digits served here (a longer one, or a leading zero, goes to Node). */
const MAX_LENGTH_DIGITS = 15;

const CR = 13;
const LF = 10;
const SP = 32;
const COLON = 58;

/** tchar (RFC 9110 §5.6.2). */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** Bytes a target may hold here: visible ASCII but `#` (a fragment has no place in a request). */
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;
TARGET[0x23] = 0;

const handoff = (reason: string): HeadParse => ({ kind: 'handoff', reason });
const INCOMPLETE: HeadParse = { kind: 'incomplete' };

/**
 * Where the line starting at `i` ends (the index of its CR), -1 when the bytes end first, or
 * -2 at a byte no line here may hold: a control character, a byte >= 0x80, a CR not followed
 * by LF, a bare LF. HTAB too, though HTTP allows it around and inside values: llhttp does not
 * read it as whitespace everywhere (`Connection: keep-alive<TAB>` is not keep-alive to it),
 * and real clients do not send it.
 */
function lineEnd(buf: Buffer, i: number, end: number): number {
  for (; i < end; i++) {
    const c = buf[i] ?? 0;
    if (c >= 0x20 && c < 0x7f) continue;
    if (c !== CR) return -2;
    if (i + 1 === end) return -1;
    return buf[i + 1] === LF ? i : -2;
  }
  return -1;
}

/**
 * Parses the head that starts at `start` in buf[start, end); `limit` is the largest head
 * served here. Called again from the start as more bytes arrive (a caller hands off a head
 * that keeps arriving in many pieces).
 */
export function parseHead(buf: Buffer, start: number, end: number, limit: number): HeadParse {
  const lineEndAt = lineEnd(buf, start, end);
  if (lineEndAt === -2) return handoff('request line');
  if (lineEndAt === -1) {
    if (end - start > limit) return handoff('head size');
    return requestLinePrefix(buf, start, end) ? INCOMPLETE : handoff('request line');
  }
  const line = requestLine(buf, start, lineEndAt);
  if (typeof line === 'string') return handoff(line);

  const rawHeaders: string[] = [];
  let host: string | undefined;
  let contentLength: string | undefined;
  let close = false;
  let keepAlive = false;
  let i = lineEndAt + 2;
  for (;;) {
    if (i - start > limit) return handoff('head size');
    const e = lineEnd(buf, i, end);
    if (e === -2) return handoff('header line');
    if (e === -1) return end - start <= limit && headerPrefix(buf, i, end) ? INCOMPLETE : handoff('header line');
    if (e === i) break;
    if (rawHeaders.length >= 2 * MAX_HEADERS) return handoff('header count');
    let n = i;
    while (n < e && TCHAR[buf[n] ?? 0] === 1) n++;
    if (n === i || buf[n] !== COLON) return handoff('header name');
    let v = n + 1;
    while (v < e && buf[v] === SP) v++;
    let w = e;
    while (w > v && buf[w - 1] === SP) w--;
    const name = buf.toString('latin1', i, n);
    const value = buf.toString('latin1', v, w);
    rawHeaders.push(name, value);
    i = e + 2;
    const special = specialHeader(name);
    if (special === undefined) continue;
    if (special === 'handoff') return handoff(name.toLowerCase());
    if (special === 'host') {
      if (host !== undefined || value === '') return handoff('host');
      host = value;
    } else if (special === 'content-length') {
      if (contentLength !== undefined || !digitsOnly(value)) return handoff('content-length');
      contentLength = value;
    } else {
      const tokens = connectionTokens(value);
      if (!tokens || close || keepAlive) return handoff('connection');
      close = tokens.close;
      keepAlive = tokens.keepAlive;
    }
  }
  const length = i + 2 - start;
  if (length > limit) return handoff('head size');
  if (host === undefined) return handoff('host');
  if (line.http10 && hasHeader(rawHeaders, 'te')) return handoff('te');
  return {
    kind: 'head',
    head: {
      method: line.method, url: line.url, http10: line.http10, rawHeaders, host,
      contentLength: contentLength === undefined ? 0 : Number(contentLength),
      keepAlive: line.http10 ? keepAlive : !close,
      length,
    },
  };
}

/** `method SP origin-form SP HTTP/1.x`, or why it is handed off. */
function requestLine(buf: Buffer, start: number, end: number): { method: string; url: string; http10: boolean } | string {
  let i = start;
  while (i < end && TCHAR[buf[i] ?? 0] === 1) i++;
  const method = buf.toString('latin1', start, i);
  if (!METHODS.includes(method) || buf[i] !== SP) return 'method';
  const t = i + 1;
  if (buf[t] !== 0x2f) return 'target';
  i = t + 1;
  while (i < end && TARGET[buf[i] ?? 0] === 1) i++;
  if (buf[i] !== SP || end - i !== 9) return 'target';
  const version = buf.toString('latin1', i + 1, end);
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') return 'version';
  return { method, url: buf.toString('latin1', t, i), http10: version === 'HTTP/1.0' };
}

/** Whether buf[start, end) may still become a request line served here. */
function requestLinePrefix(buf: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end && TCHAR[buf[i] ?? 0] === 1) i++;
  const method = buf.toString('latin1', start, i);
  if (i === end) return METHODS.some((m) => m.startsWith(method));
  if (!METHODS.includes(method) || buf[i] !== SP) return false;
  i++;
  if (i === end) return true;
  if (buf[i] !== 0x2f) return false;
  while (i < end && TARGET[buf[i] ?? 0] === 1) i++;
  if (i === end) return true;
  if (buf[i] !== SP) return false;
  const version = buf.toString('latin1', i + 1, end).replace(/\r$/, '');
  return 'HTTP/1.1'.startsWith(version) || 'HTTP/1.0'.startsWith(version);
}

/** Whether buf[start, end) may still become a header line (or the blank line) served here. */
function headerPrefix(buf: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end && TCHAR[buf[i] ?? 0] === 1) i++;
  if (i === end) return true;
  if (buf[i] === COLON) return i > start;
  return i === start && buf[i] === CR && i + 1 === end;
}

type Special = 'host' | 'content-length' | 'connection' | 'handoff';

/** What a header name means to framing and routing here (undefined: nothing). */
function specialHeader(name: string): Special | undefined {
  switch (name.length) {
    case 4: return name.toLowerCase() === 'host' ? 'host' : undefined;
    case 6: return name.toLowerCase() === 'expect' ? 'handoff' : undefined;
    case 7: return name.toLowerCase() === 'upgrade' ? 'handoff' : undefined;
    case 10: return name.toLowerCase() === 'connection' ? 'connection' : undefined;
    case 14: return name.toLowerCase() === 'content-length' ? 'content-length' : undefined;
    // llhttp reads Proxy-Connection as Connection.
    case 16: return name.toLowerCase() === 'proxy-connection' ? 'handoff' : undefined;
    case 17: return name.toLowerCase() === 'transfer-encoding' ? 'handoff' : undefined;
    default: return undefined;
  }
}

/** 1*DIGIT without a leading zero (but `0`), short enough to be an exact number. */
function digitsOnly(value: string): boolean {
  if (value.length === 0 || value.length > MAX_LENGTH_DIGITS) return false;
  if (value.length > 1 && value.charCodeAt(0) === 0x30) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** A Connection value of `close` and `keep-alive` tokens only (not both), or undefined. */
function connectionTokens(value: string): { close: boolean; keepAlive: boolean } | undefined {
  let close = false;
  let keepAlive = false;
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token === 'close') close = true;
    else if (token === 'keep-alive') keepAlive = true;
    else return undefined;
  }
  return close && keepAlive ? undefined : { close, keepAlive };
}

function hasHeader(raw: string[], lower: string): boolean {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.toLowerCase() === lower) return true;
  return false;
}
