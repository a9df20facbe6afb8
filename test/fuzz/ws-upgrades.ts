/**
 * fast-check arbitraries for the tunnel server fuzz harness: WebSocket upgrade requests as raw
 * bytes (subprotocol, X-West-Node name, Authorization, Sec-WebSocket-Key and -Version, window
 * and extension variants, then byte-level mutations), the WebSocket frames a client sends after
 * a successful upgrade (west frames valid, junk and cut; text, ping, pong, close, fragments,
 * reserved opcodes and bits, unmasked frames, lying lengths), and where the client hangs up.
 */
import fc from 'fast-check';
import {
  encodeData, encodeEnd, encodeOpen, encodeReset, encodeWindow, FrameType, HEADER_SIZE, SUBPROTOCOL,
} from '../../src/tunnel/frame.js';
import { showBytes } from '../helpers/fuzz.js';
import { mutate, SOME_MUTATIONS, type Mutation } from './mutate.js';

export interface ServerContext {
  /** host:port of the tunnel server. */
  authority: string;
  /** Token every name but the node's own may present (`wsts.tokens["*"]`). */
  sharedToken: string;
  /** The node's own name, whose token the fuzzer does not know. */
  ownName: string;
  /** A URL the node's egress list allows only for its own name. */
  originUrl: string;
}

export interface HandshakeCase {
  /** The upgrade request, one char per byte (latin1). */
  raw: string;
  mutations: Mutation[];
}

/** What the client does after its upgrade request. */
export interface Session {
  /** Frames written right after the request, without waiting for the 101. */
  eager: boolean;
  /** The WebSocket frames, as bytes. */
  frames: Buffer;
  /** How the client ends: a close frame then FIN, a bare FIN, or a reset after `at` bytes. */
  end: { kind: 'close-frame' } | { kind: 'fin' } | { kind: 'reset'; at: number } | { kind: 'reset-after-answer' };
}

export interface TunnelCase {
  handshake: HandshakeCase;
  session: Session;
  [fc.toStringMethod]?: () => string;
}

// ---- the upgrade request ----

/** `clean` most of the time, one of the odd values otherwise. */
function mostly<T>(clean: fc.Arbitrary<T>, odd: fc.Arbitrary<T>, cleanWeight = 6): fc.Arbitrary<T> {
  return fc.oneof({ weight: cleanWeight, arbitrary: clean }, { weight: 1, arbitrary: odd });
}

const KEY = mostly(
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('base64')),
  fc.oneof(
    fc.constantFrom('', 'short', '!!!!!!!!!!!!!!!!!!!!!!==', 'dGhlIHNhbXBsZSBub25jZQ', 'dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ=='),
    fc.uint8Array({ minLength: 0, maxLength: 24 }).map((b) => Buffer.from(b).toString('base64')),
  ),
);

