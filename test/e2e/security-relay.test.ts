/**
 * Security of what travels through a tunnel (issue 5, doc/security.md): the relay is not an
 * open relay (west.egress), listeners refuse smuggling and header injection, a hostile peer
 * speaking the wire protocol by hand cannot inject headers, route elsewhere or reach URLs
 * outside its allowlist, and the control port requires its token and never shows a secret.
 *
 * Nodes: relay-G runs the tunnel server (tokens, egress, control token, and an `en` listener
 * towards the hostile peer); relay-L dials it with a token and has an `ea` listener. The
 * hostile peer is this test, connected with `ws` as "hostile-H" with its own valid token.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import WebSocket from 'ws';
import {
  decodeMessage, encodeEnd, encodeOpen, encodeResponse, SUBPROTOCOL, type Frame, type OpenHead,
} from '../../src/tunnel/frame.js';
import { fetchText, waitFor, type FetchResult } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { runCli, stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const G = 'relay-G';
const L = 'relay-L';
const H = 'hostile-H';
const secret = (what: string): string => `SECRET-${what}-${randomBytes(12).toString('hex')}`;
const SECRETS = { tokL: secret('tokL'), tokH: secret('tokH'), cpG: secret('cpG'), cpL: secret('cpL') };

let origin: Origin;
let dir: string;
let cleanup: () => Promise<void>;
let g: WestProcess;
let l: WestProcess;
let gFile: string;
let lFile: string;
let tunnelUrl: string;
let gControl: string;
let lControl: string;
/** relay-L's listener: /allowed, /other, /allowedx and /denied, all performed at relay-G. */
let lPort: number;
/** relay-G's listener towards the hostile peer (en: hostile-H). */
let gPort: number;

/** Bounds for waits, generous for a loaded two-core CI machine; they only matter when something is wrong. */
const START_MS = 30_000;
const WAIT_MS = 20_000;

const originUrl = (p: string): string => `http://127.0.0.1:${origin.port}${p}`;
const originHost = (): string => `127.0.0.1:${origin.port}`;
const seenWith = (marker: string): string[] => origin.seen.filter((s) => s.url.includes(marker)).map((s) => `${s.method} ${s.url}`);

/** `west -c file`, waiting (bounded) for node.started; throws if it exits first. */
async function startNode(file: string, extra: string[] = []): Promise<WestProcess> {
  const p = WestProcess.spawn(['-c', file, '--log-format', 'json', ...extra]);
  await Promise.race([
    p.waitForEvent('node.started', undefined, START_MS),
    p.exited.then((code) => { throw new Error(`west exited with ${code} before starting:\n${p.stderr}`); }),
  ]);
  return p;
}

before(async () => {
  origin = new Origin();
  await origin.listen();
  ({ dir, cleanup } = await tempDir('west-security-relay-'));
  // Every port is the OS's pick: G starts first, and L's config names the tunnel port G bound.
  // Debug level: the most a node ever logs must still hold no secret.
  gFile = await writeConfig(dir, 'relay-G.json', {
    west: {
      nm: G, cp: '127.0.0.1:0', cpToken: SECRETS.cpG,
      egress: { [L]: [originUrl('/allowed')], [H]: [originUrl('/allowed')] },
    },
    wsts: { sp: 'ws://127.0.0.1:0', tokens: { [L]: SECRETS.tokL, [H]: SECRETS.tokH } },
    proxy: { 'http://127.0.0.1:0': { en: H, '/fromh': { ou: originUrl('/fromh') } } },
  });
  g = await startNode(gFile, ['--log-level', 'debug']);
  tunnelUrl = `ws://127.0.0.1:${g.serverPort()}`;
  gPort = g.bound().listeners.get('http://127.0.0.1:0')!;
  gControl = g.controlUrl();
  lFile = await writeConfig(dir, 'relay-L.json', {
    west: { nm: L, cp: '127.0.0.1:0', cpToken: SECRETS.cpL, egress: {} },
    wstc: { [tunnelUrl]: { token: SECRETS.tokL } },
    proxy: {
      'http://127.0.0.1:0': {
        ea: tunnelUrl,
        '/allowed': { ou: originUrl('/allowed') },
        '/other': { ou: originUrl('/other') },
        '/allowedx': { ou: originUrl('/allowedx') },
        '/denied': { ou: originUrl('/allowed/denied'), ca: ['10.0.0.0/8'] },
      },
    },
  });
  l = await startNode(lFile, ['--log-level', 'debug']);
  lPort = l.bound().listeners.get('http://127.0.0.1:0')!;
  lControl = l.controlUrl();
  await l.waitForEvent('tunnel.connected', undefined, WAIT_MS);
});

