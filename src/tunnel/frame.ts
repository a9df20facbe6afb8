/**
 * The west tunnel frame codec (wire versions 2 and 3, see doc/protocol.md).
 *
 * Every WebSocket binary message carries one or more frames back to back; each frame is
 *
 *   byte 0      frame type
 *   bytes 1-4   stream id, unsigned 32-bit big-endian
 *   bytes 5-8   payload length, unsigned 32-bit big-endian
 *   bytes 9-    payload (meaning depends on the type)
 *
 * Heads (OPEN, RESPONSE, RESET) are UTF-8 text, one field per line (LF); nothing a field may
 * hold can contain a line feed.
 */

/** The oldest wire version this node speaks (the previous release's). */
export const PROTOCOL_VERSION = 2;
/** WebSocket subprotocol of that version; every node of this release still speaks it. */
export const SUBPROTOCOL = `west.v${PROTOCOL_VERSION}`;

export const HEADER_SIZE = 9;
export const MAX_STREAM_ID = 0xffff_ffff;

export const FrameType = {
  open: 0x01,
  response: 0x02,
  data: 0x03,
  end: 0x04,
  reset: 0x05,
  window: 0x06,
  /** Sent only to a peer that announced the `trailers` feature. */
  trailers: 0x07,
  /** Wire version 3 only: route advertisements (src/mesh/), on stream 0. */
  routes: 0x08,
} as const;

/** The first wire version with the mesh: ROUTES frames and the OPEN's `from` line. */
export const MESH_VERSION = 3;

/**
 * What a stream carries: `http`, one request; `tcp` (feature `tcp`), a raw TCP connection to
 * the `tcp://host:port` of its URL line (doc/tcp.md).
 */
export type StreamKind = 'http' | 'tcp';

/** Opens a stream: one HTTP request to perform at the far end (or, later, further along). */
export interface OpenHead {
  kind: StreamKind;
  method: string;
  /** Absolute URL the far end performs. */
  url: string;
  /** Request headers as a flat [name, value, name, value, ...] list, case kept. */
  headers: string[];
  /** West listeners this request has passed so far, counting the one that opened this stream. */
  hops: number;
  /** Destination node; '' = the node at the other end of this tunnel (src/mesh/ routes the rest). */
  to: string;
  /**
   * Wire version 3: the node the stream started at, as a relay vouches for it; '' (and absent
   * in version 2) = the peer that opened this stream.
   */
  from?: string;
  /**
   * Wire version 3: the nodes the stream must still pass, in order, before `to` (a pinned path,
   * `"via"` of a listener); absent or empty = each node follows its routes.
   */
  via?: string[];
  /** Request id, carried across hops for logs. */
  id: string;
  /**
   * Protocol named by the client's Upgrade header (e.g. "websocket") when the request asks to
   * switch protocols; absent otherwise. After a 101 RESPONSE the stream carries raw bytes.
   */
  upgrade?: string;
}

export interface ResponseHead {
  status: number;
  statusMessage: string;
  headers: string[];
}

export interface ResetInfo {
  /**
   * A ResetCode (a FailureCode from src/errors.ts, or 'cancel') when this node sends it; any
   * string when it arrives, as a newer peer may send codes this node does not know (they are
   * read as tunnel_lost).
   */
  code: string;
  message: string;
  /** Node where the failure happened. */
  node: string;
}

export type Frame =
  | { type: 'open'; stream: number; head: OpenHead }
  | { type: 'response'; stream: number; head: ResponseHead }
  | { type: 'data'; stream: number; data: Buffer }
  | { type: 'end'; stream: number }
  | { type: 'reset'; stream: number; info: ResetInfo }
  /** On stream 0 (feature `connection-window`): a grant for the whole tunnel. */
  | { type: 'window'; stream: number; increment: number }
  | { type: 'trailers'; stream: number; headers: string[] }
  /** Wire version 3: a route advertisement (stream 0), decoded by src/mesh/advert.ts. */
  | { type: 'routes'; stream: 0; payload: Buffer };

