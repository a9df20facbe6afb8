/**
 * The middle node of a chain whose `ou` is its own listener (sample/case4: L performs
 * http://127.0.0.1:<L's port>/ba) hands the request to that listener directly instead of
 * sending it out and back in through its own sockets. These tests check that the shortcut is
 * taken and that it is invisible otherwise: the same checks, headers, logs and failure answers
 * as the HTTP round trip it replaces.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Chain, until200, within } from '../helpers/chain.js';
import { fetchText, waitFor } from '../helpers/net.js';
import { halfUpload } from '../helpers/stream.js';
import { originAndTempDir } from '../helpers/west.js';

const fixture = originAndTempDir('west-relay-');

/** Established TCP connections whose local or remote port is `port` (IPv4 and IPv6, this host). */
async function connectionsOnPort(port: number): Promise<number> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const [, local = '', remote = '', state] = line.trim().split(/\s+/);
      if (state !== '01') continue; // 01 = ESTABLISHED
      if (local.endsWith(`:${hex}`) || remote.endsWith(`:${hex}`)) n++;
    }
  }
  return n;
}

describe('a middle node relays to its own listener without a socket', () => {
  let chain: Chain;
  let lPort: number;

  before(async () => {
    chain = await Chain.launch({ dir: fixture.dir, originPort: fixture.origin.port });
    lPort = Number(new URL(chain.lUrl).port);
    await until200(`${chain.url}/ready/echo`);
  });

  after(async () => {
    await chain?.stopAll();
  });

  test('requests through the chain never connect to the middle node\'s own listener', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await fetchText(`${chain.url}/relay-${i}/echo`);
      assert.equal(r.status, 200, r.text);
    }
    // Through HTTP, L's keep-alive pool would hold a connection to its own listener now.
    assert.equal(await connectionsOnPort(lPort), 0, `connections on L's listener port ${lPort}`);
  });

  test('the origin sees what the HTTP round trip would have sent: Via of both listeners, X-Forwarded-For of both hops, one request id', async () => {
    const r = await fetchText(`${chain.url}/relay-headers/echo`, { headers: { 'X-Request-Id': 'relay-id-1' } });
    assert.equal(r.status, 200, r.text);
    const seen = await waitFor('the origin to see the request', () => fixture.origin.seen.find((s) => s.url.includes('relay-headers')));
    const vias = String(seen.headers.via).split(',').map((v) => v.trim());
    assert.deepEqual(vias.map((v) => v.split(' ')[1]?.split(':')[0]), [chain.names.G, chain.names.L].map((n) => n.replace(/^ws:\/\//, '')));
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1, 127.0.0.1', 'the client, then the loopback hop into L\'s listener');
    assert.equal(seen.headers['x-request-id'], 'relay-id-1');
    assert.equal(seen.headers.host, `127.0.0.1:${fixture.origin.port}`);
    const l = chain.proc('L');
    const access = await l.waitForEvent('access', (e) => e.id === 'relay-id-1');
    assert.equal(access.client, '127.0.0.1', 'L\'s listener logs the loopback client, as over a socket');
    assert.equal(access.status, 200);
    assert.equal(access.mapping, '/ba');
    await l.waitForEvent('perform', (e) => e.id === 'relay-id-1' && e.status === 200);
  });

  test('an origin that answers an upload early (413): no stream is left behind on any node of the chain', async () => {
    const status = await within(8000, 'the 413', halfUpload(`${chain.url}/relay-early/early413`, 8 * 1024 * 1024));
    assert.equal(status, 413);
    await waitFor('no stream in flight on G, L or L2', async () => {
      const states = await Promise.all((['G', 'L', 'L2'] as const).map((n) => chain.state(n)));
      const streams = states.flatMap((st) => [...(st.server?.peers ?? []), ...st.tunnels]).reduce((n, t) => n + t.streams, 0);
      const inFlight = states.flatMap((st) => st.listeners).reduce((n, l) => n + l.inFlight, 0);
      return streams === 0 && inFlight === 0;
    }, 5000);
  });

  test('a failure at the middle node\'s listener is answered as that listener answers it: 503, Proxy-Status naming L, Retry-After', async () => {
    await chain.stop('L2');
    try {
      const r = await waitFor('503 from the chain without L2', async () => {
        const got = await fetchText(`${chain.url}/relay-down/echo`);
        return got.status === 503 ? got : undefined;
      });
      assert.match(String(r.headers['proxy-status']), new RegExp(`^"${chain.names.L}"; error=destination_unavailable`));
      assert.ok(r.headers['retry-after'] !== undefined, 'Retry-After');
      assert.match(r.text, /is not connected/);
      const head = await fetchText(`${chain.url}/relay-down/echo`, { method: 'HEAD' });
      assert.equal(head.status, 503);
      assert.equal(head.text, '', 'no body for HEAD');
      await chain.proc('L').waitForEvent('access', (e) => e.path === '/ba/relay-down/echo' && e.error === 'peer_not_connected');
    } finally {
      await chain.start('L2');
      await until200(`${chain.url}/back/echo`);
    }
  });
});