after(async () => {
  await stopAll();
  await origin.close();
  await cleanup();
});

const viaL = (p: string, opts: Parameters<typeof fetchText>[1] = {}): Promise<FetchResult> => fetchText(`http://127.0.0.1:${lPort}${p}`, opts);

describe('egress allowlist (west.egress)', () => {
  test('a URL under the allowed prefix is performed', async () => {
    const r = await viaL('/allowed/x/echo');
    assert.equal(r.status, 200, r.text);
    assert.equal(JSON.parse(r.text).url, '/allowed/x/echo');
  });

  test('a URL outside it gets 403 http_request_denied naming relay-G; the origin sees nothing', async () => {
    const r = await viaL('/other/echo');
    assert.equal(r.status, 403, r.text);
    const ps = String(r.headers['proxy-status']);
    assert.match(ps, /error=http_request_denied/);
    assert.match(ps, new RegExp(`^"${G}"`));
    assert.ok(r.text.includes(G), r.text);
    await g.waitForEvent('outgoing.egress_denied', (e) => String(e.url).includes('/other/echo'), WAIT_MS);
    assert.deepEqual(seenWith('/other'), []);
  });

  test('the prefix matches at a segment boundary: /allowedx is not under /allowed', async () => {
    const r = await viaL('/allowedx/echo');
    assert.equal(r.status, 403, r.text);
    assert.match(String(r.headers['proxy-status']), /error=http_request_denied/);
    assert.deepEqual(seenWith('/allowedx'), []);
  });

  test('dot segments cannot climb out of the allowed prefix', async () => {
    for (const p of ['/allowed/../other/echo', '/allowed/%2e%2e/other/echo', '/allowed/%2E%2E/%2e%2e/other/echo']) {
      const r = await viaL(p);
      assert.equal(r.status, 403, `${p}: ${r.text}`);
      assert.match(String(r.headers['proxy-status']), new RegExp(`^"${G}"; error=http_request_denied`));
    }
    assert.deepEqual(seenWith('/other'), []);
  });

  test('"ca" on a mapping refuses a client outside it with 403 at the listener', async () => {
    const r = await viaL('/denied/echo');
    assert.equal(r.status, 403, r.text);
    assert.match(String(r.headers['proxy-status']), new RegExp(`^"${L}"; error=http_request_denied`));
    assert.deepEqual(seenWith('/denied'), []);
  });

  test('a node without egress warns security.open_relay at start, and `west check` reports an open relay', async () => {
    const openFile = await writeConfig(dir, 'open-G.json', { west: { nm: 'open-G' }, wsts: { sp: 'ws://127.0.0.1:0' } });
    const open = await startNode(openFile);
    try {
      const warning = await open.waitForEvent('security.open_relay', undefined, WAIT_MS);
      assert.equal(warning.level, 'warn');
    } finally {
      await open.stop();
    }
    const checked = await runCli(['check', '-c', openFile]);
    assert.equal(checked.code, 0, 'an open relay is a warning, not an error');
    assert.match(checked.stdout, /^warning: .*open-G\.json: wsts\.sp: open relay: .*open-G/m, checked.stdout);

    const closed = await runCli(['check', '-c', gFile]);
    assert.equal(closed.code, 0, closed.stdout + closed.stderr);
    assert.doesNotMatch(closed.stdout, /open relay/);
    assert.ok(!g.events.some((e) => e.event === 'security.open_relay'), 'relay-G has egress: no warning');
  });
});

/**
 * Writes `bytes` on a raw TCP connection to relay-L's listener and returns all it answered
 * until it closed the connection (a parse error, or `Connection: close`). The client never
 * half-closes: Node aborts a request whose client sent FIN.
 */
