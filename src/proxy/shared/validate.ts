/**
 * Heads that arrive through a tunnel come from another process, which may be buggy or
 * hostile: they are checked against HTTP's grammar before any byte of them is written to a
 * socket, so a peer cannot inject CR/LF into a request or response.
 */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A character a field value must not hold (Node's own check, `checkInvalidHeaderChar`). */
const NOT_FIELD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** reason-phrase = *( HTAB / SP / VCHAR / obs-text ) (RFC 9112 §4). */
const REASON = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Why a header (or trailer) list HTTP would not allow is refused, or undefined. */
export function invalidHeaders(headers: string[]): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] ?? '';
    const value = headers[i + 1];
    if (value === undefined || !validHeader(name, value)) {
      return `header ${JSON.stringify(name.slice(0, 40))} has a name or value that is not allowed in HTTP`;
    }
  }
  return undefined;
}

/**
 * What http.validateHeaderName and validateHeaderValue accept (test/unit/validate.test.ts
 * holds them side by side), without an exception to catch per header.
 */
function validHeader(name: string, value: string): boolean {
  return TOKEN.test(name) && typeof value === 'string' && !NOT_FIELD_VALUE.test(value);
}

/** Why a request head must not be sent on, or undefined when it is sound. */
export function invalidRequestHead(method: string, headers: string[]): string | undefined {
  if (!TOKEN.test(method)) return `method ${JSON.stringify(method.slice(0, 40))} is not an HTTP token`;
  return invalidHeaders(headers);
}

/** Why a response head must not be written to the client, or undefined when it is sound. */
export function invalidResponseHead(status: number, statusMessage: string, headers: string[]): string | undefined {
  if (!Number.isInteger(status) || status < 100 || status > 999) return `status ${status} is not a valid HTTP status`;
  if (!REASON.test(statusMessage)) return 'status message has characters not allowed in HTTP';
  return invalidHeaders(headers);
}
