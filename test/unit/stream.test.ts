import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { at } from '../helpers/at.js';
import { decodeFrame, encodeData, encodeEnd, encodeResponse, type Frame, type ResponseHead } from '../../src/tunnel/frame.js';
import { MAX_DATA_FRAME, MAX_INFORMATIONAL, StreamResetError, TunnelStream, type FrameSink } from '../../src/tunnel/stream.js';

const WAIT_MS = 2000;

/** A FrameSink that records every frame and completes send callbacks a turn later, as a socket does. */
class RecordingSink implements FrameSink {
  readonly localName = 'node-A';
  readonly frames: Frame[] = [];
  readonly released: number[] = [];

  /** Set by a test: the tunnel is full, DATA writers must wait for drain(). */
  full = false;
  private readonly writers: (() => void)[] = [];

  send(frame: Buffer, cb?: (err?: Error | null) => void): void {
    this.frames.push(decodeFrame(frame));
    if (cb) setImmediate(() => cb(null));
  }

  sendData(stream: number, payload: Buffer, cb?: (err?: Error | null) => void): void {
    this.send(encodeData(stream, payload), cb);
  }
  sendResponse(stream: number, head: ResponseHead): void {
    this.send(encodeResponse(stream, head));
  }
  sendEnd(stream: number, cb?: (err?: Error | null) => void): void {
    this.send(encodeEnd(stream), cb);
  }

  congested(): boolean {
    return this.full;
  }

  expectData(): number {
    return 0; // no turn to count it in
  }

  expectDone(): void {
    // nothing counted
  }

  whenWritable(resume: () => void): void {
    this.writers.push(resume);
  }

  /** The tunnel has room again: wakes the waiting writers. */
  drain(): void {
    this.full = false;
    for (const w of this.writers.splice(0)) w();
  }

  release(id: number): void {
    this.released.push(id);
  }

  /** Features the peer announced (none: an older node). */
  features = new Set<string>();

  supports(feature: string): boolean {
    return this.features.has(feature);
  }

  /** No tunnel window here (an older peer's): only the stream's own window paces DATA. */
  sendCredit(): number {
    return Infinity;
  }

  spendCredit(): void { /* unlimited */ }

  whenCredit(resume: () => void): void {
    this.writers.push(resume);
  }

  /** Bytes the stream reported consumed (the tunnel's window would get them back). */
  consumedBytes = 0;

  consumed(n: number): void {
    this.consumedBytes += n;
  }

  of<T extends Frame['type']>(type: T): Extract<Frame, { type: T }>[] {
    return this.frames.filter((f): f is Extract<Frame, { type: T }> => f.type === type);
  }

  dataBytes(): number {
    return this.of('data').reduce((n, f) => n + f.data.length, 0);
  }

  dataConcat(): Buffer {
    return Buffer.concat(this.of('data').map((f) => f.data));
  }

  windowSum(): number {
    return this.of('window').reduce((n, f) => n + f.increment, 0);
  }
}

function makeStream(opts: { sendWindow?: number; recvWindow?: number } = {}): { sink: RecordingSink; stream: TunnelStream } {
  const sink = new RecordingSink();
  const stream = new TunnelStream(sink, 5, { sendWindow: opts.sendWindow ?? 256 * 1024, recvWindow: opts.recvWindow ?? 256 * 1024 });
  return { sink, stream };
}

/** Resolves on the next 'close' (whatever errors came before it); call it in the same tick as the action that closes. */
function closed(stream: TunnelStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('stream never closed')), WAIT_MS);
    stream.once('close', () => { clearTimeout(timer); resolve(); });
  });
}

/** A few event-loop turns: enough for every queued callback of the fake sink to run. */
async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

/** Resolves when `cb`-style write completes; rejects after WAIT_MS. */
function writeAsync(stream: TunnelStream, chunk: Buffer): { done: () => boolean; promise: Promise<void> } {
  let finished = false;
  const promise = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('write callback never ran')), WAIT_MS);
    stream.write(chunk, (err) => {
      clearTimeout(timer);
      finished = true;
      if (err) reject(err); else resolve();
    });
  });
  return { done: () => finished, promise };
}

function pattern(size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + 7) & 0xff;
  return buf;
}

// ---- writable side: flow control on sending ----

const SEND_CASES: { name: string; window: number; size: number }[] = [
  { name: 'window smaller than one frame', window: 1000, size: 2500 },
  { name: 'window of exactly one byte', window: 1, size: 10 },
  { name: 'window spanning several frames', window: 3 * MAX_DATA_FRAME + 17, size: 5 * MAX_DATA_FRAME },
];