/** Header lines of an upgrade request; undefined values are left out, arrays repeat the header. */
function headersOf(ctx: ServerContext): fc.Arbitrary<[string, string][]> {
  const own = ctx.ownName;
  const line = (name: string, value: fc.Arbitrary<string | string[] | undefined>): fc.Arbitrary<[string, string][]> =>
    value.map((v) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x): [string, string] => [name, x])));
  return fc.tuple(
    line('Host', mostly<string | string[] | undefined>(fc.constant(ctx.authority), fc.constantFrom(undefined, '', 'evil.example'))),
    line('Upgrade', mostly<string | string[] | undefined>(fc.constant('websocket'), fc.constantFrom(undefined, 'WebSocket', 'websocket, h2c', 'h2c', '', 'websocket\x00'))),
    line('Connection', mostly<string | string[] | undefined>(fc.constant('Upgrade'), fc.constantFrom(undefined, 'keep-alive, Upgrade', 'close', 'upgrade, close', 'Upgrade, X-West-Node'))),
    line('Sec-WebSocket-Version', mostly<string | string[] | undefined>(fc.constant('13'), fc.constantFrom(undefined, '8', '14', '13, 8', 'abc', '', ['13', '13']))),
    line('Sec-WebSocket-Key', mostly<string | string[] | undefined>(KEY, fc.constantFrom(undefined, ['dGhlIHNhbXBsZSBub25jZQ==', 'AQIDBAUGBwgJCgsMDQ4PEA==']))),
    line('Sec-WebSocket-Protocol', mostly<string | string[] | undefined>(fc.constant(SUBPROTOCOL), fc.constantFrom(
      undefined, 'west.v1', `west.v1, ${SUBPROTOCOL}`, `${SUBPROTOCOL}, ${SUBPROTOCOL}`, 'x', ` ${SUBPROTOCOL} `, SUBPROTOCOL.toUpperCase(),
      `${SUBPROTOCOL},`, ',,', ['x', SUBPROTOCOL], `${SUBPROTOCOL}\x00`, 'west.v2 west.v1',
    ))),
    line('X-West-Node', mostly<string | string[] | undefined>(
      fc.constantFrom('site-a', 'site-b', 'good-client', 'ws://site-c', 'ws://site-d/', 'x'.repeat(255)),
      fc.constantFrom(
        undefined, own, `ws://${own}`, `${own}/`, own.toUpperCase(), '', ' ', 'a b', 'é', '\x01', 'x'.repeat(256), ['site-a', 'site-b'], 'site-a\t',
      ),
    )),
    line('Authorization', mostly<string | string[] | undefined>(fc.constant(`Bearer ${ctx.sharedToken}`), fc.constantFrom(
      undefined, 'Bearer wrong', `bearer ${ctx.sharedToken}`, `Bearer  ${ctx.sharedToken} `, 'Basic eDp5', 'Bearer', `Bearer ${ctx.sharedToken} extra`,
      [`Bearer ${ctx.sharedToken}`, 'Bearer wrong'], `Bearer ${ctx.sharedToken}\x00`,
    ))),
    line('X-West-Window', mostly<string | string[] | undefined>(fc.constant(undefined), fc.constantFrom('16384', '0', '-1', '99999999999', 'abc', '1e5', '16777216', '16777217'), 3)),
    line('Sec-WebSocket-Extensions', mostly<string | string[] | undefined>(fc.constant(undefined), fc.constantFrom('permessage-deflate', 'permessage-deflate; client_max_window_bits', 'x;;', 'a=\x00'), 3)),
    line('Origin', mostly<string | string[] | undefined>(fc.constant(undefined), fc.constantFrom('http://evil.example', 'null', ''), 3)),
  ).map((groups) => groups.flat());
}

const REQUEST_LINE = mostly(
  fc.constant('GET / HTTP/1.1'),
  fc.constantFrom('GET /x?y HTTP/1.1', 'POST / HTTP/1.1', 'GET / HTTP/1.0', 'GET * HTTP/1.1', 'get / HTTP/1.1', 'GET http://127.0.0.1/ HTTP/1.1', 'GET / HTTP/2.0', 'HEAD / HTTP/1.1'),
);

/** A request a well-behaved client sends: a good name and token, any key, maybe a window and extensions. */
function goodHeaders(ctx: ServerContext): fc.Arbitrary<[string, string][]> {
  return fc.record({
    key: KEY,
    name: fc.constantFrom('site-a', 'site-b', 'good-client', 'ws://site-c', 'x'.repeat(255)),
    window: fc.constantFrom(undefined, '16384', '1048576', '16777216'),
    extensions: fc.constantFrom(undefined, 'permessage-deflate; client_max_window_bits'),
  }).map((h) => [
    ['Host', ctx.authority], ['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Version', '13'],
    ['Sec-WebSocket-Key', h.key], ['Sec-WebSocket-Protocol', SUBPROTOCOL], ['X-West-Node', h.name], ['Authorization', `Bearer ${ctx.sharedToken}`],
    ...(h.window ? [['X-West-Window', h.window] as [string, string]] : []),
    ...(h.extensions ? [['Sec-WebSocket-Extensions', h.extensions] as [string, string]] : []),
  ]);
}

/** Half the requests are a good client's (so frames get through), half have odd parts and mutations. */
export function handshake(ctx: ServerContext): fc.Arbitrary<HandshakeCase> {
  const good = goodHeaders(ctx).map((headers): HandshakeCase => ({ raw: `GET / HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`, mutations: [] }));
  const odd = fc.tuple(REQUEST_LINE, headersOf(ctx), mostly(fc.constant('\r\n'), fc.constantFrom('\n', '\r\r\n')), SOME_MUTATIONS)
    .map(([requestLine, headers, eol, mutations]) => {
      const text = `${requestLine}\r\n${headers.map(([n, v]) => `${n}: ${v}${eol}`).join('')}${eol}`;
      return { raw: mutate([{ text, fixed: false }], mutations), mutations };
    });
  return fc.oneof(good, odd);
}

