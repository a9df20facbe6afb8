/**
 * The far end's origin connections read with `onread` (src/proxy/far/h1/reads.ts): a paused
 * connection reads nothing more (Node's own reading takes one more read into the socket's
 * buffer first: 64 KiB per waiting stream), the bytes that come with a head are copied out of
 * the buffer all connections share, and the body comes through whole whatever the pauses.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OriginConnection, type ResponseSink } from '../../src/proxy/far/h1/connection.js';
import { HEAD_READ_BYTES } from '../../src/proxy/far/h1/reads.js';

const SIZE = 1024 * 1024;
const BODY = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i++) BODY[i] = i % 251;

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Length': SIZE });
  res.end(BODY);
});
const ready = new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Event-loop turns, each with its poll phase: where a socket's reads would land. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface Download {
  conn: OriginConnection;
  pieces: Buffer[];
  complete: Promise<void>;
}

function download(port: number, opts: { onBody?: (conn: OriginConnection, piece: Buffer) => void }): Download {
  const conn = OriginConnection.connect({ host: '127.0.0.1', port }, `127.0.0.1:${port}`);
  const pieces: Buffer[] = [];
  const complete = new Promise<void>((resolve, reject) => {
    const sink: ResponseSink = {
      onInform: () => {},
      onHead: () => false,
      onBody: (piece) => {
        pieces.push(piece);
        opts.onBody?.(conn, piece);
      },
      onComplete: () => resolve(),
      onError: (err) => reject(new Error(err.message)),
      onDrain: () => {},
    };
    conn.attach(sink);
    conn.socket.once('connect', () => conn.socket.write('GET / HTTP/1.1\r\nHost: origin\r\n\r\n', 'latin1'));
  });
  return { conn, pieces, complete };
}

test('h1 reads: a paused origin connection reads nothing more until it resumes, and the body comes through whole', async () => {
  const port = await ready;
  let pausedAt = -1;
  const d = download(port, {
    onBody: (conn) => {
      if (pausedAt >= 0) return;
      conn.socket.pause();
      pausedAt = conn.socket.bytesRead;
    },
  });
  await turns(1);
  const { conn } = d;
  await new Promise<void>((resolve) => { const check = (): void => { if (pausedAt >= 0) resolve(); else setImmediate(check); }; check(); });
  // The origin has written its whole answer into the kernel by now; a socket that kept reading
  // would have taken more of it in these turns.
  await turns(20);
  assert.equal(conn.socket.bytesRead, pausedAt, 'no byte read while paused');
  assert.equal(d.pieces.length, 1);
  conn.socket.resume();
  await d.complete;
  assert.ok(Buffer.concat(d.pieces).equals(BODY), 'the body arrived whole and in order');
  conn.destroy();
});

test('h1 reads: the body bytes that come with the head are copied out of the shared head buffer, no more than it holds', async () => {
  const port = await ready;
  const d = download(port, {});
  await d.complete;
  const first = d.pieces[0];
  assert.ok(first && first.length < HEAD_READ_BYTES, 'the head read is a small one');
  assert.equal(first.buffer.byteLength === HEAD_READ_BYTES, false, 'copied: the shared buffer takes the next head');
  assert.ok(Buffer.concat(d.pieces).equals(BODY), 'the body arrived whole and in order');
  d.conn.destroy();
});