function raw(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(lPort, '127.0.0.1', () => socket.write(bytes, 'latin1'));
    let answer = '';
    socket.setEncoding('latin1').on('data', (c: string) => { answer += c; });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no close after 10 s; got ${JSON.stringify(answer)}`)));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}

/** An ordinary request through relay-L, seen at the origin: anything sent before it has arrived too. */
async function sentinel(tag: string): Promise<void> {
  const r = await viaL(`/allowed/sentinel-${tag}`);
  assert.equal(r.status, 200, r.text);
}

describe('hardening at a listener (raw bytes)', () => {
  const head = (path: string, extra: string): string => `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;
  const refused: { what: string; bytes: string; marker: string }[] = [
    { what: 'Content-Length and Transfer-Encoding together', marker: 'clte', bytes: head('/allowed/clte', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n') + '0\r\n\r\n' },
    { what: 'two different Content-Length values', marker: 'dupcl', bytes: head('/allowed/dupcl', 'Content-Length: 5\r\nContent-Length: 6\r\n') + 'hello!' },
    { what: 'a space before the colon of Transfer-Encoding', marker: 'spcolon', bytes: head('/allowed/spcolon', 'Transfer-Encoding : chunked\r\nContent-Length: 3\r\n') + 'abc' },
    { what: 'a bare CR inside a header value', marker: 'barecr', bytes: `GET /allowed/barecr HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\rInjected: 1\r\n\r\n` },
    { what: 'a bare LF inside a header value', marker: 'barelf', bytes: `GET /allowed/barelf HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\nInjected: 1\r\n\r\n` },
    { what: 'a NUL byte in a header value', marker: 'nul', bytes: `GET /allowed/nul HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x00b\r\n\r\n` },
    { what: 'an obs-fold continuation line', marker: 'fold', bytes: `GET /allowed/fold HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n Injected: 1\r\n\r\n` },
    { what: 'a CR in the request target', marker: 'crtarget', bytes: `GET /allowed/crtarget\rInjected: 1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n` },
  ];
  for (const c of refused) {
    test(`400 for ${c.what}, and the origin sees nothing`, async () => {
      const answer = await raw(c.bytes);
      assert.match(answer, /^HTTP\/1\.1 400 /, JSON.stringify(answer.slice(0, 200)));
      assert.match(answer, new RegExp(`west node ${L}`));
      await sentinel(c.marker);
      assert.deepEqual(seenWith(c.marker).filter((s) => !s.includes('sentinel')), []);
      assert.ok(!origin.seen.some((s) => 'injected' in s.headers), 'no injected header ever reaches the origin');
    });
  }

  test('a request hidden in a chunked body behind a bad chunk size never reaches the origin', async () => {
    const smuggle = head('/allowed/smuggle', 'Transfer-Encoding: chunked\r\n') +
      'ZZ\r\nGET /allowed/smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n0\r\n\r\n';
    const answer = await raw(smuggle);
    assert.doesNotMatch(answer, /^HTTP\/1\.1 200 /, 'the broken body is not answered as a success');
    await sentinel('smuggle');
    assert.deepEqual(seenWith('/allowed/smuggled'), [], 'the hidden request is never performed');
    const carrier = origin.seen.find((s) => s.url === '/allowed/smuggle');
    if (carrier) await waitFor('the carrier request to be cut off at the origin', () => carrier.done, WAIT_MS);
    assert.ok(!carrier || carrier.aborted, 'if the carrier head got through, its body was never completed');
  });

  test('the origin sees the outgoing URL as Host, whatever the client sent', async () => {
    const answers = await Promise.all([
      raw(`GET /allowed/host1/echo HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`),
      raw(`GET /allowed/host2/echo HTTP/1.1\r\nHost: evil.example\r\nHost: also.evil\r\nConnection: close\r\n\r\n`),
      raw(`GET http://evil.example/allowed/host3/echo HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`),
    ]);
    for (const a of answers) assert.match(a, /^HTTP\/1\.1 200 /, a.slice(0, 200));
    for (const tag of ['host1', 'host2', 'host3']) {
      const seen = origin.seen.find((s) => s.url === `/allowed/${tag}/echo`);
      assert.ok(seen, `${tag} reached the origin at its mapped path`);
      assert.equal(seen.headers.host, originHost(), `${tag}: Host at the origin`);
    }
  });

  test('percent-encoded CR/LF in the path stays encoded: no header is injected', async () => {
    const answer = await raw(`GET /allowed/pct%0d%0aInjected:%201/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 200 /, answer.slice(0, 200));
    const seen = origin.seen.find((s) => s.url.startsWith('/allowed/pct'));
    assert.ok(seen);
    assert.equal(seen.url, '/allowed/pct%0d%0aInjected:%201/echo');
    assert.ok(!('injected' in seen.headers));
  });
});

/** This test, speaking west.v2 by hand as a connected peer. */
class HostilePeer {
  readonly frames: Frame[] = [];
  /** Messages from relay-G that were not valid frames, and socket errors (there should be none). */
  readonly undecodable: string[] = [];
  closed: { code: number; reason: string } | undefined;
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      try {
        this.frames.push(...decodeMessage(data));
      } catch (err) {
        this.undecodable.push(String(err));
      }
    });
    ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; });
    ws.on('error', (err) => { this.undecodable.push(`socket error: ${err.message}`); });
  }

  static async connect(name: string, token: string): Promise<HostilePeer> {
    const ws = new WebSocket(tunnelUrl, [SUBPROTOCOL], { headers: { 'X-West-Node': name, Authorization: `Bearer ${token}` }, handshakeTimeout: 5000 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    });
    return new HostilePeer(ws);
  }

  /** Opens a stream (odd ids: we dialed) and ends its request body at once. */
  open(head: Partial<OpenHead> & { url: string }): number {
    const id = this.nextId;
    this.nextId += 2;
    this.ws.send(encodeOpen(id, { kind: 'http', method: 'GET', headers: [], hops: 1, to: '', id: `hostile-${id}`, ...head }));
    this.ws.send(encodeEnd(id));
    return id;
  }

  frame<T extends Frame['type']>(stream: number, type: T): Promise<Extract<Frame, { type: T }>> {
    return waitFor(`${type} frame on stream ${stream}`, () =>
      this.frames.find((f): f is Extract<Frame, { type: T }> => f.stream === stream && f.type === type), WAIT_MS);
  }

  async reset(stream: number): Promise<{ code: string; message: string; node: string }> {
    const r = await this.frame(stream, 'reset');
    assert.ok(!this.frames.some((f) => f.stream === stream && f.type === 'response'), 'no response before the reset');
    return r.info;
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const done = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.terminate();
    await done;
  }
}

describe('a hostile peer speaking the protocol by hand', () => {
  let h: HostilePeer;

  before(async () => {
    h = await HostilePeer.connect(H, SECRETS.tokH);
    await g.waitForEvent('tunnel.client_connected', (e) => e.peer === H, WAIT_MS);
  });

  after(async () => {
    await h?.close();
  });

  /** `path`: on the origin (default /allowed/<marker>/echo); `control`: G's own control port instead. */
  const resets: { what: string; head: Partial<OpenHead>; path?: string; control?: boolean; url?: () => string; code: string; marker: string }[] = [
    { what: 'userinfo that looks like the allowed origin', code: 'egress_denied', marker: 'userinfo', url: () => `http://127.0.0.1:${origin.port}@127.0.0.1:${new URL(gControl).port}/allowed/userinfo`, head: {} },
    { what: 'a file: URL', code: 'bad_request', marker: 'fileurl', url: () => 'file:///etc/passwd', head: {} },
    // A line feed cannot travel inside a field (it ends the field, doc/protocol.md): a bare CR is
    // what a peer could try to slip into a head.
    { what: 'a CR inside a header value', code: 'bad_request', marker: 'inject', head: { headers: ['X-A', 'a\rInjected: 1'] } },
    { what: 'a header name with a space', code: 'bad_request', marker: 'badname', head: { headers: ['X A', '1'] } },
    { what: 'a CR in the method', code: 'bad_request', marker: 'badmethod', head: { method: 'GET /x HTTP/1.1\rInjected: 1\rX:' } },
    // Transit is off by default (doc/security.md#transit): relay-G does not pass H's streams on.
    { what: '`to` naming another node', code: 'transit_denied', marker: 'routed', head: { to: L } },
    { what: 'a URL outside its egress', code: 'egress_denied', marker: 'other', path: '/other/hostile', head: {} },
    // Refused before egress is judged: west forwards no path with a dot segment, an encoded
    // slash or a backslash (doc/security.md, "Paths").
    { what: 'dot segments out of the allowed prefix', code: 'bad_request', marker: 'other', path: '/allowed/%2e%2e/other/dots', head: {} },
    { what: 'the relay\'s own control port', code: 'egress_denied', marker: 'state.json', control: true, head: {} },
    { what: 'backslashes out of the allowed prefix', code: 'bad_request', marker: 'other', path: '/allowed\\..\\other\\backslash', head: {} },
    { what: 'a CR in the upgrade protocol', code: 'bad_request', marker: 'badupgrade', head: { upgrade: 'websocket\rInjected: 1' } },
  ];
  for (const c of resets) {
    test(`an OPEN with ${c.what} is reset ${c.code} and the origin sees nothing`, async () => {
      const url = c.url?.() ?? (c.control ? `${gControl}/state.json` : originUrl(c.path ?? `/allowed/${c.marker}/echo`));
      const id = h.open({ ...c.head, url });
      const info = await h.reset(id);
      assert.equal(info.code, c.code, info.message);
      assert.equal(info.node, G);
      await sentinel(`hostile-${c.marker}`);
      assert.deepEqual(seenWith(c.control ? 'state.json' : `/${c.marker}`).filter((s) => !s.includes('sentinel')), []);
      assert.ok(!origin.seen.some((s) => 'injected' in s.headers));
    });
  }

  test('a Host header in an OPEN does not reach the origin: it sees the outgoing URL\'s host', async () => {
    const id = h.open({ url: originUrl('/allowed/hostile-host/echo'), headers: ['Host', 'evil.example'] });
    const response = await h.frame(id, 'response');
    assert.equal(response.head.status, 200);
    await h.frame(id, 'end');
    const seen = origin.seen.find((s) => s.url === '/allowed/hostile-host/echo');
    assert.equal(seen?.headers.host, originHost());
  });

  test('a RESPONSE with a CR in a header or status message never reaches the client (502)', async () => {
    const answers = new Map<string, [string, string[]]>([
      ['header', ['OK', ['X-A', 'a\rSet-Cookie: pwned=1']]],
      ['status', ['OK\rSet-Cookie: pwned=1', []]],
    ]);
    // Each OPEN relay-G sends us (its en listener, even ids) is answered with a hostile head.
    const answered = new Set<number>();
    const responder = setInterval(() => {
      for (const f of h.frames) {
        if (f.type !== 'open' || answered.has(f.stream)) continue;
        answered.add(f.stream);
        const [statusMessage, headers] = answers.get(f.head.url.split('/').pop()!) ?? ['OK', []];
        h.ws.send(encodeResponse(f.stream, { status: 200, statusMessage, headers }));
        h.ws.send(encodeEnd(f.stream));
      }
    }, 10);
    try {
      for (const kind of answers.keys()) {
        const r = await fetchText(`http://127.0.0.1:${gPort}/fromh/${kind}`);
        assert.equal(r.status, 502, `${kind}: ${r.status} ${r.text}`);
        assert.equal(r.headers['set-cookie'], undefined);
      }
    } finally {
      clearInterval(responder);
    }
    assert.equal(answered.size, 2, 'both requests reached the hostile peer');
  });

  test('a malformed frame closes only that tunnel (1002); relay-L keeps working', async () => {
    assert.deepEqual(h.undecodable, [], 'relay-G only ever sent valid frames');
    h.ws.send(Buffer.from([0x7f, 0, 0, 0, 1]));
    await waitFor('the hostile tunnel to close', () => h.closed, WAIT_MS);
    assert.equal(h.closed?.code, 1002);
    const r = await viaL('/allowed/after-hostile/echo');
    assert.equal(r.status, 200, r.text);
  });
});

describe('control port (west.cpToken) and secrets', () => {
  const paths = ['/', '/state.json', '/metrics', '/healthz', '/anything'];

  test('no token, a wrong one, or the wrong scheme: 401 on every path, with WWW-Authenticate: Bearer', async () => {
    const attempts: Record<string, Record<string, string>> = {
      'no token': {},
      'wrong token': { Authorization: `Bearer ${SECRETS.cpG}x` },
      'another secret': { Authorization: `Bearer ${SECRETS.tokL}` },
      'the other node\'s token': { Authorization: `Bearer ${SECRETS.cpL}` },
      // Basic is accepted with the token as password (for browsers, control.test.ts); not a wrong one.
      'Basic scheme, wrong password': { Authorization: `Basic ${Buffer.from(`west:${SECRETS.cpG}x`).toString('base64')}` },
      'Basic scheme, token as user name': { Authorization: `Basic ${Buffer.from(`${SECRETS.cpG}:`).toString('base64')}` },
      'browser, no token': { Accept: 'text/html' },
    };
    for (const [what, headers] of Object.entries(attempts)) {
      for (const p of paths) {
        const r = await fetchText(`${gControl}${p}`, { headers });
        assert.equal(r.status, 401, `${what} ${p}: ${r.status}`);
        assert.match(String(r.headers['www-authenticate']), /^Bearer/, `${what} ${p}`);
        for (const s of Object.values(SECRETS)) assert.ok(!r.text.includes(s), `${what} ${p}: the answer shows no secret`);
      }
    }
    const head = await fetchText(`${lControl}/`, { method: 'HEAD' });
    assert.equal(head.status, 401, 'HEAD needs the token too');
  });

  test('the right token opens every path', async () => {
    for (const [control, token] of [[gControl, SECRETS.cpG], [lControl, SECRETS.cpL]] as const) {
      for (const p of paths) {
        const r = await fetchText(`${control}${p}`, { headers: { Authorization: `Bearer ${token}` } });
        assert.equal(r.status, 200, `${control}${p}: ${r.text.slice(0, 200)}`);
      }
    }
  });

  test('no secret appears in the dump, /state.json, /metrics, /healthz or the status page', async () => {
    for (const [control, token] of [[gControl, SECRETS.cpG], [lControl, SECRETS.cpL]] as const) {
      for (const accept of ['*/*', 'text/html']) {
        for (const p of paths) {
          const r = await fetchText(`${control}${p}`, { headers: { Authorization: `Bearer ${token}`, Accept: accept } });
          assert.equal(r.status, 200);
          for (const [name, s] of Object.entries(SECRETS)) assert.ok(!r.text.includes(s), `${control}${p} (${accept}) shows ${name}`);
        }
      }
    }
    const dump = await fetchText(`${gControl}/`, { headers: { Authorization: `Bearer ${SECRETS.cpG}` } });
    assert.match(dump.text, /--- wsts object ---/);
    assert.match(dump.text, /\[redacted\]/, 'the dump shows that tokens are configured, not what they are');
  });

  test('no secret appears in `west check` output', async () => {
    const outputs = await Promise.all([runCli(['check', '-c', gFile]), runCli(['check', '-c', lFile]), runCli(['check', gFile, lFile])]);
    // The pair is not a sound deployment on its own (hostile-H has no config): only the single files must pass.
    assert.deepEqual(outputs.map((o) => o.code).slice(0, 2), [0, 0], outputs.map((o) => o.stdout + o.stderr).join('\n'));
    for (const o of outputs) {
      assert.match(o.stdout, /node relay-G|node relay-L/);
      for (const [name, s] of Object.entries(SECRETS)) assert.ok(!(o.stdout + o.stderr).includes(s), `west check shows ${name}`);
    }
  });

  test('no secret appears in either node\'s log (debug level, after every attack in this file)', async () => {
    assert.ok(g.events.some((e) => e.level === 'debug') && l.events.some((e) => e.level === 'debug'), 'the nodes logged at debug level');
    for (const [node, p] of [[G, g], [L, l]] as const) {
      for (const [name, s] of Object.entries(SECRETS)) assert.ok(!(p.stderr + p.stdout).includes(s), `${node}'s log shows ${name}`);
    }
  });
});
