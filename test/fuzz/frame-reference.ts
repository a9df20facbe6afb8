/**
 * The frame codec as it was before issue 15's per-request work (frame heads encoded and decoded
 * field by field, each frame of a message decoded from a view of its own): the reference that
 * frame-codec.fuzz.test.ts holds today's codec to, byte for byte and error for error. Test code
 * only; nothing in src/ imports it.
 */
import { FrameError, FrameType, HEADER_SIZE, MESH_VERSION, type Frame, type OpenHead, type ResetInfo, type ResponseHead } from '../../src/tunnel/frame.js';

function header(type: number, stream: number, payloadSize: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + payloadSize);
  buf[0] = type;
  buf.writeUInt32BE(stream, 1);
  buf.writeUInt32BE(payloadSize, 5);
  return buf;
}

function line(value: string, what: string): string {
  if (value.includes('\n')) throw new FrameError(`${what} frame: a field contains a line feed`);
  return value;
}

function textFrame(type: number, stream: number, text: string): Buffer {
  const buf = header(type, stream, Buffer.byteLength(text, 'utf8'));
  buf.write(text, HEADER_SIZE, 'utf8');
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
  const text = `${head.kind}\n${line(head.method, 'open')}\n${line(head.url, 'open')}\n${head.hops}\n${line(head.to, 'open')}\n` +
    `${line(head.id, 'open')}\n${line(head.upgrade ?? '', 'open')}` + (version >= MESH_VERSION ? `\n${line(head.from ?? '', 'open')}\n${line((head.via ?? []).join(' '), 'open')}` : '');
  return textFrame(FrameType.open, stream, withHeaders(text, head.headers, 'open'));
}

/** RESPONSE: status, status message, then header names and values. */
export function encodeResponse(stream: number, head: ResponseHead): Buffer {
  return textFrame(FrameType.response, stream, withHeaders(`${head.status}\n${line(head.statusMessage, 'response')}`, head.headers, 'response'));
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
  return textFrame(FrameType.trailers, stream, headers.map((h) => line(h, 'trailers')).join('\n'));
}

export function encodeEnd(stream: number): Buffer {
  return header(FrameType.end, stream, 0);
}

/** RESET: code, node, then the message (the rest of the payload, line feeds and all). */
export function encodeReset(stream: number, info: ResetInfo): Buffer {
  return textFrame(FrameType.reset, stream, `${line(info.code, 'reset')}\n${line(info.node, 'reset')}\n${info.message}`);
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

function fields(buf: Buffer): string[] {
  return buf.toString('utf8', HEADER_SIZE).split('\n');
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

function decodeOpen(buf: Buffer, version: number): OpenHead {
  const f = fields(buf);
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

function decodeResponse(buf: Buffer): ResponseHead {
  const f = fields(buf);
  if (f.length < 2 || f.length % 2 !== 0) {
    throw new FrameError('response frame: expected status and message, then header names and values in pairs');
  }
  return { status: int(f[0], 'status', 'response', 100, 999), statusMessage: field(f, 1, 'response'), headers: f.slice(2) };
}

function decodeReset(buf: Buffer): ResetInfo {
  const text = buf.toString('utf8', HEADER_SIZE);
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
  const type = buf[0];
  const stream = buf.readUInt32BE(1);
  if (buf.readUInt32BE(5) !== buf.length - HEADER_SIZE) throw new FrameError('frame length does not match its payload');
  if (type === FrameType.routes && version >= MESH_VERSION) {
    if (stream !== 0) throw new FrameError('routes frame must be on stream 0');
    return { type: 'routes', stream, payload: buf.subarray(HEADER_SIZE) };
  }
  // Stream 0 is the tunnel itself: only a WINDOW (feature `connection-window`) or ROUTES may name it.
  if (stream === 0 && type !== FrameType.window) throw new FrameError('stream id 0 is reserved');
  switch (type) {
    case FrameType.open: return { type: 'open', stream, head: decodeOpen(buf, version) };
    case FrameType.response: return { type: 'response', stream, head: decodeResponse(buf) };
    case FrameType.data: return { type: 'data', stream, data: buf.subarray(HEADER_SIZE) };
    case FrameType.end:
      if (buf.length !== HEADER_SIZE) throw new FrameError('end frame must have no payload');
      return { type: 'end', stream };
    case FrameType.reset: return { type: 'reset', stream, info: decodeReset(buf) };
    case FrameType.trailers: {
      const headers = fields(buf);
      if (headers.length === 0 || headers.length % 2 !== 0) throw new FrameError('trailers frame: expected header names and values in pairs');
      return { type: 'trailers', stream, headers };
    }
    case FrameType.window: {
      if (buf.length !== HEADER_SIZE + 4) throw new FrameError('window frame payload must be 4 bytes');
      const increment = buf.readUInt32BE(HEADER_SIZE);
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
    frames.push(decodeFrame(message.subarray(offset, end), version));
    offset = end;
  }
  if (frames.length === 0) throw new FrameError('empty message');
  return frames;
}
