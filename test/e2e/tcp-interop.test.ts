/**
 * TCP streams and peers that cannot carry them: a peer of the previous release (it did not
 * announce the `tcp` feature) is never sent a tcp OPEN, which would close its whole tunnel.
 * A listener whose target is such a peer closes the client's connection and logs why; a relay
 * whose next hop is such a peer answers RESET `unsupported`; and HTTP to it keeps working.
 *
 *   client -> hub [tcp://, http://] ==> old            client -> L [tcp://] ==> hub ==> old
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Mesh } from '../helpers/mesh.js';
import { fetchText } from '../helpers/net.js';
import { dialAsOldPeer, type OldPeer } from '../helpers/old-peer.js';
import { expectedReply, tcpExchange, tcpListenerAddress, tcpOrigin, type TcpOrigin } from '../helpers/tcp.js';
import { originAndTempDir } from '../helpers/west.js';

const fixture = originAndTempDir('west-tcp-interop-');

describe('a peer without the tcp feature', () => {
  let mesh: Mesh;
  let old: OldPeer;

  before(async () => {
    mesh = await Mesh.launch(fixture.dir, [
      {
        name: 'hub', server: true, west: { transit: { L: ['old'] } },
        proxy: {
          'tcp://127.0.0.1:0': { en: 'old', to: '127.0.0.1:22' },
          'http://127.0.0.1:0': { en: 'old', '/o': { ou: `http://127.0.0.1:${fixture.origin.port}/` } },
        },
      },
      { name: 'L', dials: ['hub'], proxy: { 'tcp://127.0.0.1:0': { en: 'old', to: '127.0.0.1:22' } } },
    ]);
    old = await dialAsOldPeer(mesh.serverUrl('hub'), 'old');
    await mesh.route('L', 'old');
  });

  after(async () => {
    old?.close();
    await mesh?.stopAll();
  });

  test('a listener whose target is it closes the connection and logs the reason; no tcp OPEN is sent', async () => {
    const { host, port } = await tcpListenerAddress(mesh.proc('hub'), 'tcp://127.0.0.1:0');
    const r = await tcpExchange({ host, port }, 'x', { keepOpen: true });
    assert.equal(r.data.length, 0);
    const rec = await mesh.proc('hub').waitForEvent('tcp.access', (e) => e.target === 'old');
    assert.equal(rec.outcome, 'refused');
    assert.equal(rec.error, 'unsupported');
    assert.match(String(rec.reason), /did not announce the "tcp" feature/);
    assert.equal(old.tcpOpens, 0);
    assert.equal(old.session.closed, false);
  });

  test('a relay whose next hop is it answers RESET unsupported, naming itself', async () => {
    const { host, port } = await tcpListenerAddress(mesh.proc('L'), 'tcp://127.0.0.1:0');
    const r = await tcpExchange({ host, port }, 'x', { keepOpen: true });
    assert.equal(r.data.length, 0);
    const rec = await mesh.proc('L').waitForEvent('tcp.access', (e) => e.target === 'old');
    assert.equal(rec.error, 'unsupported');
    assert.equal(rec.at, 'hub');
    assert.equal(old.tcpOpens, 0);
    assert.equal(old.session.closed, false);
  });

  test('HTTP to it keeps working', async () => {
    const r = await fetchText(`${mesh.proc('hub').listenerUrl()}/o/echo`, { method: 'POST', body: 'still here' });
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.text) as { bodyBytes: number }).bodyBytes, 10);
  });
});

describe('a node of this release held to west.v2 (west.wire: 2) still carries TCP: the feature, not the wire version, decides', () => {
  let mesh: Mesh;
  let answer: TcpOrigin;

  before(async () => {
    answer = await tcpOrigin('answer-after-eof');
    mesh = await Mesh.launch(fixture.dir, [
      { name: 'v2hub', server: true, west: { wire: 2, egress: { site: [`tcp://127.0.0.1:${answer.port}`] } } },
      { name: 'site', dials: ['v2hub'], proxy: { 'tcp://127.0.0.1:0': { en: 'v2hub', to: `127.0.0.1:${answer.port}` } } },
    ]);
    await mesh.proc('site').waitForEvent('tunnel.connected', (e) => e.wire === 'west.v2');
  });

  after(async () => {
    await mesh?.stopAll();
    await answer?.close();
  });

  test('a tcp stream over a west.v2 tunnel, with half-close', async () => {
    const { host, port } = await tcpListenerAddress(mesh.proc('site'), 'tcp://127.0.0.1:0');
    const r = await tcpExchange({ host, port }, 'over v2');
    assert.equal(r.data.toString(), expectedReply('over v2'));
  });
});
