/**
 * A stream's writer reads nothing more while the tunnel cannot take it: a chunk that left into a
 * full tunnel (or used up the tunnel's credit) has its write callback held until there is room,
 * write() says false even for a small chunk, and 'drain' comes when the room does. So a thousand
 * streams waiting behind one busy tunnel hold no chunk each (1,000 x 1 MiB downloads: the far
 * end held ~60 MiB of such chunks before, and as much in its origin sockets' buffers: see
 * h1-reads.test.ts). Room wakes only as many writers as it can take
 * (expectData), and end() and destroy() never leave a held write behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrame, encodeData, encodeEnd, encodeResponse, type Frame, type ResponseHead } from '../../src/tunnel/frame.js';
import { MAX_DATA_FRAME, TunnelStream, type FrameSink } from '../../src/tunnel/stream.js';

/** A sink whose tunnel fills once `room` DATA bytes are queued, and drains when told. */
class FillingSink implements FrameSink {
  readonly localName = 'node-A';
  readonly frames: Frame[] = [];
  queued = 0;
  expected = 0;
  credit = Infinity;
  private writers: (() => void)[] = [];
  private creditWaiters: (() => void)[] = [];

  constructor(private readonly room: number) {}

  send(frame: Buffer, cb?: (err?: Error | null) => void): void {
    this.frames.push(decodeFrame(frame));
    cb?.(null);
  }
  sendData(stream: number, payload: Buffer, cb?: (err?: Error | null) => void): void {
    this.queued += payload.length;
    this.send(encodeData(stream, payload), cb);
  }
  sendResponse(stream: number, head: ResponseHead): void {
    this.send(encodeResponse(stream, head));
  }
  sendEnd(stream: number, cb?: (err?: Error | null) => void): void {
    this.send(encodeEnd(stream), cb);
  }
  congested(): boolean {
    return this.queued + this.expected >= this.room;
  }
  whenWritable(resume: () => void): void {
    this.writers.push(resume);
  }
  expectData(n: number): number {
    this.expected += n;
    return 0;
  }
  expectDone(n: number): void {
    this.expected = Math.max(0, this.expected - n);
  }
  release(): void { /* nothing kept */ }
  supports(): boolean {
    return false;
  }
  sendCredit(): number {
    return this.credit;
  }
  spendCredit(n: number): void {
    this.credit -= n;
  }
  whenCredit(resume: () => void): void {
    this.creditWaiters.push(resume);
  }
  consumed(): void { /* no tunnel window */ }

  /** The socket took everything: waiting writers go on, in order, while there is room. */
  drain(): void {
    this.queued = 0;
    while (!this.congested()) {
      const w = this.writers.shift();
      if (!w) break;
      w();
    }
  }

  grant(n: number): void {
    this.credit += n;
    for (const w of this.creditWaiters.splice(0)) w();
  }

  dataBytes(): number {
    return this.frames.reduce((n, f) => n + (f.type === 'data' ? f.data.length : 0), 0);
  }

  ends(): number {
    return this.frames.filter((f) => f.type === 'end').length;
  }
}

async function tick(): Promise<void> {
  await new Promise((resolve) => process.nextTick(resolve));
}

function makeStream(sink: FrameSink): TunnelStream {
  return new TunnelStream(sink, 1, { recvWindow: 256 * 1024, sendWindow: 16 * 1024 * 1024 });
}

test('stream hold: a chunk that fills the tunnel leaves at once, but its write waits for room (write() says false, then drain)', () => {
  const sink = new FillingSink(1000);
  const stream = makeStream(sink);
  let done = false;
  let drains = 0;
  stream.on('drain', () => drains++);
  const ok = stream.write(Buffer.alloc(1500, 1), () => { done = true; });
  assert.deepEqual({ ok, sent: sink.dataBytes(), done, held: stream.writableLength }, { ok: false, sent: 1500, done: false, held: 1500 });
  sink.drain();
  assert.deepEqual({ done, drains, held: stream.writableLength }, { done: true, drains: 1, held: 0 });
});

test('stream hold: a chunk into a tunnel with room completes at once, as before', async () => {
  const sink = new FillingSink(1_000_000);
  const stream = makeStream(sink);
  let done = false;
  const ok = stream.write(Buffer.alloc(1500, 1), () => { done = true; });
  await tick();
  assert.deepEqual({ ok, done, held: stream.writableLength }, { ok: true, done: true, held: 0 });
});

test('stream hold: a write that used up the tunnel\'s credit waits for its grant', () => {
  const sink = new FillingSink(1_000_000);
  sink.credit = 1000;
  const stream = makeStream(sink);
  let done = false;
  stream.write(Buffer.alloc(1000, 1), () => { done = true; });
  assert.equal(done, false);
  sink.grant(4096);
  assert.equal(done, true);
});

test('stream hold: room wakes only the writers it can take, the rest in turn (expectData)', async () => {
  const sink = new FillingSink(3 * MAX_DATA_FRAME);
  sink.queued = 3 * MAX_DATA_FRAME; // the tunnel is full already
  const streams = Array.from({ length: 10 }, () => makeStream(sink));
  const done = streams.map(() => false);
  streams.forEach((s, i) => s.write(Buffer.alloc(1000, i), () => { done[i] = true; }));
  await tick();
  assert.equal(done.filter(Boolean).length, 0, 'every chunk left, every writer waits');
  sink.drain();
  await tick();
  // Room for three frames: three writers may read their next chunk, the others still wait.
  assert.deepEqual(done, [true, true, true, false, false, false, false, false, false, false]);
  assert.equal(sink.expected, 3 * MAX_DATA_FRAME);
  // A woken writer's next chunk goes without waiting (its room was kept), and takes its count back.
  sink.queued = 3 * MAX_DATA_FRAME;
  const before = sink.dataBytes();
  streams[0]?.write(Buffer.alloc(10));
  assert.equal(sink.dataBytes(), before + 10);
});

test('stream hold: end() lets a held write go, and END follows without waiting for room', () => {
  const sink = new FillingSink(100);
  const stream = makeStream(sink);
  let done = false;
  stream.write(Buffer.alloc(500, 1), () => { done = true; });
  assert.equal(done, false);
  stream.end();
  assert.equal(done, true);
  return new Promise<void>((resolve) => {
    stream.once('finish', () => {
      assert.equal(sink.ends(), 1);
      resolve();
    });
  });
});

test('stream hold: destroy() fails a held write', async () => {
  const sink = new FillingSink(100);
  const stream = makeStream(sink);
  stream.on('error', () => {});
  const result = new Promise<Error | null | undefined>((resolve) => stream.write(Buffer.alloc(500, 1), resolve));
  stream.destroy();
  const err = await result;
  assert.ok(err instanceof Error, 'the held write failed');
});