/** A frame that cannot be decoded; the session answers it by closing with 1002. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

function header(type: number, stream: number, payloadSize: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + payloadSize);
  writeFrameHeader(buf, 0, type, stream, payloadSize);
  return buf;
}

/** Writes a frame header at `buf[at]`. */
export function writeFrameHeader(buf: Buffer, at: number, type: number, stream: number, payloadSize: number): void {
  buf[at] = type;
  buf.writeUInt32BE(stream, at + 1);
  buf.writeUInt32BE(payloadSize, at + 5);
}

/**
 * Writes a frame of `text` at `buf[at]`, which must have room for HEADER_SIZE + 3 bytes per
 * UTF-16 unit of it (UTF-8's most); returns the frame's size.
 */
export function writeTextFrame(buf: Buffer, at: number, type: number, stream: number, text: string): number {
  const size = buf.write(text, at + HEADER_SIZE, 'utf8');
  writeFrameHeader(buf, at, type, stream, size);
  return HEADER_SIZE + size;
}

function line(value: string, what: string): string {
  if (value.includes('\n')) throw new FrameError(`${what} frame: a field contains a line feed`);
  return value;
}

/** A frame of `text` in a buffer of its own. */
export function encodeText(type: number, stream: number, text: string): Buffer {
  const size = Buffer.byteLength(text, 'utf8');
  const buf = header(type, stream, size);
  // Only ASCII text is as many bytes as characters, and latin1 writes it as UTF-8 would, faster.
  buf.write(text, HEADER_SIZE, size, size === text.length ? 'latin1' : 'utf8');
  return buf;
}

/** `text` followed by the header list, one name or value per line. */
function withHeaders(text: string, headers: string[], what: string): string {
  for (const h of headers) text += '\n' + line(h, what);
  return text;
}

/**
 * OPEN: kind, method, url, hops, to, id, upgrade ('' for none), in version 3 from and via (names
 * separated by spaces), then header names and values.
 */
export function encodeOpen(stream: number, head: OpenHead, version = 2): Buffer {
  return encodeText(FrameType.open, stream, openText(head, version));
}

/** OPEN's payload (see encodeOpen); throws FrameError when a field holds a line feed. */
export function openText(head: OpenHead, version: number): string {
  const text = `${head.kind}\n${line(head.method, 'open')}\n${line(head.url, 'open')}\n${head.hops}\n${line(head.to, 'open')}\n` +
    `${line(head.id, 'open')}\n${line(head.upgrade ?? '', 'open')}` + (version >= MESH_VERSION ? `\n${line(head.from ?? '', 'open')}\n${line((head.via ?? []).join(' '), 'open')}` : '');
  return withHeaders(text, head.headers, 'open');
}

/** RESPONSE: status, status message, then header names and values. */
export function encodeResponse(stream: number, head: ResponseHead): Buffer {
  return encodeText(FrameType.response, stream, responseText(head));
}

/** RESPONSE's payload (see encodeResponse); throws FrameError when a field holds a line feed. */
export function responseText(head: ResponseHead): string {
  return withHeaders(`${head.status}\n${line(head.statusMessage, 'response')}`, head.headers, 'response');
}

/** The 9-byte header of a DATA frame whose `length`-byte payload is sent after it, uncopied. */
export function encodeDataHeader(stream: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE);
  buf[0] = FrameType.data;
  buf.writeUInt32BE(stream, 1);
  buf.writeUInt32BE(length, 5);
  return buf;
}

export function encodeData(stream: number, data: Uint8Array, start = 0, end = data.length): Buffer {
  const buf = header(FrameType.data, stream, end - start);
  buf.set(data.subarray(start, end), HEADER_SIZE);
  return buf;
}

