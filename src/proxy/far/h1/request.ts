/**
 * The origin request's head, built once as one string from the OPEN's method, target and
 * checked header list (perform.ts checked the method and every header against HTTP's
 * grammar), and how its body is framed: as long as its Content-Length says, re-chunked, or none.
 */

/** How the request body goes to the origin. */
export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' };

export interface RequestHead {
  /** Request line and header section, CRLF CRLF included (latin1). */
  head: string;
  framing: BodyFraming;
}

/** A request target may hold no control character, space or DEL, nor anything above latin1 (undici's rule, and DEL). */
const INVALID_TARGET = /[^\u0021-\u007e\u0080-\u00ff]/;
const DIGITS = /^\d+$/;

/** Methods whose request carries a body by definition: sent with `Content-Length: 0` when none. */
function expectsPayload(method: string): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH';
}

/**
 * The head to write, or why the request cannot be sent (a bad_request). `headers` end with Host
 * (perform.ts); a chunked body is marked `Transfer-Encoding: chunked` in them. Expect goes: the
 * listener answered a 100-continue, and any other expectation is not this hop's to pass on.
 * Content-Length wins over a chunked marker a peer sent alongside it (as the undici client did):
 * the origin never sees both.
 */
export function requestHead(method: string, target: string, headers: string[], hasBody: boolean, framing: boolean): RequestHead | string {
  if (method === 'CONNECT') return 'CONNECT method is not supported';
  if (target.length === 0 || INVALID_TARGET.test(target)) return 'invalid request path';
  let head = `${method} ${target} HTTP/1.1\r\n`;
  let length: string | undefined;
  let chunked = false;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i];
    const value = headers[i + 1];
    if (name === undefined || value === undefined) continue;
    // Only names of 6, 14 and 17 letters need a second look.
    const n = name.length;
    if (n === 14 && name.toLowerCase() === 'content-length') {
      if (!DIGITS.test(value)) return 'invalid content-length header';
      if (length !== undefined) {
        if (value !== length) return 'conflicting content-length headers';
        continue;
      }
      length = value;
    } else if (n === 17 && framing && name.toLowerCase() === 'transfer-encoding') {
      chunked = true;
      continue;
    } else if (n === 6 && framing && name.toLowerCase() === 'expect') {
      continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  if (length !== undefined) {
    const bytes = Number(length);
    if (!Number.isSafeInteger(bytes)) return 'invalid content-length header';
    return { head: head + '\r\n', framing: bytes > 0 && hasBody ? { kind: 'length', length: bytes } : { kind: 'none' } };
  }
  if (chunked && hasBody) return { head: head + 'Transfer-Encoding: chunked\r\n\r\n', framing: { kind: 'chunked' } };
  if (expectsPayload(method)) head += 'Content-Length: 0\r\n';
  return { head: head + '\r\n', framing: { kind: 'none' } };
}

/** The size line of one chunk of a chunked body. */
export function chunkSize(bytes: number): string {
  return `${bytes.toString(16)}\r\n`;
}

export const LAST_CHUNK = '0\r\n\r\n';
