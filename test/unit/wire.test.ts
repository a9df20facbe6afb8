/**
 * wire.ts: a header and an uncopied payload leave as one WebSocket binary message, from the
 * side that masks (the dialer) and the side that does not, for every length encoding
 * (7-bit, 16-bit and 64-bit), whole or in pieces, and across a turn that writes several of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RawData } from 'ws';
import { pair, pattern, within } from '../helpers/session-pair.js';
import { sendParts } from '../../src/tunnel/wire.js';

const SIZES = [0, 100, 116, 117, 1000, 0xffff - 9, 0xffff - 8, 64 * 1024, 64 * 1024 + 1000];

for (const side of ['client', 'server'] as const) {
  test(`wire: the ${side} (${side === 'client' ? 'masked' : 'unmasked'}) sends header + payload as one message, whatever the length`, async () => {
    const p = await pair(64 * 1024, [], {});
    try {
      const [from, to] = side === 'client' ? [p.clientWs, p.serverWs] : [p.serverWs, p.clientWs];
      to.removeAllListeners('message');
      const got: Buffer[] = [];
      const all = within(new Promise<void>((resolve) => {
        to.on('message', (data: RawData) => {
          got.push(data as Buffer);
          if (got.length === SIZES.length) resolve();
        });
      }), 'every message');
      const sent = SIZES.map((n, i) => ({ head: Buffer.from(`head-${i}-`), body: pattern(n, i) }));
      // Every other payload in pieces (a relayed frame as socket reads cut it), the last one's callback awaited.
      const pieces = (b: Buffer): Buffer[] => [b.subarray(0, b.length / 3), b.subarray(b.length / 3, b.length / 2), b.subarray(b.length / 2)];
      let called = 0;
      sent.forEach((m, i) => sendParts(from, side === 'client', m.head, i % 2 === 1 ? pieces(m.body) : m.body, () => { called++; }));
      await all;
      assert.equal(called, SIZES.length, 'each message\'s callback, once');
      assert.deepEqual(got.map((b) => b.length), sent.map((m) => m.head.length + m.body.length));
      got.forEach((b, i) => {
        const m = sent[i];
        assert.ok(m && b.equals(Buffer.concat([m.head, m.body])), `message ${i} arrived as sent`);
      });
      // The payloads themselves were not touched (masking works on a copy).
      sent.forEach((m, i) => assert.ok(m.body.equals(pattern(SIZES[i] ?? 0, i))));
    } finally {
      await p.close();
    }
  });
}
