/**
 * The west tunnel frame codec (protocol version 1, see doc/protocol.md).
 *
 * Every WebSocket binary message carries exactly one frame:
 *
 *   byte 0      frame type
 *   bytes 1-4   stream id, unsigned 32-bit big-endian
 *   bytes 5-    payload (meaning depends on the type)
 */

export const PROTOCOL_VERSION = 1;
/** WebSocket subprotocol both ends must agree on; a new wire format gets a new one. */
export const SUBPROTOCOL = `west.v${PROTOCOL_VERSION}`;

export const HEADER_SIZE = 5;
export const MAX_STREAM_ID = 0xffff_ffff;

export const FrameType = {
  open: 0x01,
  response: 0x02,
  data: 0x03,
  end: 0x04,
  reset: 0x05,
  window: 0x06,
} as const;

/** What a stream carries. Only `http` exists in v1; `tcp` is reserved for port forwarding. */
export type StreamKind = 'http';

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
  /** Destination node; '' = the node at the other end of this tunnel. Reserved for routing. */
  to: string;
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
  /** A FailureCode from src/errors.ts, or 'cancel' when the opener gave up. */
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
  | { type: 'window'; stream: number; increment: number };

/** A frame that cannot be decoded; the session answers it by closing with 1002. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

function header(type: number, stream: number, payloadSize: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + payloadSize);
  buf[0] = type;
  buf.writeUInt32BE(stream, 1);
  return buf;
}

function jsonFrame(type: number, stream: number, value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const buf = header(type, stream, json.length);
  json.copy(buf, HEADER_SIZE);
  return buf;
}

export function encodeOpen(stream: number, head: OpenHead): Buffer {
  return jsonFrame(FrameType.open, stream, head);
}

export function encodeResponse(stream: number, head: ResponseHead): Buffer {
  return jsonFrame(FrameType.response, stream, head);
}

export function encodeData(stream: number, data: Uint8Array, start = 0, end = data.length): Buffer {
  const buf = header(FrameType.data, stream, end - start);
  buf.set(data.subarray(start, end), HEADER_SIZE);
  return buf;
}

export function encodeEnd(stream: number): Buffer {
  return header(FrameType.end, stream, 0);
}

export function encodeReset(stream: number, info: ResetInfo): Buffer {
  return jsonFrame(FrameType.reset, stream, info);
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
  }
}

function parseJson(buf: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(buf.subarray(HEADER_SIZE).toString('utf8'));
  } catch {
    throw new FrameError(`${what} frame payload is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FrameError(`${what} frame payload must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.length % 2 === 0 && v.every((s) => typeof s === 'string');
}

function str(obj: Record<string, unknown>, key: string, what: string): string {
  const v = obj[key];
  if (typeof v !== 'string') throw new FrameError(`${what} frame: "${key}" must be a string`);
  return v;
}

function int(obj: Record<string, unknown>, key: string, what: string, min: number, max: number): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new FrameError(`${what} frame: "${key}" must be an integer in ${min}..${max}`);
  }
  return v;
}

function headers(obj: Record<string, unknown>, what: string): string[] {
  const v = obj.headers;
  if (!isStringList(v)) throw new FrameError(`${what} frame: "headers" must be a flat list of name/value strings`);
  return v;
}

function decodeOpen(buf: Buffer): OpenHead {
  const o = parseJson(buf, 'open');
  if (o.kind !== 'http') throw new FrameError(`open frame: unsupported stream kind ${JSON.stringify(o.kind)}`);
  const head: OpenHead = {
    kind: 'http',
    method: str(o, 'method', 'open'),
    url: str(o, 'url', 'open'),
    headers: headers(o, 'open'),
    hops: int(o, 'hops', 'open', 0, 255),
    to: str(o, 'to', 'open'),
    id: str(o, 'id', 'open'),
  };
  if (o.upgrade !== undefined) head.upgrade = str(o, 'upgrade', 'open');
  return head;
}

function decodeResponse(buf: Buffer): ResponseHead {
  const o = parseJson(buf, 'response');
  return {
    status: int(o, 'status', 'response', 100, 999),
    statusMessage: str(o, 'statusMessage', 'response'),
    headers: headers(o, 'response'),
  };
}

function decodeReset(buf: Buffer): ResetInfo {
  const o = parseJson(buf, 'reset');
  return { code: str(o, 'code', 'reset'), message: str(o, 'message', 'reset'), node: str(o, 'node', 'reset') };
}

/** Decodes one frame; throws FrameError on anything malformed. */
export function decodeFrame(buf: Buffer): Frame {
  if (buf.length < HEADER_SIZE) throw new FrameError(`frame of ${buf.length} bytes is shorter than its ${HEADER_SIZE}-byte header`);
  const type = buf[0];
  const stream = buf.readUInt32BE(1);
  if (stream === 0) throw new FrameError('stream id 0 is reserved');
  switch (type) {
    case FrameType.open: return { type: 'open', stream, head: decodeOpen(buf) };
    case FrameType.response: return { type: 'response', stream, head: decodeResponse(buf) };
    case FrameType.data: return { type: 'data', stream, data: buf.subarray(HEADER_SIZE) };
    case FrameType.end:
      if (buf.length !== HEADER_SIZE) throw new FrameError('end frame must have no payload');
      return { type: 'end', stream };
    case FrameType.reset: return { type: 'reset', stream, info: decodeReset(buf) };
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
