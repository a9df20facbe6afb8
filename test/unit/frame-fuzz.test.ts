/**
 * Property-based tests of the frame codec (fast-check): every valid frame, and every message of
 * several, survives an encode/decode round trip; a head field with a line feed is refused at
 * encoding; and decodeFrame/decodeMessage on any bytes (random, structured junk, truncated or
 * mutated valid frames) either return well-formed Frames or throw FrameError: never another
 * exception, never a hang. The properties run in a worker thread: one that does not
 * report in time fails its test and the worker is terminated, so a decoder that loops for ever
 * fails the run instead of hanging it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import fc from 'fast-check';
import {
  decodeFrame, decodeMessage, encodeFrame, FrameError, FrameType, HEADER_SIZE, MAX_STREAM_ID, type Frame,
} from '../../src/tunnel/frame.js';

const RUNS = 1000;
/** A single decode of at most a few KiB taking this long counts as a hang. */
const SLOW_DECODE_MS = 1000;
/** A whole property (1000 runs) taking this long counts as a hang. */
const PROPERTY_TIMEOUT_MS = 30_000;

// ---- arbitraries ----

/** Strings a head field can hold: any well-formed Unicode but a line feed (UTF-8 on the wire). */
const anyString = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 24 }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\u0000', '\r', '\t', 'é', '\u00ff', '😀', ''), maxLength: 8 }),
).map((v) => v.replaceAll('\n', ' '));
/** Anything at all, line feeds and lone surrogates included. */
const wildString = fc.string({ unit: fc.constantFrom('\ud800', '\udfff', '\n', 'a', 'é', '\u0000'), minLength: 1, maxLength: 8 });
const streamId = fc.oneof(fc.integer({ min: 1, max: MAX_STREAM_ID }), fc.constantFrom(1, 2, MAX_STREAM_ID));
const headerList = fc.array(fc.tuple(anyString, anyString), { maxLength: 6 }).map((pairs) => pairs.flat());

/** fc.record with ordinary objects (decodeFrame builds plain objects; deepEqual compares prototypes). */
const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(model, { noNullPrototype: true });

const openFrame = record({
  type: fc.constant('open' as const),
  stream: streamId,
  head: fc.record({
    kind: fc.constant('http' as const),
    method: anyString,
    url: anyString,
    headers: headerList,
    hops: fc.integer({ min: 0, max: 255 }),
    to: anyString,
    id: anyString,
    upgrade: anyString.filter((v) => v !== ''),
  }, { requiredKeys: ['kind', 'method', 'url', 'headers', 'hops', 'to', 'id'], noNullPrototype: true }),
});
const responseFrame = record({
  type: fc.constant('response' as const),
  stream: streamId,
  head: record({ status: fc.integer({ min: 100, max: 999 }), statusMessage: anyString, headers: headerList }),
});
const dataFrame = record({
  type: fc.constant('data' as const),
  stream: streamId,
  data: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
});
const endFrame = record({ type: fc.constant('end' as const), stream: streamId });
const resetFrame = record({
  type: fc.constant('reset' as const),
  stream: streamId,
  // The message is the rest of the payload: it may hold line feeds.
  info: record({ code: anyString, message: fc.oneof(anyString, fc.constant('line one\nline two\n')), node: anyString }),
});
const windowFrame = record({
  type: fc.constant('window' as const),
  // Stream 0: a grant for the whole tunnel (feature connection-window).
  stream: fc.oneof(streamId, fc.constant(0)),
  increment: fc.oneof(fc.integer({ min: 1, max: 0xffff_ffff }), fc.constantFrom(1, 0xffff_ffff)),
});
const trailersFrame = record({
  type: fc.constant('trailers' as const),
  stream: streamId,
  headers: headerList.filter((h) => h.length > 0),
});
const validFrame: fc.Arbitrary<Frame> = fc.oneof(openFrame, responseFrame, dataFrame, endFrame, resetFrame, windowFrame, trailersFrame);

/** A head's lines with one of them replaced by junk (wrong number, missing, extra lines). */
const junkHead = fc.tuple(fc.oneof(openFrame, responseFrame, resetFrame), fc.nat(), wildString)
  .map(([f, at, junk]) => {
    const lines = encodeFrame(f).subarray(HEADER_SIZE).toString('utf8').split('\n');
    lines[at % lines.length] = junk;
    return Buffer.from(lines.join('\n'));
  });

