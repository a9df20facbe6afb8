/**
 * A TCP stream whose RESET comes in the same turn as its RESPONSE (both frames in one read of
 * the tunnel: the far end connected, then its origin reset the connection at once). The
 * opener's promise resolves with a stream that is already destroyed: that must not be an
 * uncaught 'error' (a crashed node), and whoever takes the stream must let go of its client
 * (the `tcp://` listener's socket, a remote-access WebSocket) instead of holding it forever.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import WebSocket from 'ws';
import { AccessGateway } from '../../src/access/gateway.js';
import { SessionKeys } from '../../src/access/keys.js';
import { Rendezvous } from '../../src/access/rendezvous.js';
import { DEFAULT_ACCESS, DEFAULT_TUNING, type TcpListenerConfig } from '../../src/config/types.js';
import type { TcpRecord } from '../../src/events.js';
import { Logger } from '../../src/log.js';
import { pump } from '../../src/pipe.js';
import { openTcpStream } from '../../src/proxy/near/tcp-open.js';
import { TcpListener } from '../../src/proxy/near/tcp-listener.js';
import { decodeFrame, encodeData, encodeEnd, encodeResponse, type Frame, type ResponseHead } from '../../src/tunnel/frame.js';
import { TunnelStream, type FrameSink } from '../../src/tunnel/stream.js';
import { waitFor } from '../helpers/net.js';

class Sink implements FrameSink {
  readonly localName = 'near';
  readonly frames: Frame[] = [];
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
  congested(): boolean { return false; }
  expectData(): number {
    return 0; // no turn to count it in
  }

  expectDone(): void {
    // nothing counted
  }

  whenWritable(resume: () => void): void { setImmediate(resume); }
  release(): void { /* nothing kept */ }
  supports(): boolean { return true; }
  sendCredit(): number { return Infinity; }
  spendCredit(): void { /* unlimited */ }
  whenCredit(resume: () => void): void { setImmediate(resume); }
  consumed(): void { /* no tunnel window */ }
}

/** An opener whose stream gets RESPONSE 200 and then a RESET, synchronously, as one read of the tunnel would deliver them. */
function respondThenReset(): { peerName: string; openStream: () => TunnelStream } {
  return {
    peerName: 'far',
    openStream: () => {
      const stream = new TunnelStream(new Sink(), 1, { recvWindow: 65_536, sendWindow: 65_536 });
      setImmediate(() => {
        stream.onResponse({ status: 200, statusMessage: 'Connected', headers: [] });
        stream.onReset({ code: 'origin_reset', node: 'far', message: 'origin 127.0.0.1:7 reset the connection' });
      });
      return stream;
    },
  };
}

const quiet = (): Logger => new Logger({ level: 'error', format: 'json', write: () => {} });

test('openTcpStream: a RESET in the same turn as the RESPONSE is no uncaught error; the stream comes back destroyed', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => { uncaught.push(err); };
  process.on('uncaughtException', onUncaught);
  try {
    const stream = await openTcpStream(respondThenReset(), '127.0.0.1:7', { nodeName: 'near', timeoutMs: 2000 });
    await new Promise((r) => setImmediate(r));
    assert.equal(stream.destroyed, true);
    assert.deepEqual(uncaught, []);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});

test('tcp:// listener: a stream reset as it was handed over closes the client connection and is recorded as a reset', async () => {
  const records: TcpRecord[] = [];
  const config: TcpListenerConfig = {
    key: 'tcp://127.0.0.1:0', host: '127.0.0.1', port: 0, target: { kind: 'en', name: 'far' }, to: { host: '127.0.0.1', port: 7 }, allow: [],
  };
  const opener = respondThenReset();
  const listener = new TcpListener({
    config, nodeName: 'near', tuning: DEFAULT_TUNING, log: quiet(),
    open: (_c, _id) => openTcpStream(opener, config.to, { nodeName: 'near', timeoutMs: 2000 }),
    onRecord: (r) => records.push(r),
  });
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => { uncaught.push(err); };
  process.on('uncaughtException', onUncaught);
  await listener.listen();
  const client = net.connect(listener.port, '127.0.0.1');
  client.on('error', () => {});
  let clientClosed = false;
  client.once('close', () => { clientClosed = true; });
  try {
    await waitFor('the client connection to be closed', () => clientClosed, 3000, 10);
    await waitFor('the tcp.access record', () => records.length === 1, 3000, 10);
    assert.equal(records[0]?.outcome, 'reset');
    assert.equal(listener.stats.open, 0);
    assert.deepEqual(uncaught, []);
  } finally {
    process.off('uncaughtException', onUncaught);
    client.destroy();
    await listener.close();
  }
});

test('remote access: a stream reset as it was handed over is a refusal (502), not a WebSocket left open with nothing behind it', async () => {
  const log = quiet();
  const keys = new SessionKeys();
  const opener = respondThenReset();
  const gateway = new AccessGateway({
    nodeName: 'near', keys, log,
    rendezvous: new Rendezvous(keys, { ...DEFAULT_ACCESS, highWater: 65_536 }, log),
    config: () => ({ ...DEFAULT_ACCESS, remoteAccess: ['L'], rendezvous: [] }),
    tuning: () => DEFAULT_TUNING,
    hook: () => undefined,
    openRemote: (binding) => openTcpStream(opener, binding.target, { nodeName: 'near', timeoutMs: 2000 }),
  });
  const server = http.createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket, head) => { if (!gateway.handleUpgrade('L', req, socket, head)) socket.destroy(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issued = keys.issue({ kind: 'remote-access', to: 'far', target: '127.0.0.1:7' }, 10_000);
  assert.ok(issued);
  const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/remoteaccess/${issued.key}`);
  try {
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('still open after 3 s'), 3000);
      ws.once('unexpected-response', (_req, res) => { clearTimeout(timer); resolve(`refused ${res.statusCode}`); res.resume(); });
      ws.once('open', () => ws.once('close', () => { clearTimeout(timer); resolve('opened, then closed'); }));
      ws.once('error', () => {});
    });
    assert.match(outcome, /^refused 502$|^opened, then closed$/);
  } finally {
    ws.terminate();
    gateway.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('west pipe: a stream reset as it was handed over ends the pipe with the reason, instead of waiting forever', async () => {
  const stream = await openTcpStream(respondThenReset(), '127.0.0.1:7', { nodeName: 'near', timeoutMs: 2000 });
  const stdin = new PassThrough();
  const outcome = await Promise.race([
    pump(stream, { stdin, stdout: new PassThrough(), stderr: new PassThrough() }),
    new Promise<string>((r) => setTimeout(() => r('no end after 3 s'), 3000).unref()),
  ]);
  stdin.destroy();
  assert.match(outcome ?? '', /^the connection was reset: .*reset the connection/);
});