/** TRAILERS: the fields after a body (header names and values), sent just before END. */
export function encodeTrailers(stream: number, headers: string[]): Buffer {
  if (headers.length === 0 || headers.length % 2 !== 0) throw new FrameError('trailers frame: expected header names and values in pairs');
  return encodeText(FrameType.trailers, stream, headers.map((h) => line(h, 'trailers')).join('\n'));
}

export function encodeEnd(stream: number): Buffer {
  return header(FrameType.end, stream, 0);
}

/** RESET: code, node, then the message (the rest of the payload, line feeds and all). */
export function encodeReset(stream: number, info: ResetInfo): Buffer {
  return encodeText(FrameType.reset, stream, `${line(info.code, 'reset')}\n${line(info.node, 'reset')}\n${info.message}`);
}

export function encodeWindow(stream: number, increment: number): Buffer {
  const buf = header(FrameType.window, stream, 4);
  buf.writeUInt32BE(increment, HEADER_SIZE);
  return buf;
}

export function encodeFrame(frame: Frame): Buffer {
  switch (frame.type) {
    case 'open': return encodeOpen(frame.stream, frame.head);
    case 'response': return encodeResponse(frame.stream, frame.head);
    case 'data': return encodeData(frame.stream, frame.data);
    case 'end': return encodeEnd(frame.stream);
    case 'reset': return encodeReset(frame.stream, frame.info);
    case 'window': return encodeWindow(frame.stream, frame.increment);
    case 'trailers': return encodeTrailers(frame.stream, frame.headers);
    case 'routes': return encodeRoutes(frame.payload);
  }
}

/** ROUTES (version 3): a route advertisement on stream 0; the payload is src/mesh/advert.ts's. */
export function encodeRoutes(payload: Buffer): Buffer {
  const buf = header(FrameType.routes, 0, payload.length);
  payload.copy(buf, HEADER_SIZE);
  return buf;
}

/** The lines of the text payload `buf[start..end)`. */
function fields(buf: Buffer, start: number, end: number): string[] {
  return buf.toString('utf8', start, end).split('\n');
}

const DECIMAL = /^(0|[1-9][0-9]{0,2})$/;

function int(field: string | undefined, name: string, what: string, min: number, max: number): number {
  const n = field !== undefined && DECIMAL.test(field) ? Number(field) : NaN;
  if (!(n >= min && n <= max)) throw new FrameError(`${what} frame: "${name}" must be an integer in ${min}..${max}`);
  return n;
}

/** Field `i` of a frame whose field count was checked: a missing one is a bad frame all the same. */
function field(f: string[], i: number, what: string): string {
  const value = f[i];
  if (value === undefined) throw new FrameError(`${what} frame: field ${i} is missing`);
  return value;
}

function decodeOpen(f: string[], version: number): OpenHead {
  const n = version >= MESH_VERSION ? 9 : 7;
  if (f.length < n || (f.length - n) % 2 !== 0) {
    throw new FrameError(`open frame: expected ${n} fields, then header names and values in pairs`);
  }
  const kind = field(f, 0, 'open');
  if (kind !== 'http' && kind !== 'tcp') throw new FrameError(`open frame: unsupported stream kind ${JSON.stringify(kind.slice(0, 40))}`);
  const head: OpenHead = {
    kind, method: field(f, 1, 'open'), url: field(f, 2, 'open'), hops: int(f[3], 'hops', 'open', 0, 255),
    to: field(f, 4, 'open'), id: field(f, 5, 'open'),
    headers: f.slice(n),
  };
  if (f[6]) head.upgrade = f[6];
  if (n === 9 && f[7]) head.from = f[7];
  if (n === 9 && f[8]) {
    const via = f[8].split(' ');
    if (via.includes('')) throw new FrameError('open frame: "via" must be node names separated by single spaces');
    head.via = via;
  }
  return head;
}

