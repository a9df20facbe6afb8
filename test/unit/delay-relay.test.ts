import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { startDelayRelay } from '../helpers/delay-relay.js';

/** An echo server that also half-closes when its client does. */
async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }) };
}

test('delay relay: adds the round trip, keeps every byte in order, carries half-close', async () => {
  const echo = await echoServer();
  const relay = await startDelayRelay({ targetPort: echo.port, rttMs: 100, maxQueued: 1024 * 1024 });
  try {
    const payload = randomBytes(8 * 1024 * 1024);
    const started = performance.now();
    const socket = net.connect({ port: relay.port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let firstByteAt = 0;
    socket.on('data', (c: Buffer) => { if (!firstByteAt) firstByteAt = performance.now(); chunks.push(c); });
    const ended = new Promise<void>((resolve, reject) => { socket.on('end', resolve); socket.on('error', reject); });
    socket.end(payload);
    await ended;
    socket.destroy();
    const echoed = Buffer.concat(chunks);
    assert.equal(echoed.length, payload.length);
    assert.equal(createHash('sha256').update(echoed).digest('hex'), createHash('sha256').update(payload).digest('hex'));
    // Out and back through the relay: two one-way delays of 50 ms before the first echoed byte
    // (the connect's own round trip comes on top).
    assert.ok(firstByteAt - started >= 95, `first echoed byte after ${String(firstByteAt - started)} ms`);
    assert.equal(relay.accepted(), 1);
  } finally {
    await relay.close();
    await echo.close();
  }
});
