/**
 * The far end's origin connection (src/proxy/far/h1/connection.ts) reads Content-Length and
 * close-delimited bodies itself, past llhttp, as pieces of the socket's read buffers. Here it
 * is held against the way before (every body through llhttp, copied: the same class built with
 * `bodiesThroughParser`) on sequences of answers on one keep-alive connection, split at random
 * points into socket reads: bodies of random sizes (0 too), chunked with trailers, HEAD, 204 and
 * 304 answers, 1xx heads before the answer, long heads (flushed by the parser in parts), bytes
 * after the body (line ends, junk, a second answer nobody asked for), an origin that closes
 * early, a corrupted head. Both must give the exchanges the same events (heads, body pieces,
 * completion, the same error), pause the socket the same way and leave the connection in the
 * same state; besides, what completes carries the bytes the origin meant, and the direct
 * path's body pieces are views of the reads, not copies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import fc from 'fast-check';
import { OriginConnection, type OriginError, type ResponseSink } from '../../src/proxy/far/h1/connection.js';
import { fuzzParameters, fuzzTimeout, FUZZ_RUNS } from '../helpers/fuzz.js';

/** What OriginConnection uses of a socket; each `emit('data')` is one read. */
class ScriptedSocket extends EventEmitter {
  destroyed = false;
  readableEnded = false;
  writable = true;
  private paused = false;

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writable = false;
    // As a net.Socket: 'close' on a later tick, never from inside a parser callback.
    process.nextTick(() => this.emit('close', false));
    return this;
  }
}

type Framing = 'length' | 'chunked' | 'close' | 'two-lengths' | 'length-and-chunked';

interface Answer {
  informs: string[];
  version: string;
  status: number;
  /** The request was HEAD. */
  head: boolean;
  framing: Framing;
  size: number;
  chunks: number;
  trailers: boolean;
  lengthName: string;
  lengthPad: string;
  manyHeaders: boolean;
  connection: string;
  extra: string;
  /** Where the origin stops sending and closes (a fraction of the answer's bytes), or null. */
  cut: number | null;
  /** Read boundaries, as fractions of the answer's bytes. */
  splits: number[];
  /** More read boundaries, this many bytes from the end of the head (reads of a byte or two about its CR LF CR LF). */
  nearHeadEnd: number[];
  mutation: { at: number; byte: number } | null;
  /** The exchange pauses the socket at every n-th body piece (0: never). */
  pauseEvery: number;
}