// ---- WebSocket frames ----

interface WsFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  mask: number;
  payload: Buffer;
  /** 'min': the shortest length form; '16'/'64': a longer one than needed; a number: a lie. */
  length: 'min' | '16' | '64' | number;
}

function encodeWs(f: WsFrame): Buffer {
  const n = typeof f.length === 'number' ? f.length : f.payload.length;
  const form = f.length === '16' || (f.length !== '64' && n > 125 && n <= 0xffff) ? 16 : f.length === '64' || n > 0xffff ? 64 : 7;
  const head: number[] = [(f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0f)];
  const maskBit = f.masked ? 0x80 : 0;
  if (form === 7) head.push(maskBit | n);
  else if (form === 16) head.push(maskBit | 126, (n >> 8) & 0xff, n & 0xff);
  else {
    head.push(maskBit | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(n));
    head.push(...big);
  }
  const key = Buffer.alloc(4);
  key.writeUInt32BE(f.mask >>> 0);
  const body = Buffer.from(f.payload);
  if (f.masked) for (let i = 0; i < body.length; i++) body[i] = (body[i] ?? 0) ^ (key[i % 4] ?? 0);
  return Buffer.concat([Buffer.from(head), f.masked ? key : Buffer.alloc(0), body]);
}

/** A client's frame: FIN, no reserved bits, masked, shortest length. */
function plainFrame(opcode: number, payload: Buffer, mask: number): WsFrame {
  return { fin: true, rsv: 0, opcode, masked: true, mask, payload, length: 'min' };
}

const STREAM_ID = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 3, 5, 7) },
  { weight: 1, arbitrary: fc.constantFrom(0, 2, 0xffff_ffff, 0xffff_fffe) },
  { weight: 1, arbitrary: fc.nat() },
);

/** The west frames a hostile client puts in one binary message. */
function westPayload(ctx: ServerContext): fc.Arbitrary<Buffer> {
  const open = fc.record({
    id: STREAM_ID,
    method: fc.constantFrom('GET', 'POST', 'CONNECT', 'G ET', ''),
    url: fc.constantFrom(`${ctx.originUrl}/x`, ctx.originUrl, 'http://127.0.0.1:1/', 'file:///etc/passwd', 'not a url', `http://${ctx.authority}/`),
    headers: fc.constantFrom<string[]>(['X-Fuzz-Case', 'tunnel'], [], ['Host', 'evil.example', 'X-Fuzz-Case', 'tunnel'], ['X-A', 'a\rb']),
    hops: fc.constantFrom(0, 1, 255),
    to: fc.constantFrom('', '', ctx.ownName, 'elsewhere'),
    upgrade: fc.constantFrom(undefined, undefined, 'websocket'),
  }).map((o) => encodeOpen(o.id, {
    kind: 'http', method: o.method, url: o.url, headers: o.headers, hops: o.hops, to: o.to, id: 'fuzz', ...(o.upgrade ? { upgrade: o.upgrade } : {}),
  }));
  const other = fc.oneof(
    fc.tuple(STREAM_ID, fc.uint8Array({ maxLength: 64 })).map(([id, d]) => encodeData(id, d)),
    fc.tuple(STREAM_ID, fc.constantFrom(70_000, 300_000)).map(([id, n]) => encodeData(id, Buffer.alloc(n, 0x61))),
    STREAM_ID.map((id) => encodeEnd(id)),
    STREAM_ID.map((id) => encodeReset(id, { code: 'internal', message: 'fuzz', node: 'fuzz' })),
    fc.tuple(STREAM_ID, fc.constantFrom(1, 0xffff_ffff, 65_536)).map(([id, inc]) => encodeWindow(id, inc)),
  );
  const junk = fc.oneof(
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.integer({ min: 0, max: 255 }), STREAM_ID, fc.nat()).map(([type, id, len]) => {
      const b = Buffer.alloc(HEADER_SIZE);
      b[0] = type;
      b.writeUInt32BE(id >>> 0, 1);
      b.writeUInt32BE(len >>> 0, 5);
      return b;
    }),
    fc.constant(Buffer.from([FrameType.open, 0, 0, 0, 1, 0, 0, 0, 3, 0x68, 0x74, 0x74])),
  );
  const frame = fc.oneof({ weight: 3, arbitrary: open }, { weight: 3, arbitrary: other }, { weight: 1, arbitrary: junk });
  return fc.tuple(fc.array(frame, { minLength: 1, maxLength: 4 }), fc.option(fc.nat(), { freq: 4 }))
    .map(([frames, cut]) => {
      const all = Buffer.concat(frames);
      return cut === null ? all : all.subarray(0, cut % (all.length + 1));
    });
}

