/**
 * Slowloris against a proxy listener (issue 11, item 3): connections that send nothing, or
 * drip their head, are answered 408 once `headerTimeout` passes, one address holds no more
 * than `maxConnectionsPerAddress`, and other clients are served all the while.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { at } from '../helpers/at.js';
import { fetchText, waitFor } from '../helpers/net.js';
import { selfTunnelledNode } from '../helpers/west.js';

const CAP = 32;
const ATTACKERS = 250;
/** Linux routes all of 127/8 to loopback: the attacker's address differs from the honest client's. */
const ATTACKER_ADDRESS = '127.0.0.2';

const node = selfTunnelledNode('west-slowloris-', { headerTimeout: 1, maxConnectionsPerAddress: CAP });

interface Attacker {
  socket: net.Socket;
  answer: string;
  closed: boolean;
}

test(`${ATTACKERS} silent and dripping connections from one address: capped, timed out with 408, others served`, async () => {
  const attackers: Attacker[] = [];
  const drips: NodeJS.Timeout[] = [];
  try {
    for (let i = 0; i < ATTACKERS; i++) {
      const socket = net.connect({ port: node.port, host: '127.0.0.1', localAddress: ATTACKER_ADDRESS });
      const a: Attacker = { socket, answer: '', closed: false };
      socket.on('error', () => { /* resets are expected */ });
      socket.setEncoding('latin1').on('data', (c: string) => { a.answer += c; });
      socket.on('close', () => { a.closed = true; });
      attackers.push(a);
      if (i % 2 === 1) {
        // Drips one header line at a time, never finishing the head.
        socket.once('connect', () => socket.write(`GET /o/echo HTTP/1.1\r\nHost: x\r\n`));
        drips.push(setInterval(() => { if (!socket.destroyed) socket.write('X-Drip: 1\r\n'); }, 200));
      }
    }
    // Beyond the cap, connections are closed at once.
    await waitFor(`all but ${CAP} attacker connections closed`, () => attackers.filter((a) => !a.closed).length <= CAP, 5000);
    // An honest client from another address is served while the attacker holds its share.
    const res = await fetchText(`http://127.0.0.1:${node.port}/o/echo`);
    assert.equal(res.status, 200, res.text);
    // The ones held are answered 408 once the header timeout passes.
    await waitFor('every attacker connection closed', () => attackers.every((a) => a.closed), 8000);
    const timedOut = attackers.filter((a) => a.answer.startsWith("HTTP/1.1 408 "));
    assert.ok(timedOut.length > 0 && timedOut.length <= CAP, `${timedOut.length} answered 408`);
    assert.match(at(timedOut, 0).answer, /Proxy-Status: "self"; error=http_request_error/);
  } finally {
    for (const d of drips) clearInterval(d);
    for (const a of attackers) a.socket.destroy();
  }
  // The address's count goes back to zero once the node has seen its side close: the same
  // address is served again.
  await waitFor('the attacker address served again', async () => {
    const again = net.connect({ port: node.port, host: '127.0.0.1', localAddress: ATTACKER_ADDRESS });
    again.on('error', () => { /* refused while the count is still at the cap: try again */ });
    let answer = '';
    again.setEncoding('latin1').on('data', (c: string) => { answer += c; });
    again.write('GET /o/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await once(again, 'close');
    return answer.startsWith("HTTP/1.1 200 ");
  }, 5000);
});
