/**
 * Pools with an auth hook that answers slowly (west.authHook): the claim rules and the pool's
 * limit must hold for the upgrades that were waiting on the hook. The server judges a claim
 * before it asks the hook; upgrades still waiting when another connection of the name comes in
 * (or when the pool fills) are judged again once the hook answers. Raw `ws` clients from
 * distinct loopback addresses, so each upgrade is its own question to the hook.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { freePort, waitFor } from '../helpers/net.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

interface Held {
  address: string;
  answer: () => void;
}

/** A hook that holds every tunnel question until the test lets it through. */
class HoldingHook {
  readonly held: Held[] = [];
  release: (address: string) => boolean = () => false;
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const q = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { address?: string };
      const answer = (): void => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ allow: true, reason: 'test hook allows' }));
      };
      if (this.release(q.address ?? '')) answer();
      else this.held.push({ address: q.address ?? '', answer });
    });
  });

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  }

  answerAll(match: (address: string) => boolean = () => true): void {
    for (let i = this.held.length - 1; i >= 0; i--) {
      const h = this.held[i];
      if (h && match(h.address)) {
        this.held.splice(i, 1);
        h.answer();
      }
    }
  }

  async close(): Promise<void> {
    this.answerAll();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const hook = new HoldingHook();
const sockets: WebSocket[] = [];
let cleanup = async (): Promise<void> => {};
let hub: WestProcess;
let sp = 0;

/** Dials the hub as `name` from `localAddress`; resolves 'open' or the HTTP status it was refused with. */
function dial(localAddress: string, headers: Record<string, string>): Promise<number | 'open'> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${sp}`, ['west.v3'], { localAddress, headers: { 'X-West-Node': 'hooked-site', ...headers } });
    sockets.push(ws);
    ws.on('open', () => resolve('open'));
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('error', () => resolve(0));
  });
}

before(async () => {
  await hook.listen();
  let dir = '';
  ({ dir, cleanup } = await tempDir('west-pool-hook-'));
  sp = await freePort();
  const config = await writeConfig(dir, 'hub.json', {
    west: { nm: 'hooked-hub', authHook: { url: `http://127.0.0.1:${hook.port}/auth`, timeout: 20 } },
    wsts: { sp: `ws://127.0.0.1:${sp}`, claim: 'refuse' },
  });
  hub = await WestProcess.start(config);
});

after(async () => {
  for (const ws of sockets) ws.terminate();
  await stopAll();
  await hook.close();
  await cleanup();
});

describe('pools behind a slow auth hook', () => {
  test('under "refuse", a rival whose upgrade waited on the hook is refused (409) once the name was taken meanwhile', async () => {
    hook.release = (address) => address === '127.0.0.3';
    try {
      const rival = dial('127.0.0.2', { 'X-West-Pool': `${'b'.repeat(32)} 0/1` });
      await waitFor('the rival to wait on the hook', () => hook.held.some((h) => h.address === '127.0.0.2'), 10_000);
      assert.equal(await dial('127.0.0.3', { 'X-West-Pool': `${'a'.repeat(32)} 0/2` }), 'open', 'the first to be answered takes the name');
      hook.answerAll();
      assert.equal(await rival, 409, 'the rival is judged by wsts.claim "refuse" after the hook, not only before');
    } finally {
      for (const ws of sockets) ws.terminate();
      sockets.length = 0;
    }
    const count = (event: string): number => hub.events.filter((e) => e.event === event).length;
    await waitFor('the name to be free again', () => count('tunnel.client_disconnected') === count('tunnel.client_connected'), 10_000);
  });

  test('a pool takes at most 16 connections, even when more upgrades waited on the hook together', async () => {
    hook.release = () => false;
    const id = 'c'.repeat(32);
    const dials = Array.from({ length: 20 }, (_, i) => dial(`127.0.0.${10 + i}`, { 'X-West-Pool': `${id} ${i % 16}/16` }));
    await waitFor('all 20 upgrades to wait on the hook', () => hook.held.length === 20, 10_000);
    hook.answerAll();
    const results = await Promise.all(dials);
    const opened = results.filter((r) => r === 'open').length;
    assert.equal(opened, 16, `16 connections join, the rest are refused: ${JSON.stringify(results)}`);
    assert.deepEqual(results.filter((r) => r !== 'open'), [409, 409, 409, 409]);
  });
});