function wsFrames(ctx: ServerContext): fc.Arbitrary<Buffer> {
  const mask = fc.nat();
  const one = fc.oneof(
    { weight: 8, arbitrary: fc.tuple(westPayload(ctx), mask).map(([p, m]) => [plainFrame(2, p, m)]) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('hello', '\u00e9', ''), mask).map(([t, m]) => [plainFrame(1, Buffer.from(t), m)]) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(Buffer.from([0xc3, 0x28]), Buffer.from([0xff])), mask).map(([p, m]) => [plainFrame(1, p, m)]) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(9, 10), fc.integer({ min: 0, max: 130 }), mask).map(([op, n, m]) => [plainFrame(op, Buffer.alloc(n, 1), m)]) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom(1000, 1001, 1002, 1005, 1006, 999, 0, 4000, 4409, 65535), fc.constantFrom('', 'bye', '\xff'), mask).map(([code, reason, m]) => {
        const p = Buffer.alloc(2 + reason.length);
        p.writeUInt16BE(code);
        p.write(reason, 2, 'latin1');
        return [plainFrame(8, p, m)];
      }),
    },
    { weight: 1, arbitrary: mask.map((m) => [plainFrame(8, Buffer.from([3]), m)]) },
    // A fragmented binary message, maybe with a ping between the fragments.
    {
      weight: 1,
      arbitrary: fc.tuple(westPayload(ctx), fc.nat(), fc.boolean(), mask).map(([p, at, ping, m]) => {
        const cut = at % (p.length + 1);
        const first = { ...plainFrame(2, p.subarray(0, cut), m), fin: false };
        return [first, ...(ping ? [plainFrame(9, Buffer.from('p'), m)] : []), plainFrame(0, p.subarray(cut), m)];
      }),
    },
    { weight: 1, arbitrary: fc.tuple(fc.uint8Array({ maxLength: 8 }), mask).map(([p, m]) => [plainFrame(0, Buffer.from(p), m)]) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(3, 4, 5, 6, 7, 11, 12, 13, 14, 15), mask).map(([op, m]) => [plainFrame(op, Buffer.from('x'), m)]) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 7 }), westPayload(ctx), mask).map(([rsv, p, m]) => [{ ...plainFrame(2, p, m), rsv }]) },
    { weight: 1, arbitrary: fc.tuple(westPayload(ctx), mask).map(([p, m]) => [{ ...plainFrame(2, p, m), masked: false }]) },
    { weight: 1, arbitrary: fc.tuple(westPayload(ctx), fc.constantFrom<WsFrame['length']>('16', '64', 2 ** 40, 2 ** 21, 0), mask).map(([p, length, m]) => [{ ...plainFrame(2, p, m), length }]) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(9, 8), mask).map(([op, m]) => [{ ...plainFrame(op, Buffer.from('x'), m), fin: false }]) },
  );
  return fc.array(one, { maxLength: 5 }).map((groups) => Buffer.concat(groups.flat().map(encodeWs)));
}

export const ENDS: fc.Arbitrary<Session['end']> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'close-frame' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'fin' as const }) },
  { weight: 2, arbitrary: fc.nat().map((at) => ({ kind: 'reset' as const, at })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset-after-answer' as const }) },
);

export function session(ctx: ServerContext, ends = ENDS): fc.Arbitrary<Session> {
  return fc.record({ eager: mostly(fc.constant(false), fc.constant(true), 4), frames: wsFrames(ctx), end: ends });
}

export function tunnelCase(ctx: ServerContext, handshakes = handshake(ctx), ends = ENDS): fc.Arbitrary<TunnelCase> {
  return fc.tuple(handshakes, session(ctx, ends)).map(([h, s]) => ({
    handshake: h,
    session: s,
    [fc.toStringMethod]: () => `request ${showBytes(h.raw)}, then ${s.eager ? 'at once ' : ''}frames ${showBytes(s.frames.toString('latin1'))}, end ${JSON.stringify(s.end)}`,
  }));
}

/** A close frame from the client (code 1000), masked. */
export function closeFrame(): Buffer {
  const p = Buffer.from([0x03, 0xe8]);
  return encodeWs(plainFrame(8, p, 0x1234_5678));
}