/** A header (any type byte, any id including 0, a length that may lie) and a payload built to reach deep into the decoder. */
const structuredJunk = fc.tuple(
  fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...Object.values(FrameType))),
  fc.oneof(fc.integer({ min: 0, max: MAX_STREAM_ID }), fc.constant(0)),
  fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    fc.array(wildString, { maxLength: 12 }).map((lines) => Buffer.from(lines.join('\n'))),
    junkHead,
    fc.constantFrom('http', 'http\n', '\n\n\n\n\n\n', '200', '99\nx', '1e3\nOK', '0200\nOK', '-1\n', '\n'.repeat(5000))
      .map((s) => Buffer.from(s)),
  ),
  fc.oneof(fc.constant(undefined), fc.nat({ max: 0xffff_ffff })),
).map(([type, stream, payload, length]) => {
  const buf = Buffer.alloc(HEADER_SIZE + payload.length);
  buf[0] = type;
  buf.writeUInt32BE(stream, 1);
  buf.writeUInt32BE(length ?? payload.length, 5);
  payload.copy(buf, HEADER_SIZE);
  return buf;
});

// ---- checks ----

/** decodeFrame's answer: a Frame, or the FrameError it threw. Anything else thrown is a failure. */
function decodeOrFrameError(buf: Buffer): Frame | FrameError {
  const started = performance.now();
  let result: Frame | FrameError;
  try {
    result = decodeFrame(buf);
  } catch (err) {
    if (!(err instanceof FrameError)) {
      throw new Error(`decodeFrame threw ${(err as Error)?.name ?? typeof err} instead of FrameError: ${(err as Error)?.message ?? String(err)}`);
    }
    result = err;
  }
  const ms = performance.now() - started;
  if (ms > SLOW_DECODE_MS) throw new Error(`decoding ${buf.length} bytes took ${ms.toFixed(0)} ms`);
  return result;
}

const isStringList = (v: unknown): boolean => Array.isArray(v) && v.length % 2 === 0 && v.every((s) => typeof s === 'string');
const isInt = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** A decoded frame must be well-formed and agree with the bytes it came from. */
function assertWellFormed(frame: Frame, buf: Buffer): void {
  const typeOf: Record<Frame['type'], number> = {
    open: FrameType.open, response: FrameType.response, data: FrameType.data, end: FrameType.end, reset: FrameType.reset, window: FrameType.window,
    trailers: FrameType.trailers, routes: FrameType.routes,
  };
  assert.equal(typeOf[frame.type], buf[0], 'frame type agrees with byte 0');
  // Stream 0 is the tunnel itself, which only a WINDOW names (feature connection-window).
  assert.ok(isInt(frame.stream, frame.type === 'window' ? 0 : 1, MAX_STREAM_ID), `stream id ${frame.stream} (${frame.type})`);
  assert.equal(frame.stream, buf.readUInt32BE(1));
  switch (frame.type) {
    case 'open': {
      const h = frame.head;
      assert.equal(h.kind, 'http');
      for (const k of ['method', 'url', 'to', 'id'] as const) assert.equal(typeof h[k], 'string', k);
      assert.ok(isStringList(h.headers), 'headers');
      assert.ok(isInt(h.hops, 0, 255), 'hops');
      assert.ok(h.upgrade === undefined || typeof h.upgrade === 'string', 'upgrade');
      break;
    }
    case 'response':
      assert.ok(isInt(frame.head.status, 100, 999), 'status');
      assert.equal(typeof frame.head.statusMessage, 'string');
      assert.ok(isStringList(frame.head.headers), 'headers');
      break;
    case 'data':
      assert.ok(Buffer.isBuffer(frame.data));
      assert.ok(frame.data.equals(buf.subarray(HEADER_SIZE)), 'data is the payload');
      break;
    case 'end':
      assert.equal(buf.length, HEADER_SIZE);
      break;
    case 'reset':
      for (const k of ['code', 'message', 'node'] as const) assert.equal(typeof frame.info[k], 'string', k);
      break;
    case 'window':
      assert.equal(buf.length, HEADER_SIZE + 4);
      assert.ok(isInt(frame.increment, 1, 0xffff_ffff), 'increment');
      break;
    case 'trailers':
      assert.ok(isStringList(frame.headers) && frame.headers.length > 0, 'trailers');
      break;
  }
}

function checkDecode(buf: Buffer): void {
  const result = decodeOrFrameError(buf);
  if (!(result instanceof FrameError)) assertWellFormed(result, buf);
}

/** decodeMessage on any bytes: well-formed frames that tile the message exactly, or a FrameError. */
function checkDecodeMessage(message: Buffer): void {
  let frames: Frame[];
  try {
    frames = decodeMessage(message);
  } catch (err) {
    if (err instanceof FrameError) return;
    throw new Error(`decodeMessage threw ${(err as Error)?.name ?? typeof err} instead of FrameError: ${(err as Error)?.message ?? String(err)}`);
  }
  assert.ok(frames.length > 0, 'a message holds at least one frame');
  let offset = 0;
  for (const frame of frames) {
    const size = HEADER_SIZE + message.readUInt32BE(offset + 5);
    assertWellFormed(frame, message.subarray(offset, offset + size));
    offset += size;
  }
  assert.equal(offset, message.length, 'the frames cover the whole message');
}