function decodeResponse(f: string[]): ResponseHead {
  if (f.length < 2 || f.length % 2 !== 0) {
    throw new FrameError('response frame: expected status and message, then header names and values in pairs');
  }
  return { status: int(f[0], 'status', 'response', 100, 999), statusMessage: field(f, 1, 'response'), headers: f.slice(2) };
}

function decodeReset(buf: Buffer, start: number, end: number): ResetInfo {
  const text = buf.toString('utf8', start, end);
  const a = text.indexOf('\n');
  const b = a < 0 ? -1 : text.indexOf('\n', a + 1);
  if (b < 0) throw new FrameError('reset frame: expected code, node and message');
  return { code: text.slice(0, a), node: text.slice(a + 1, b), message: text.slice(b + 1) };
}

/**
 * Decodes one frame (header and exactly its payload) of wire `version`; throws FrameError on
 * anything malformed.
 */
export function decodeFrame(buf: Buffer, version = 2): Frame {
  if (buf.length < HEADER_SIZE) throw new FrameError(`frame of ${buf.length} bytes is shorter than its ${HEADER_SIZE}-byte header`);
  if (buf.readUInt32BE(5) !== buf.length - HEADER_SIZE) throw new FrameError('frame length does not match its payload');
  return decodeAt(buf, 0, buf.length, version);
}

/**
 * Decodes the frame at `buf[start..end)`, whose header is there and whose length field says
 * `end`: read in place, so a message's frames need no views of their own (DATA's payload is one).
 */
function decodeAt(buf: Buffer, start: number, end: number, version: number): Frame {
  const type = buf[start];
  const stream = buf.readUInt32BE(start + 1);
  const body = start + HEADER_SIZE;
  if (type === FrameType.routes && version >= MESH_VERSION) {
    if (stream !== 0) throw new FrameError('routes frame must be on stream 0');
    return { type: 'routes', stream, payload: buf.subarray(body, end) };
  }
  // Stream 0 is the tunnel itself: only a WINDOW (feature `connection-window`) or ROUTES may name it.
  if (stream === 0 && type !== FrameType.window) throw new FrameError('stream id 0 is reserved');
  switch (type) {
    case FrameType.open: return { type: 'open', stream, head: decodeOpen(fields(buf, body, end), version) };
    case FrameType.response: return { type: 'response', stream, head: decodeResponse(fields(buf, body, end)) };
    case FrameType.data: return { type: 'data', stream, data: buf.subarray(body, end) };
    case FrameType.end:
      if (end !== body) throw new FrameError('end frame must have no payload');
      return { type: 'end', stream };
    case FrameType.reset: return { type: 'reset', stream, info: decodeReset(buf, body, end) };
    case FrameType.trailers: {
      const headers = fields(buf, body, end);
      if (headers.length === 0 || headers.length % 2 !== 0) throw new FrameError('trailers frame: expected header names and values in pairs');
      return { type: 'trailers', stream, headers };
    }
    case FrameType.window: {
      if (end !== body + 4) throw new FrameError('window frame payload must be 4 bytes');
      const increment = buf.readUInt32BE(body);
      if (increment === 0) throw new FrameError('window increment must not be 0');
      return { type: 'window', stream, increment };
    }
    default:
      throw new FrameError(`unknown frame type 0x${(type ?? 0).toString(16).padStart(2, '0')}`);
  }
}

/** Decodes every frame of one WebSocket message, in order; throws FrameError if any is malformed. */
export function decodeMessage(message: Buffer, version = 2): Frame[] {
  const frames: Frame[] = [];
  let offset = 0;
  while (offset < message.length) {
    if (message.length - offset < HEADER_SIZE) throw new FrameError(`message ends inside a frame header (${message.length - offset} bytes left)`);
    const end = offset + HEADER_SIZE + message.readUInt32BE(offset + 5);
    if (end > message.length) throw new FrameError('frame length runs past the end of its message');
    frames.push(decodeAt(message, offset, end, version));
    offset = end;
  }
  if (frames.length === 0) throw new FrameError('empty message');
  return frames;
}