const FRACTION = fc.nat(999_999).map((n) => n / 1_000_000);
const BODY_SIZE = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 5000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 300_000 }) },
);
const ANSWER: fc.Arbitrary<Answer> = fc.record({
  informs: fc.array(fc.constantFrom(
    'HTTP/1.1 100 Continue\r\n\r\n',
    'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n',
    'HTTP/1.1 102 Processing\r\n\r\n',
  ), { maxLength: 2 }),
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
  status: fc.constantFrom(200, 200, 200, 201, 204, 304, 404, 500),
  head: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  framing: fc.oneof(
    { weight: 8, arbitrary: fc.constant<Framing>('length') },
    { weight: 3, arbitrary: fc.constant<Framing>('chunked') },
    { weight: 2, arbitrary: fc.constant<Framing>('close') },
    { weight: 1, arbitrary: fc.constantFrom<Framing>('two-lengths', 'length-and-chunked') },
  ),
  size: BODY_SIZE,
  chunks: fc.integer({ min: 1, max: 4 }),
  trailers: fc.boolean(),
  lengthName: fc.constantFrom('Content-Length', 'content-length', 'CONTENT-length'),
  lengthPad: fc.constantFrom('', '', '', ' ', '0', '00'),
  manyHeaders: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  connection: fc.constantFrom('', '', '', 'Connection: keep-alive\r\n', 'Connection: close\r\n'),
  extra: fc.oneof(
    { weight: 8, arbitrary: fc.constant('') },
    { weight: 1, arbitrary: fc.constantFrom('\r\n', '\r\n\r\n', 'X', '\u0000', 'HTTP/1.1 200', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc') },
  ),
  cut: fc.option(FRACTION, { freq: 8 }),
  splits: fc.array(FRACTION, { maxLength: 6 }),
  nearHeadEnd: fc.oneof(
    { weight: 2, arbitrary: fc.constant<number[]>([]) },
    { weight: 1, arbitrary: fc.array(fc.integer({ min: -4, max: 3 }), { maxLength: 4 }) },
  ),
  mutation: fc.option(fc.record({ at: FRACTION, byte: fc.nat(255) }), { freq: 12 }),
  pauseEvery: fc.nat(3),
});
const SCRIPT = fc.array(ANSWER, { minLength: 1, maxLength: 5 });

/** An answer's body bytes: a pattern that differs from answer to answer. */
function bodyOf(size: number, seed: number): Buffer {
  const body = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) body[i] = (i * 31 + seed) & 0xff;
  return body;
}

interface Built {
  bytes: Buffer;
  headLength: number;
  /** What an exchange should receive as the body when all goes well. */
  body: Buffer;
  /** The body is read past llhttp (Content-Length > 0, or until close). */
  direct: boolean;
}

function build(a: Answer, seed: number): Built {
  const noBody = a.head || a.status === 204 || a.status === 304;
  const body = bodyOf(a.size, seed);
  let head = a.informs.join('') + `${a.version} ${a.status} X\r\nContent-Type: application/octet-stream\r\n`;
  if (a.manyHeaders) for (let i = 0; i < 40; i++) head += `X-Filler-${i}: ${'v'.repeat(i)}\r\n`;
  head += a.connection;
  const length = `${a.lengthName}: ${a.lengthPad}${a.size}${a.lengthPad === ' ' ? ' ' : ''}\r\n`;
  let payload: Buffer = body;
  if (a.framing === 'length') head += length;
  else if (a.framing === 'two-lengths') head += length + length;
  else if (a.framing === 'length-and-chunked') head += length + 'Transfer-Encoding: chunked\r\n';
  else if (a.framing === 'chunked') {
    head += 'Transfer-Encoding: chunked\r\n';
    const parts: Buffer[] = [];
    let at = 0;
    for (let i = 0; i < a.chunks && at < a.size; i++) {
      const take = i === a.chunks - 1 ? a.size - at : Math.ceil((a.size - at) / (a.chunks - i));
      parts.push(Buffer.from(`${take.toString(16)}\r\n`, 'latin1'), body.subarray(at, at + take), Buffer.from('\r\n', 'latin1'));
      at += take;
    }
    parts.push(Buffer.from(`0\r\n${a.trailers ? 'X-Digest: abc\r\n' : ''}\r\n`, 'latin1'));
    payload = Buffer.concat(parts);
  }
  head += '\r\n';
  const bytes = Buffer.concat([Buffer.from(head, 'latin1'), noBody ? Buffer.alloc(0) : payload, Buffer.from(a.extra, 'latin1')]);
  const headLength = head.length;
  if (a.mutation) bytes[Math.floor(a.mutation.at * headLength)] = a.mutation.byte;
  const direct = !noBody && (a.framing === 'close' || (a.framing === 'length' && a.size > 0));
  const expected = noBody ? Buffer.alloc(0) : a.framing === 'close' ? Buffer.concat([body, Buffer.from(a.extra, 'latin1')]) : body;
  return { bytes, headLength, body: expected, direct };
}

/** The reads the origin's bytes arrive in: each its own buffer. */
function reads(bytes: Buffer, headLength: number, a: Answer): Buffer[] {
  const end = a.cut === null ? bytes.length : Math.floor(a.cut * bytes.length);
  const points = [...a.splits.map((f) => Math.floor(f * end)), ...a.nearHeadEnd.map((d) => headLength + d)];
  const cuts = [...new Set(points)].filter((n) => n > 0 && n < end).sort((x, y) => x - y);
  const out: Buffer[] = [];
  let at = 0;
  for (const n of [...cuts, end]) {
    if (n <= at) continue;
    const piece = Buffer.alloc(n - at);
    bytes.copy(piece, 0, at, n);
    out.push(piece);
    at = n;
  }
  return out;
}

interface Exchange {
  body: Buffer[];
  done: boolean;
  completed: boolean;
  /** Every body piece shared the memory of one of the reads. */
  views: boolean;
}

interface Outcome {
  log: string[];
  exchanges: Exchange[];
  destroyed: boolean;
  served: number;
}

/** Plays `script` to one connection, as the pool and exchanges would use it. */
async function play(script: Answer[], built: Built[], bodiesThroughParser: boolean): Promise<Outcome> {
  const socket = new ScriptedSocket();
  const conn = new OriginConnection(socket as unknown as Socket, 'origin:80', { bodiesThroughParser });
  const log: string[] = [];
  const exchanges: Exchange[] = [];
  const fed = new Set<ArrayBufferLike>();
  for (let i = 0; i < script.length; i++) {
    const a = script[i]!;
    const ex: Exchange = { body: [], done: false, completed: false, views: true };
    exchanges.push(ex);
    let pieces = 0;
    const sink: ResponseSink = {
      onInform: (status, message, headers) => log.push(`${i} inform ${status} ${message} ${JSON.stringify(headers)}`),
      onHead: (status, message, headers) => {
        log.push(`${i} head ${status} ${message} ${JSON.stringify(headers)} keepAlive=${conn.keepAlive}`);
        return a.head || status === 204 || status === 304;
      },
      onBody: (chunk) => {
        log.push(`${i} body ${chunk.length}`);
        ex.body.push(chunk);
        if (!fed.has(chunk.buffer)) ex.views = false;
        if (a.pauseEvery > 0 && ++pieces % a.pauseEvery === 0) {
          log.push(`${i} pause`);
          socket.pause();
        }
      },
      onComplete: (trailers) => {
        log.push(`${i} complete ${JSON.stringify(trailers)}`);
        ex.done = ex.completed = true;
        // The pool keeps only a usable connection.
        if (!conn.usable) conn.destroy();
      },
      onError: (err: OriginError) => {
        log.push(`${i} error ${err.code} ${err.message} ${err.malformed}`);
        ex.done = true;
      },
      onDrain: () => {},
    };
    conn.attach(sink);
    for (const piece of reads(built[i]!.bytes, built[i]!.headLength, a)) {
      if (socket.destroyed) break;
      // The exchange's stream drained: the origin is read again.
      if (socket.isPaused()) socket.resume();
      fed.add(piece.buffer);
      socket.emit('data', piece);
    }
    if (a.cut !== null || !ex.done) {
      if (!socket.destroyed) {
        socket.readableEnded = true;
        socket.emit('end');
      }
      break;
    }
    if (!conn.usable) break;
  }
  // The 'close' the connection's end has queued.
  await new Promise((resolve) => setImmediate(resolve));
  log.push(`destroyed=${socket.destroyed} served=${conn.served}`);
  return { log, exchanges, destroyed: socket.destroyed, served: conn.served };
}

test('bodies read past llhttp reach the exchanges as llhttp alone gave them, on any split of the reads', { timeout: fuzzTimeout(FUZZ_RUNS * 100, 20) }, async () => {
  await fc.assert(fc.asyncProperty(SCRIPT, async (script) => {
    const built = script.map((a, i) => build(a, i * 7 + 1));
    const before = await play(script, built, true);
    const now = await play(script, built, false);
    assert.deepEqual(now.log, before.log);
    for (let i = 0; i < now.exchanges.length; i++) {
      const ex = now.exchanges[i]!;
      const old = before.exchanges[i]!;
      assert.ok(Buffer.concat(ex.body).equals(Buffer.concat(old.body)), `exchange ${i}: the same body bytes`);
      const a = script[i]!;
      const b = built[i]!;
      if (a.mutation !== null || a.cut !== null || !ex.completed) continue;
      // An answer as the origin meant it arrives whole.
      assert.ok(Buffer.concat(ex.body).equals(b.body), `exchange ${i}: the body the origin sent`);
      if (b.direct) assert.ok(ex.views, `exchange ${i}: body pieces are views of the reads`);
      else assert.ok(!ex.views || ex.body.length === 0, `exchange ${i}: llhttp's body pieces are copies`);
    }
  }), fuzzParameters(100));
});

test('the parser is ready for the next answer after a body read past it, and a second answer in the same read ends the connection', async () => {
  const head = (n: number): string => `HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n`;
  const script: Answer[] = [];
  const base: Answer = {
    informs: [], version: 'HTTP/1.1', status: 200, head: false, framing: 'length', size: 5, chunks: 1, trailers: false,
    lengthName: 'Content-Length', lengthPad: '', manyHeaders: false, connection: '', extra: '', cut: null, splits: [], nearHeadEnd: [], mutation: null, pauseEvery: 0,
  };
  script.push({ ...base }, { ...base, size: 0 }, { ...base, framing: 'chunked', trailers: true }, { ...base, size: 3, extra: head(2) + 'hi' });
  const built = script.map((a, i) => build(a, i));
  const now = await play(script, built, false);
  assert.deepEqual(now.exchanges.map((e) => e.completed), [true, true, true, true]);
  assert.equal(now.served, 4);
  assert.equal(now.destroyed, true, 'an answer no exchange asked for ends the connection');
  assert.equal(Buffer.concat(now.exchanges[3]!.body).length, 3);
});