// ---- properties (each run in a worker, see below) ----

const PROPERTIES: Record<string, () => void> = {
  'encode/decode round trip of any valid frame': () => fc.assert(fc.property(validFrame, (frame) => {
    assert.deepEqual(decodeFrame(encodeFrame(frame)), frame);
  }), { numRuns: RUNS }),

  'a message of several valid frames decodes to the same frames, in order': () => fc.assert(fc.property(
    fc.array(validFrame, { minLength: 1, maxLength: 8 }), (frames) => {
      assert.deepEqual(decodeMessage(Buffer.concat(frames.map(encodeFrame))), frames);
    },
  ), { numRuns: RUNS }),

  'a head field with a line feed is refused when encoding': () => fc.assert(fc.property(
    fc.oneof(openFrame, responseFrame), fc.string({ maxLength: 8 }), (frame, text) => {
      const bad: Frame = frame.type === 'open'
        ? { ...frame, head: { ...frame.head, headers: [...frame.head.headers, 'X-Bad', `${text}\n`] } }
        : { ...frame, head: { ...frame.head, statusMessage: `\n${text}` } };
      assert.throws(() => encodeFrame(bad), FrameError);
    },
  ), { numRuns: RUNS }),

  'arbitrary bytes decode to a well-formed frame or throw FrameError': () => fc.assert(fc.property(
    fc.uint8Array({ maxLength: 512 }), (bytes) => checkDecode(Buffer.from(bytes)),
  ), { numRuns: RUNS }),

  'structured junk (every type byte, id 0, lying lengths, bad heads) decodes or throws FrameError': () => fc.assert(fc.property(
    structuredJunk, (buf) => checkDecode(buf),
  ), { numRuns: RUNS }),

  'messages of junk and valid frames, cut anywhere, decode or throw FrameError': () => fc.assert(fc.property(
    fc.array(fc.oneof(validFrame.map(encodeFrame), structuredJunk), { minLength: 1, maxLength: 4 }), fc.nat(),
    (parts, cut) => {
      const message = Buffer.concat(parts);
      checkDecodeMessage(message);
      checkDecodeMessage(message.subarray(0, cut % (message.length + 1)));
    },
  ), { numRuns: RUNS }),

  'every truncation of a valid frame decodes or throws FrameError': () => fc.assert(fc.property(
    validFrame, fc.nat(), (frame, cut) => {
      const buf = encodeFrame(frame);
      checkDecode(buf.subarray(0, cut % (buf.length + 1)));
    },
  ), { numRuns: RUNS }),

  'a single-byte mutation of a valid frame decodes or throws FrameError': () => fc.assert(fc.property(
    validFrame, fc.nat(), fc.integer({ min: 0, max: 255 }), (frame, at, byte) => {
      const buf = Buffer.from(encodeFrame(frame));
      buf[at % buf.length] = byte;
      checkDecode(buf);
    },
  ), { numRuns: RUNS }),
};

interface WorkerResult {
  property: string;
  ok: boolean;
  message?: string;
}

if (isMainThread) {
  // One worker runs every property in turn and reports each; a test waits for its report.
  let worker: Worker | undefined;
  const reports = new Map<string, (r: WorkerResult) => void>();
  const failures = new Set<(err: Error) => void>();
  const startWorker = (): void => {
    if (worker) return;
    worker = new Worker(new URL(import.meta.url));
    worker.unref();
    worker.on('message', (r: WorkerResult) => reports.get(r.property)?.(r));
    worker.on('error', (err) => { for (const f of failures) f(err); });
  };
  const names = Object.keys(PROPERTIES);
  const pending = new Map(names.map((name) => [name, new Promise<WorkerResult>((resolve, reject) => {
    reports.set(name, resolve);
    failures.add(reject);
  })]));
  for (const p of pending.values()) p.catch(() => { /* reported by the test that waits for it */ });

  for (const [i, name] of names.entries()) {
    test(`frame codec property: ${name}`, async () => {
      startWorker();
      let timer: NodeJS.Timeout | undefined;
      try {
        const result = await Promise.race([
          pending.get(name)!,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              const hung = new Error(`no result within ${PROPERTY_TIMEOUT_MS} ms: the decoder hangs`);
              for (const f of failures) f(hung); // the properties after it cannot run either
              void worker?.terminate();
              reject(hung);
            }, PROPERTY_TIMEOUT_MS);
          }),
        ]);
        assert.ok(result.ok, result.message);
      } finally {
        clearTimeout(timer);
        if (i === names.length - 1) await worker?.terminate();
      }
    });
  }
} else {
  for (const [property, check] of Object.entries(PROPERTIES)) {
    let result: WorkerResult;
    try {
      check();
      result = { property, ok: true };
    } catch (err) {
      result = { property, ok: false, message: err instanceof Error ? err.message : String(err) };
    }
    parentPort!.postMessage(result);
  }
}
