/**
 * What a tunnel client can make a node do with TCP streams: nothing outside the far end's
 * `west.egress`. A raw client writes its own tcp OPENs to the hub: its control port, its
 * tunnel server, 127.0.0.1:22, odd spellings of an address (hostnames, IPv6, port 0, huge
 * ports, whitespace, paths) are refused with a RESET (and logged), the tunnel stays up, and
 * only the one address its egress names connects. A node without `west.egress` (an open relay
 * for HTTP, as the original was) opens no TCP at all. Many connections: a listener's
 * per-address cap and a tunnel's maxStreams apply to TCP streams too.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import WebSocket from 'ws';
import { decodeMessage, encodeOpen, type Frame } from '../../src/tunnel/frame.js';
import { Mesh } from '../helpers/mesh.js';
import { waitFor } from '../helpers/net.js';
import { tcpExchange, tcpListenerAddress, tcpOrigin, type TcpOrigin } from '../helpers/tcp.js';
import { tempDir } from '../helpers/west.js';

/** A tunnel client that writes its own frames (announcing `tcp`), and what came back per stream. */
class RawClient {
  readonly frames = new Map<number, Frame[]>();
  closed: number | undefined;
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      for (const f of decodeMessage(data, 3)) {
        if (f.stream === 0) continue;
        this.frames.set(f.stream, [...(this.frames.get(f.stream) ?? []), f]);
      }
    });
    ws.on('close', (code) => { this.closed = code; });
  }

  static async dial(url: string, name: string): Promise<RawClient> {
    const ws = new WebSocket(url, ['west.v3'], { headers: { 'X-West-Node': name, 'X-West-Features': 'tcp' }, perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    return new RawClient(ws);
  }

  /** Opens a tcp stream to `url` (as written) and waits for its first answer: RESPONSE or RESET. */
  async open(url: string): Promise<Frame> {
    const id = this.nextId;
    this.nextId += 2;
    this.ws.send(encodeOpen(id, { kind: 'tcp', method: 'CONNECT', url, headers: [], hops: 1, to: '', id: `raw-${id}` }, 3));
    return waitFor(`an answer to the OPEN of ${url}`, () => this.frames.get(id)?.find((f) => f.type === 'response' || f.type === 'reset'));
  }
}

const codeOf = (f: Frame): string => (f.type === 'reset' ? f.info.code : f.type === 'response' ? String(f.head.status) : f.type);

describe('tcp streams against hostile clients', () => {
  let mesh: Mesh;
  let echo: TcpOrigin;
  let evil: RawClient;
  let cleanup: () => Promise<void> = async () => {};

  before(async () => {
    echo = await tcpOrigin('echo');
    const t = await tempDir('west-tcp-hostile-');
    cleanup = t.cleanup;
    mesh = await Mesh.launch(t.dir, [
      { name: 'hub', server: true, west: { egress: { evil: [`tcp://127.0.0.1:${echo.port}`], site: [`tcp://127.0.0.1:${echo.port}`] }, maxStreams: 3 } },
      { name: 'open', server: true },
      {
        name: 'site', dials: ['hub'], west: { maxConnectionsPerAddress: 2 },
        proxy: { 'tcp://127.0.0.1:0': { en: 'hub', to: `127.0.0.1:${echo.port}` } },
      },
    ]);
    evil = await RawClient.dial(mesh.serverUrl('hub'), 'evil');
  });

  after(async () => {
    evil?.ws.terminate();
    await mesh?.stopAll();
    await echo?.close();
    await cleanup();
  });

  test('the hub\'s own ports and 127.0.0.1:22 are refused (egress_denied) and logged', async () => {
    const hub = mesh.proc('hub');
    const cp = hub.bound().control ?? 0;
    for (const url of ['tcp://127.0.0.1:22', `tcp://127.0.0.1:${cp}`, `tcp://127.0.0.1:${hub.serverPort()}`, `tcp://localhost:${echo.port}`, `tcp://[::1]:${echo.port}`]) {
      assert.equal(codeOf(await evil.open(url)), 'egress_denied', url);
      await hub.waitForEvent('outgoing.egress_denied', (e) => e.url === url && e.peer === 'evil');
    }
    assert.equal(evil.closed, undefined, 'the tunnel stays up');
  });

  test('odd spellings of an address are refused as bad_request, never connected', async () => {
    const p = echo.port;
    const odd = [
      'tcp://127.0.0.1:0', 'tcp://127.0.0.1:70000', 'tcp://127.0.0.1:99999999', `tcp://127.0.0.1: ${p}`, `tcp://127.0.0.1:${p} `,
      `tcp:// 127.0.0.1:${p}`, `tcp://127.0.0.1:0${p}`, `tcp://127.0.0.1:${p}/x`, `tcp://user@127.0.0.1:${p}`, `http://127.0.0.1:${p}`,
      `tcp://127.0.0.1`, `tcp://:${p}`, `tcp://::1:${p}`, `tcp://[::1:${p}`, `tcp://127.0.0.1:${p}?q`, 'tcp://a b:22', `tcp://127.0.0.1:+${p}`,
    ];
    for (const url of odd) assert.equal(codeOf(await evil.open(url)), 'bad_request', url);
    assert.equal(evil.closed, undefined, 'the tunnel stays up');
  });

  test('the one address its egress names connects (RESPONSE 200)', async () => {
    assert.equal(codeOf(await evil.open(`tcp://127.0.0.1:${echo.port}`)), '200');
  });

  test('a node without west.egress opens no TCP at all (it is an open relay for HTTP only)', async () => {
    const client = await RawClient.dial(mesh.serverUrl('open'), 'evil');
    try {
      assert.equal(codeOf(await client.open(`tcp://127.0.0.1:${echo.port}`)), 'egress_denied');
    } finally {
      client.ws.terminate();
    }
  });

  test('many connections: the per-address cap closes the extra ones, and the tunnel\'s maxStreams refuses beyond it', async () => {
    const listener = await tcpListenerAddress(mesh.proc('site'), 'tcp://127.0.0.1:0');
    // Two held open (the cap), echoing.
    const held: net.Socket[] = [];
    const first = [0, 1].map(() => tcpExchange(listener, 'held', { keepOpen: true, onData: (s) => { held.push(s); } }));
    await waitFor('two echoing connections', () => held.length === 2);
    const third = await tcpExchange(listener, 'one too many', { keepOpen: true });
    assert.equal(third.data.length, 0, 'over the cap: closed before anything moved');
    for (const s of held) s.end();
    await Promise.all(first);
    // The hub takes 3 streams per tunnel (maxStreams): evil's raw client holds one (above), so
    // with two more of evil's the next is refused too_many_streams.
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(codeOf(await evil.open(`tcp://127.0.0.1:${echo.port}`)));
    assert.deepEqual(codes, ['200', '200', 'too_many_streams']);
  });
});