for (const c of SEND_CASES) {
  test(`stream send (${c.name}): sends exactly the window of ${c.window} bytes, then waits`, async () => {
    const { sink, stream } = makeStream({ sendWindow: c.window });
    stream.on('error', () => {});
    const w = writeAsync(stream, pattern(c.size));
    await settle();
    assert.deepEqual({ sent: sink.dataBytes(), writeDone: w.done() }, { sent: c.window, writeDone: false });
    stream.destroy();
    await w.promise.catch(() => {});
  });

  test(`stream send (${c.name}): a window grant lets the rest flow, in order`, async () => {
    const { sink, stream } = makeStream({ sendWindow: c.window });
    const body = pattern(c.size);
    const w = writeAsync(stream, body);
    await settle();
    stream.onWindow(c.size - c.window);
    await w.promise;
    assert.ok(sink.dataConcat().equals(body), 'the bytes on the wire differ from the bytes written');
  });
}

test('stream send: grants smaller than the remainder release it piece by piece', async () => {
  const { sink, stream } = makeStream({ sendWindow: 100 });
  const w = writeAsync(stream, pattern(1000));
  await settle();
  const seen: number[] = [sink.dataBytes()];
  for (let i = 0; i < 9; i++) {
    stream.onWindow(100);
    await settle(1);
    seen.push(sink.dataBytes());
  }
  await w.promise;
  assert.deepEqual(seen, [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
});

test('stream send: while the tunnel is congested no DATA is encoded and the write waits; it goes on when the tunnel drains', async () => {
  const { sink, stream } = makeStream({ sendWindow: 10 * MAX_DATA_FRAME });
  const body = pattern(3 * MAX_DATA_FRAME);
  sink.full = true;
  const w = writeAsync(stream, body);
  await settle();
  assert.deepEqual({ sent: sink.dataBytes(), writeDone: w.done() }, { sent: 0, writeDone: false });
  sink.drain();
  await w.promise;
  assert.ok(sink.dataConcat().equals(body), 'every byte, in order, after the drain');
});

test('stream send: a tunnel that fills mid-write stops the write at a frame boundary', async () => {
  const { sink, stream } = makeStream({ sendWindow: 10 * MAX_DATA_FRAME });
  const body = pattern(3 * MAX_DATA_FRAME);
  // The tunnel is full once the first frame is queued.
  const send = sink.send.bind(sink);
  sink.send = (frame, cb) => {
    send(frame, cb);
    sink.full = true;
  };
  const w = writeAsync(stream, body);
  await settle();
  assert.deepEqual({ sent: sink.dataBytes(), writeDone: w.done() }, { sent: MAX_DATA_FRAME, writeDone: false });
  sink.send = send;
  sink.drain();
  await w.promise;
  assert.ok(sink.dataConcat().equals(body));
});

const FRAME_SIZE_CASES: { name: string; size: number }[] = [
  { name: 'one byte over one frame', size: MAX_DATA_FRAME + 1 },
  { name: 'exactly three frames', size: 3 * MAX_DATA_FRAME },
  { name: 'a megabyte', size: 1024 * 1024 + 5 },
];

for (const c of FRAME_SIZE_CASES) {
  test(`stream send (${c.name}): no DATA frame exceeds MAX_DATA_FRAME`, async () => {
    const { sink, stream } = makeStream({ sendWindow: 4 * 1024 * 1024 });
    await writeAsync(stream, pattern(c.size)).promise;
    const sizes = sink.of('data').map((f) => f.data.length);
    assert.deepEqual(
      { total: sizes.reduce((a, b) => a + b, 0), oversized: sizes.filter((n) => n > MAX_DATA_FRAME) },
      { total: c.size, oversized: [] },
    );
  });
}

test('stream send: end() sends END after the data', async () => {
  const { sink, stream } = makeStream();
  stream.end(Buffer.from('hello'));
  await once(stream, 'finish', { signal: AbortSignal.timeout(WAIT_MS) });
  assert.deepEqual(sink.frames.map((f) => f.type), ['data', 'end']);
});

test('stream send: end() waits for the window before END', async () => {
  const { sink, stream } = makeStream({ sendWindow: 3 });
  stream.end(Buffer.from('hello'));
  await settle();
  const before = sink.frames.map((f) => f.type);
  stream.onWindow(2);
  await once(stream, 'finish', { signal: AbortSignal.timeout(WAIT_MS) });
  assert.deepEqual({ before, after: sink.frames.map((f) => f.type) }, { before: ['data'], after: ['data', 'data', 'end'] });
});

// ---- readable side: flow control on receiving ----

test('stream receive: data beyond the receive window resets the stream', async () => {
  const { sink, stream } = makeStream({ recvWindow: 1000 });
  const done = closed(stream);
  let error: unknown;
  stream.on('error', (err) => { error = err; });
  stream.onData(Buffer.alloc(600));
  stream.onData(Buffer.alloc(401));
  await done;
  const resets = sink.of('reset');
  assert.equal(resets.length, 1);
  assert.match(at(resets, 0).info.message, /flow-control window/);
  assert.ok(error instanceof StreamResetError && !error.remote, `expected a local StreamResetError, got ${String(error)}`);
});

test('stream receive: data that exactly fills the window is accepted', async () => {
  const { sink, stream } = makeStream({ recvWindow: 1000 });
  stream.onData(Buffer.alloc(600));
  stream.onData(Buffer.alloc(400));
  await settle();
  assert.deepEqual({ resets: sink.of('reset').length, destroyed: stream.destroyed }, { resets: 0, destroyed: false });
  stream.destroy();
});

test('stream receive: a DATA frame over MAX_DATA_FRAME resets the stream, even inside the window', async () => {
  const { sink, stream } = makeStream({ recvWindow: 4 * MAX_DATA_FRAME });
  const done = closed(stream);
  let error: unknown;
  stream.on('error', (err) => { error = err; });
  stream.onData(Buffer.alloc(MAX_DATA_FRAME));
  stream.onData(Buffer.alloc(MAX_DATA_FRAME + 1));
  await done;
  const resets = sink.of('reset');
  assert.deepEqual(resets.map((r) => r.info.code), ['internal']);
  assert.match(at(resets, 0).info.message, new RegExp(`${MAX_DATA_FRAME + 1} bytes.*at most ${MAX_DATA_FRAME}`));
  assert.ok(error instanceof StreamResetError && !error.remote, `expected a local StreamResetError, got ${String(error)}`);
});

/** A consumer: starts reading the stream and reports how many bytes it has taken so far. */
type Consumer = (s: TunnelStream) => () => number;

const flowing: Consumer = (s) => {
  let n = 0;
  s.on('data', (c: Buffer) => { n += c.length; });
  return () => n;
};

const asyncIterator: Consumer = (s) => {
  let n = 0;
  void (async () => { for await (const c of s) n += (c as Buffer).length; })().catch(() => {});
  return () => n;
};

const readableEvent: Consumer = (s) => {
  let n = 0;
  s.on('readable', () => { let c: Buffer | null; while ((c = s.read()) !== null) n += c.length; });
  return () => n;
};

/** pipe() into a writable that completes each write a turn later, as a slow socket would. */
const pipedSlowly: Consumer = (s) => {
  let n = 0;
  s.pipe(new Writable({
    highWaterMark: 512,
    write(chunk: Buffer, _enc, cb) { n += chunk.length; setImmediate(cb); },
  }));
  return () => n;
};

/**
 * Each case: the peer sends `total` bytes in `piece`-sized DATA frames, only within the window
 * the stream has granted so far; once the consumer has drained everything, the grants must sum
 * to the bytes it consumed (otherwise a peer with more to send could be left waiting).
 */
const READ_CASES: { name: string; window: number; total: number; piece: number; consumer: Consumer }[] = [
  { name: 'flowing consumer, one window', window: 4096, total: 4096, piece: 100, consumer: flowing },
  { name: 'flowing consumer, many windows', window: 4096, total: 64 * 1024, piece: 1000, consumer: flowing },
  { name: 'async iterator, one window', window: 8192, total: 8192, piece: 3000, consumer: asyncIterator },
  { name: 'async iterator, many windows', window: 8192, total: 100_000, piece: 3000, consumer: asyncIterator },
  { name: "'readable' + read(), one window", window: 2048, total: 2048, piece: 512, consumer: readableEvent },
  { name: "'readable' + read(), many windows", window: 2048, total: 20_000, piece: 512, consumer: readableEvent },
  { name: 'pipe into a slow writable, one window', window: 4096, total: 4096, piece: 1024, consumer: pipedSlowly },
  { name: 'pipe into a slow writable, many windows', window: 4096, total: 64 * 1024, piece: 1024, consumer: pipedSlowly },
];

for (const c of READ_CASES) {
  // Grants are batched (at least a quarter window each), so up to a quarter window may stay
  // ungranted once the consumer has drained everything; the peer is never left without window.
  test(`stream receive (${c.name}): the peer gets its window back as the consumer reads`, async () => {
    const { sink, stream } = makeStream({ recvWindow: c.window });
    const consumed = c.consumer(stream);
    let sent = 0;
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const allowed = c.window - (sent - sink.windowSum());
      if (sent < c.total && allowed > 0) {
        const n = Math.min(c.piece, allowed, c.total - sent);
        stream.onData(pattern(n));
        sent += n;
        continue;
      }
      if (sent === c.total && consumed() === c.total && c.total - sink.windowSum() < c.window / 4) break;
      await settle(1);
    }
    const granted = sink.windowSum();
    const result = { sent, consumed: consumed(), ungrantedBelowQuarterWindow: c.total - granted >= 0 && c.total - granted < c.window / 4 };
    stream.destroy();
    assert.deepEqual(result, { sent: c.total, consumed: c.total, ungrantedBelowQuarterWindow: true });
  });
}

test('stream receive: a consumer that starts after the window filled grants it all back', async () => {
  const { sink, stream } = makeStream({ recvWindow: 4096 });
  for (let i = 0; i < 16; i++) stream.onData(pattern(256));
  await settle();
  const before = sink.windowSum();
  let n = 0;
  stream.on('data', (c: Buffer) => { n += c.length; });
  const deadline = Date.now() + WAIT_MS;
  while (sink.windowSum() < 4096 && Date.now() < deadline) await settle(1);
  const result = { before, consumed: n, granted: sink.windowSum() };
  stream.destroy();
  assert.deepEqual(result, { before: 0, consumed: 4096, granted: 4096 });
});

test('stream receive: WINDOW grants are never sent before the consumer reads', async () => {
  const { sink, stream } = makeStream({ recvWindow: 4096 });
  for (let i = 0; i < 16; i++) stream.onData(pattern(256));
  await settle();
  const granted = sink.windowSum();
  stream.destroy();
  assert.equal(granted, 0);
});

// ---- resets and finishing ----

test('stream: destroy() before completion sends one RESET with code "cancel"', async () => {
  const { sink, stream } = makeStream();
  stream.write(Buffer.from('partial'));
  stream.destroy();
  stream.destroy();
  await closed(stream);
  assert.deepEqual(sink.of('reset').map((f) => ({ stream: f.stream, code: f.info.code, node: f.info.node })), [{ stream: 5, code: 'cancel', node: 'node-A' }]);
});

test('stream: destroy(err) carries the error message in the RESET', async () => {
  const { sink, stream } = makeStream();
  stream.on('error', () => {});
  stream.destroy(new Error('client hung up'));
  await closed(stream);
  assert.deepEqual(sink.of('reset').map((f) => f.info), [{ code: 'cancel', message: 'client hung up', node: 'node-A' }]);
});

test('stream: destroy() releases the stream id', async () => {
  const { sink, stream } = makeStream();
  stream.destroy();
  await closed(stream);
  assert.deepEqual(sink.released, [5]);
});

test('stream: destroy() fails a write waiting for window', async () => {
  const { stream } = makeStream({ sendWindow: 10 });
  const w = writeAsync(stream, pattern(100));
  await settle();
  stream.destroy();
  await assert.rejects(w.promise);
});

test('stream: reset(code, message) sends that RESET once and fails locally', async () => {
  const { sink, stream } = makeStream();
  let error: unknown;
  stream.on('error', (err) => { error = err; });
  stream.reset('origin_timeout', 'origin did not answer');
  stream.reset('origin_timeout', 'again');
  await closed(stream);
  assert.deepEqual(
    { resets: sink.of('reset').map((f) => f.info), remote: error instanceof StreamResetError ? error.remote : 'not a StreamResetError' },
    { resets: [{ code: 'origin_timeout', message: 'origin did not answer', node: 'node-A' }], remote: false },
  );
});

test('stream: a RESET from the peer destroys with StreamResetError and sends no RESET back', async () => {
  const { sink, stream } = makeStream();
  let error: unknown;
  stream.on('error', (err) => { error = err; });
  const info = { code: 'origin_refused', message: 'connect ECONNREFUSED', node: 'node-B' };
  stream.onReset(info);
  await closed(stream);
  assert.deepEqual(
    {
      isReset: error instanceof StreamResetError,
      info: error instanceof StreamResetError ? error.info : undefined,
      remote: error instanceof StreamResetError ? error.remote : undefined,
      resetsSent: sink.of('reset').length,
      released: sink.released,
    },
    { isReset: true, info, remote: true, resetsSent: 0, released: [5] },
  );
});

test('stream: a RESET from the peer fails a write waiting for window', async () => {
  const { sink, stream } = makeStream({ sendWindow: 10 });
  stream.on('error', () => {});
  const w = writeAsync(stream, pattern(100));
  await settle();
  stream.onReset({ code: 'cancel', message: 'gone', node: 'node-B' });
  await assert.rejects(w.promise);
  assert.equal(sink.of('reset').length, 0);
});

test('stream: onTunnelClosed fails the stream without sending anything', async () => {
  const { sink, stream } = makeStream();
  let error: unknown;
  stream.on('error', (err) => { error = err; });
  stream.onTunnelClosed({ code: 'tunnel_lost', message: 'tunnel closed', node: 'node-A' });
  await closed(stream);
  assert.deepEqual(
    { code: error instanceof StreamResetError ? error.info.code : String(error), frames: sink.frames.length },
    { code: 'tunnel_lost', frames: 0 },
  );
});

test('stream: a clean finish (END both ways) sends no RESET and releases the id', async () => {
  const { sink, stream } = makeStream();
  const done = closed(stream);
  let received = '';
  stream.setEncoding('utf8').on('data', (c: string) => { received += c; });
  stream.onData(Buffer.from('request body'));
  stream.onEnd();
  stream.end(Buffer.from('response body'));
  await done;
  assert.deepEqual(
    { received, types: sink.frames.map((f) => f.type).filter((t) => t !== 'window'), released: sink.released },
    { received: 'request body', types: ['data', 'end'], released: [5] },
  );
});

test('stream: a clean finish in the other order (our END first) sends no RESET', async () => {
  const { sink, stream } = makeStream();
  const done = closed(stream);
  stream.resume();
  stream.end(Buffer.from('x'));
  await once(stream, 'finish', { signal: AbortSignal.timeout(WAIT_MS) });
  stream.onEnd();
  await done;
  assert.deepEqual({ resets: sink.of('reset').length, released: sink.released }, { resets: 0, released: [5] });
});

test('stream: respond() sends the RESPONSE head', () => {
  const { sink, stream } = makeStream();
  stream.respond({ status: 201, statusMessage: 'Created', headers: ['Location', '/x'] });
  assert.deepEqual(sink.frames, [{ type: 'response', stream: 5, head: { status: 201, statusMessage: 'Created', headers: ['Location', '/x'] } }]);
  stream.destroy();
});

test('stream: a status outside 100..999 is never sent (its frame would close the tunnel at the peer): respond() resets, inform() drops', () => {
  for (const status of [0, 99, 1000, 200.5]) {
    const { sink, stream } = makeStream();
    stream.on('error', () => {});
    stream.inform({ status, statusMessage: 'odd', headers: [] });
    stream.respond({ status, statusMessage: 'odd', headers: [] });
    assert.deepEqual(sink.frames.map((f) => f.type), ['reset'], `status ${status}`);
    const reset = sink.frames[0];
    assert.ok(reset?.type === 'reset' && reset.info.code === 'origin_error', `status ${status}: ${JSON.stringify(reset)}`);
    assert.equal(stream.destroyed, true);
  }
});

test('stream: inform() passes MAX_INFORMATIONAL 1xx heads, and drops the rest (no window holds them back)', () => {
  const { sink, stream } = makeStream();
  sink.features.add('informational');
  for (let i = 0; i < 3 * MAX_INFORMATIONAL; i++) stream.inform({ status: 103, statusMessage: 'Early Hints', headers: [] });
  stream.respond({ status: 200, statusMessage: 'OK', headers: [] });
  assert.equal(sink.frames.filter((f) => f.type === 'response').length, MAX_INFORMATIONAL + 1);
  stream.destroy();
});

test('stream: onResponse stores the head and emits "response"', async () => {
  const { stream } = makeStream();
  const head = { status: 204, statusMessage: 'No Content', headers: [] };
  const emitted = once(stream, 'response', { signal: AbortSignal.timeout(WAIT_MS) });
  stream.onResponse(head);
  const [got] = await emitted;
  assert.deepEqual({ got, stored: stream.response }, { got: head, stored: head });
  stream.destroy();
});

test('stream: data after the peer END is ignored', async () => {
  const { stream } = makeStream();
  const chunks: string[] = [];
  stream.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
  stream.onData(Buffer.from('a'));
  stream.onEnd();
  await once(stream, 'end', { signal: AbortSignal.timeout(WAIT_MS) });
  stream.onData(Buffer.from('b'));
  assert.deepEqual(chunks, ['a']);
  stream.destroy();
});
