/**
 * Security of the tunnel itself (issue 5, doc/security.md): who may connect to a tunnel server
 * and whether the client can trust it. Real `west` processes, real TLS on 127.0.0.1 with
 * certificates made by openssl for this run (test/helpers/tls.ts), a real origin.
 *
 * Every refused party is also checked for what it could reach: a request through its
 * listener is answered 503 and the origin sees nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { at } from '../helpers/at.js';
import { fetchText, freePort, type FetchResult } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { SUBPROTOCOL } from '../../src/tunnel/frame.js';
import { NOT_ADMITTED } from '../../src/tunnel/server.js';
import { makeTestPki, pem, type TestPki } from '../helpers/tls.js';
import { retryIfPortTaken, stopAll, tempDir, WestProcess, writeConfig, type LogEvent } from '../helpers/west.js';

let origin: Origin;
let dir: string;
let cleanup: () => Promise<void>;
let pki: TestPki;

before(async () => {
  origin = new Origin();
  await origin.listen();
  ({ dir, cleanup } = await tempDir('west-security-tls-'));
  pki = await makeTestPki(dir);
});

after(async () => {
  await stopAll();
  await origin.close();
  await cleanup();
});

/**
 * Bounds for waits. Generous because a loaded CI machine with two cores can take seconds to
 * boot a node process; they only matter when something is wrong.
 */
const START_MS = 30_000;
const WAIT_MS = 20_000;

const originUrl = (p: string): string => `http://127.0.0.1:${origin.port}${p}`;
const seenUnder = (prefix: string): string[] => origin.seen.filter((s) => s.url.startsWith(prefix)).map((s) => s.url);
const tuning = { connectTimeout: 5, reconnectMin: 0.2, reconnectMax: 1 };

/** `west -c file`, waiting (bounded) for node.started; throws if it exits first. */
async function startNode(file: string): Promise<WestProcess> {
  const p = WestProcess.spawn(['-c', file, '--log-format', 'json']);
  await Promise.race([
    p.waitForEvent('node.started', undefined, START_MS),
    p.exited.then((code) => { throw new Error(`west exited with ${code} before starting:\n${p.stderr}`); }),
  ]);
  return p;
}

/** Runs `start` for each item, two at a time: booting many nodes at once starves a small machine. */
async function twoAtATime<T, R>(items: readonly T[], start: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += 2) out.push(...await Promise.all(items.slice(i, i + 2).map(start)));
  return out;
}

/** A tunnel server node; `sp` is ws:// or wss:// on the port the OS picks. */
async function tunnelServer(name: string, scheme: 'ws' | 'wss', wsts: Record<string, unknown>): Promise<{ proc: WestProcess; url: string; port: number }> {
  const file = await writeConfig(dir, `${name}.json`, { west: { nm: name, ...tuning }, wsts: { sp: `${scheme}://127.0.0.1:0`, ...wsts } });
  const proc = await startNode(file);
  const port = proc.serverPort();
  return { proc, url: `${scheme}://127.0.0.1:${port}`, port };
}

interface Site {
  proc: WestProcess;
  /** The site's http listener; `/<tag>` on it goes through the tunnel to the origin's `/<tag>`. */
  listener: string;
}

/**
 * A site node that dials `server` as `name` with `wstc` settings, and an `ea` listener for
 * `/<tag>` on the port the OS picks (`proxy` may add listeners on ports of their own).
 */
async function site(name: string, server: string, tag: string, wstc: Record<string, unknown> = {}, proxy: Record<string, unknown> = {}): Promise<Site> {
  const key = 'http://127.0.0.1:0';
  const file = await writeConfig(dir, `${name}.json`, {
    west: { nm: name, egress: {}, ...tuning },
    wstc: { [server]: wstc },
    proxy: { [key]: { ea: server, [`/${tag}`]: { ou: originUrl(`/${tag}`) } }, ...proxy },
  });
  const proc = await startNode(file);
  return { proc, listener: proc.listenerUrl(key) };
}

const connected = (p: WestProcess): Promise<LogEvent> => p.waitForEvent('tunnel.connected', undefined, WAIT_MS);
const refusedDial = (p: WestProcess, reason: RegExp): Promise<LogEvent> =>
  p.waitForEvent('tunnel.redial', (e) => e.level === 'error' && reason.test(String(e.reason)), WAIT_MS);
/** Waits for the server to log `event` with a reason matching `reason`. */
const serverLogged = (p: WestProcess, event: string, reason: RegExp): Promise<LogEvent> =>
  p.waitForEvent(event, (e) => reason.test(String(e.reason)), WAIT_MS);
const everConnected = (p: WestProcess): boolean => p.events.some((e) => e.event === 'tunnel.connected');

/** A site whose tunnel is refused: its listener answers 503 and the origin sees nothing of it. */
async function assertCutOff(s: Site, tag: string): Promise<void> {
  const r = await fetchText(`${s.listener}/${tag}/echo`);
  assert.equal(r.status, 503, `a refused site's listener answers 503, got ${r.status}: ${r.text}`);
  assert.match(String(r.headers['proxy-status']), /error=destination_unavailable/);
  assert.equal(everConnected(s.proc), false, 'the refused client never logs tunnel.connected');
  assert.deepEqual(seenUnder(`/${tag}`), [], 'the origin sees nothing from a refused client');
}

/** Sends a WebSocket upgrade by hand and reports the server's answer (status 101 when accepted). */
function upgradeAttempt(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url.replace(/^ws/, 'http'), {
      agent: false,
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'), ...headers,
      },
    });
    req.setTimeout(5000, () => req.destroy(new Error(`upgrade to ${url} timed out`)));
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, body: '' }); });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One HTTPS request trusting `ca`, body read in full. */
function fetchHttps(url: string, ca: Buffer): Promise<FetchResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

describe('wss:// with certificate verification', () => {
  let G: { proc: WestProcess; url: string; port: number };
  let L: Site;
  let lHttps: string;

  before(async () => {
    G = await tunnelServer('tls-G', 'wss', { cert: pki.server.cert, key: pki.server.key });
    // A node keeps its listeners by host and port, so only one of them can ask for port 0.
    L = await retryIfPortTaken(async () => {
      lHttps = `https://127.0.0.1:${await freePort()}`;
      return site('tls-L', G.url, 'tls', { ca: pki.ca.cert }, {
        [lHttps]: { ea: G.url, cert: pki.server.cert, key: pki.server.key, '/secure': { ou: originUrl('/secure') } },
      });
    });
    await connected(L.proc);
    await G.proc.waitForEvent('tunnel.client_connected', (e) => e.peer === 'tls-L', WAIT_MS);
  });

  after(async () => {
    await Promise.all([L?.proc.stop(), G?.proc.stop()]);
  });

  test('the tunnel port speaks TLS with the certificate made for it', async () => {
    const ca = await pem(pki.ca.cert);
    const cn = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: G.port, ca }, () => {
        const subject = socket.getPeerCertificate().subject;
        socket.destroy();
        resolve(socket.authorized ? String(subject.CN) : `not authorized: ${String(socket.authorizationError)}`);
      });
      socket.on('error', reject);
    });
    assert.equal(cn, '127.0.0.1');
  });

  test('a verified wss:// tunnel carries a GET and a POST body intact', async () => {
    const get = await fetchText(`${L.listener}/tls/echo?q=1`);
    assert.equal(get.status, 200, get.text);
    assert.equal(JSON.parse(get.text).url, '/tls/echo?q=1');

    const body = randomBytes(1024 * 1024 + 17);
    const post = await fetchText(`${L.listener}/tls/echo`, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(post.status, 200, post.text);
    const echo = JSON.parse(post.text) as { method: string; bodyBytes: number; sha256: string };
    assert.equal(echo.method, 'POST');
    assert.equal(echo.bodyBytes, body.length);
    assert.equal(echo.sha256, createHash('sha256').update(body).digest('hex'));
  });

  test('an https:// listener serves a client that trusts its CA, and the origin sees X-Forwarded-Proto: https', async () => {
    const r = await fetchHttps(`${lHttps}/secure/echo`, await pem(pki.ca.cert));
    assert.equal(r.status, 200, r.text);
    const echo = JSON.parse(r.text) as { url: string; headers: Record<string, string> };
    assert.equal(echo.url, '/secure/echo');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
  });

  test('a client that trusts another CA does not connect: certificate error in its log, 503, origin sees nothing', async () => {
    const [wrongCa, systemCa] = await Promise.all([
      site('tls-wrong-ca', G.url, 'wrongca', { ca: pki.otherCa.cert }),
      site('tls-system-ca', G.url, 'systemca'),
    ]);
    try {
      const [a, b] = await Promise.all([refusedDial(wrongCa.proc, /certificate/i), refusedDial(systemCa.proc, /certificate/i)]);
      assert.match(String(a.reason), /certificate/i);
      assert.match(String(b.reason), /certificate/i);
      await assertCutOff(wrongCa, 'wrongca');
      await assertCutOff(systemCa, 'systemca');
      assert.ok(!G.proc.events.some((e) => e.event === 'tunnel.client_connected' && /tls-(wrong|system)-ca/.test(String(e.peer))));
    } finally {
      await Promise.all([wrongCa.proc.stop(), systemCa.proc.stop()]);
    }
  });
});

test('a server certificate from the right CA but for another host is refused by the client', async () => {
  const G = await tunnelServer('tls-wronghost-G', 'wss', { cert: pki.wrongHost.cert, key: pki.wrongHost.key });
  const L = await site('tls-wronghost-L', G.url, 'wronghost', { ca: pki.ca.cert });
  try {
    const e = await refusedDial(L.proc, /certificate|altnames/i);
    assert.match(String(e.reason), /127\.0\.0\.1/, `the reason names the address that did not match: ${String(e.reason)}`);
    await assertCutOff(L, 'wronghost');
  } finally {
    await Promise.all([L.proc.stop(), G.proc.stop()]);
  }
});

describe('mutual TLS (wsts.clientCa)', () => {
  let G: { proc: WestProcess; url: string; port: number };
  /** tls_refused events G logged while the stranger (a certificate from another CA) dialed. */
  let strangerRefusals: LogEvent[] = [];

  before(async () => {
    G = await tunnelServer('mtls-G', 'wss', { cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca.cert });
  });

  after(async () => {
    await G?.proc.stop();
  });

  const tlsRefusals = (): LogEvent[] => G.proc.events.filter((e) => e.event === 'tunnel.tls_refused');
  /** Two failed dials: the refusal is not a one-off race of the first attempt. */
  const failsTwice = (p: WestProcess): Promise<LogEvent> => p.waitForEvent('tunnel.redial', (e) => Number(e.attempt) >= 2, WAIT_MS);

  test('a client certificate from the CA connects and carries requests', async () => {
    const good = await site('mtls-good', G.url, 'mtlsgood', { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key });
    try {
      await connected(good.proc);
      const r = await fetchText(`${good.listener}/mtlsgood/echo`);
      assert.equal(r.status, 200, r.text);
    } finally {
      await good.proc.stop();
    }
  });

  test('a client without a certificate fails the TLS handshake (tunnel.tls_refused), never connects, 503', async () => {
    const before = tlsRefusals().length;
    const noCert = await site('mtls-nocert', G.url, 'mtlsnocert', { ca: pki.ca.cert });
    try {
      await failsTwice(noCert.proc);
      await G.proc.waitForEvent('tunnel.tls_refused', () => tlsRefusals().length > before, WAIT_MS);
      await assertCutOff(noCert, 'mtlsnocert');
    } finally {
      await noCert.proc.stop();
    }
  });

  test('a client with a certificate from another CA fails the TLS handshake (tunnel.tls_refused), never connects, 503', async () => {
    const before = tlsRefusals().length;
    const stranger = await site('mtls-stranger', G.url, 'mtlsstranger', { ca: pki.ca.cert, cert: pki.otherClient.cert, key: pki.otherClient.key });
    try {
      await failsTwice(stranger.proc);
      await G.proc.waitForEvent('tunnel.tls_refused', () => tlsRefusals().length > before, WAIT_MS);
      await assertCutOff(stranger, 'mtlsstranger');
    } finally {
      await stranger.proc.stop();
      strangerRefusals = tlsRefusals().slice(before);
    }
    const peers = G.proc.events.filter((e) => e.event === 'tunnel.client_connected').map((e) => e.peer);
    assert.deepEqual(peers, ['mtls-good'], 'only the client with a certificate from the CA was ever admitted');
  });

  test('the server log says why a certificate from another CA was refused', () => {
    assert.ok(strangerRefusals.length > 0, 'tls_refused was logged for the stranger');
    for (const e of strangerRefusals) {
      assert.match(String(e.reason), /certificate|CERT|verify|issuer/i, `tunnel.tls_refused should name the certificate problem, got ${JSON.stringify(e.reason)}`);
    }
  });
});

describe('tokens (wsts.tokens) and names (wsts.ca)', () => {
  const envName = `WEST_SECTEST_TOKEN_${randomBytes(4).toString('hex')}`;
  const secret = {
    inline: `inline-${randomBytes(12).toString('hex')}`,
    file: `file-${randomBytes(12).toString('hex')}`,
    env: `env-${randomBytes(12).toString('hex')}`,
    wrong: `wrong-${randomBytes(12).toString('hex')}`,
    missing: `missing-${randomBytes(12).toString('hex')}`,
  };
  const names = ['tok-inline', 'tok-file', 'tok-env', 'tok-wrong', 'tok-missing', 'tok-stranger'];
  let G: { proc: WestProcess; url: string; port: number };
  const sites = new Map<string, Site>();
  const siteOf = (name: string): Site => sites.get(name)!;

  before(async () => {
    await mkdir(path.join(dir, 'tokens'), { recursive: true });
    await writeFile(path.join(dir, 'tokens', 'file.token'), `${secret.file}\n`);
    // The children inherit this process's environment: the variable is set only while they start.
    process.env[envName] = secret.env;
    try {
      G = await tunnelServer('tok-G', 'ws', {
        claim: 'refuse',
        // Every name here may connect from loopback; "ca-stranger" is not listed.
        ca: ['127.0.0.0/8', ...names],
        tokens: {
          'tok-inline': secret.inline,
          'tok-file': { file: 'tokens/file.token' },
          'tok-env': { env: envName },
          'tok-wrong': secret.wrong,
          'tok-missing': secret.missing,
          'ca-stranger': secret.inline,
        },
      });
      const specs: [string, string, Record<string, unknown>][] = [
        ['tok-inline', 'tokinline', { token: secret.inline }],
        ['tok-file', 'tokfile', { token: { file: 'tokens/file.token' } }],
        ['tok-env', 'tokenv', { token: { env: envName } }],
        // Presents another name's valid token.
        ['tok-wrong', 'tokwrong', { token: secret.inline }],
        ['tok-missing', 'tokmissing', {}],
        ['tok-stranger', 'tokstranger', { token: secret.inline }],
        // Has a valid token but is not in wsts.ca.
        ['ca-stranger', 'castranger', { token: secret.inline }],
      ];
      const started = await twoAtATime(specs, ([name, tag, wstc]) => site(name, G.url, tag, wstc));
      specs.forEach(([name], i) => sites.set(name, at(started, i)));
    } finally {
      delete process.env[envName];
    }
  });

  after(async () => {
    await Promise.all([...[...sites.values()].map((s) => s.proc.stop()), G?.proc.stop()]);
  });

  test('the right token, inline, from a file or from the environment, connects and carries requests', async () => {
    for (const [name, tag] of [['tok-inline', 'tokinline'], ['tok-file', 'tokfile'], ['tok-env', 'tokenv']] as const) {
      await connected(siteOf(name).proc);
      const r = await fetchText(`${siteOf(name).listener}/${tag}/echo`);
      assert.equal(r.status, 200, `${tag}: ${r.text}`);
      assert.equal(JSON.parse(r.text).url, `/${tag}/echo`);
    }
  });

  test('a wrong token is refused 401: the server says why, the client logs an error, nothing is forwarded', async () => {
    const refused = await serverLogged(G.proc, 'tunnel.client_refused', /wrong token/);
    assert.match(String(refused.reason), /tok-wrong/);
    await refusedDial(siteOf('tok-wrong').proc, /^server answered 401/);
    await assertCutOff(siteOf('tok-wrong'), 'tokwrong');
  });

  test('no token is refused 401; only the server\'s log says "missing token"', async () => {
    await serverLogged(G.proc, 'tunnel.client_refused', /missing token for tok-missing/);
    const e = await refusedDial(siteOf('tok-missing').proc, /^server answered 401/);
    assert.ok(String(e.reason).includes(NOT_ADMITTED.trim()), `the client hears the common refusal: ${String(e.reason)}`);
    await assertCutOff(siteOf('tok-missing'), 'tokmissing');
  });

  test('a name without a token entry is refused 401, like a wrong token', async () => {
    await serverLogged(G.proc, 'tunnel.client_refused', /tok-stranger has no token/);
    await refusedDial(siteOf('tok-stranger').proc, /^server answered 401/);
    await assertCutOff(siteOf('tok-stranger'), 'tokstranger');
  });

  test('a name not in wsts.ca is refused 401 like a wrong token, even with a valid token', async () => {
    await serverLogged(G.proc, 'tunnel.client_refused', /name ca-stranger may not connect/);
    await refusedDial(siteOf('ca-stranger').proc, /^server answered 401/);
    await assertCutOff(siteOf('ca-stranger'), 'castranger');
  });

  test('by hand: bad handshakes get 400, refused admissions one and the same 401, a second claim of a connected name gets 409 (claim: "refuse")', async () => {
    const proto = { 'Sec-WebSocket-Protocol': SUBPROTOCOL };
    // The whole body, and nothing else: which rule refused is for the server's log.
    const notAdmitted = new RegExp(`^${NOT_ADMITTED.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
    const cases: { what: string; headers: Record<string, string>; status: number; body: RegExp }[] = [
      { what: 'no subprotocol', headers: { 'X-West-Node': 'tok-inline', Authorization: `Bearer ${secret.inline}` }, status: 400, body: /subprotocol/ },
      { what: 'no name', headers: { ...proto, Authorization: `Bearer ${secret.inline}` }, status: 400, body: /X-West-Node/ },
      { what: 'Basic instead of Bearer', headers: { ...proto, 'X-West-Node': 'tok-file', Authorization: `Basic ${Buffer.from(`x:${secret.file}`).toString('base64')}` }, status: 401, body: notAdmitted },
      { what: 'empty bearer', headers: { ...proto, 'X-West-Node': 'tok-file', Authorization: 'Bearer ' }, status: 401, body: notAdmitted },
      { what: 'token with a suffix', headers: { ...proto, 'X-West-Node': 'tok-file', Authorization: `Bearer ${secret.file}x` }, status: 401, body: notAdmitted },
      { what: 'token of another name', headers: { ...proto, 'X-West-Node': 'tok-file', Authorization: `Bearer ${secret.env}` }, status: 401, body: notAdmitted },
      { what: 'a name it does not know', headers: { ...proto, 'X-West-Node': 'tok-nobody', Authorization: `Bearer ${secret.env}` }, status: 401, body: notAdmitted },
      { what: 'name taken, right token', headers: { ...proto, 'X-West-Node': 'tok-inline', Authorization: `Bearer ${secret.inline}` }, status: 409, body: /already connected/ },
    ];
    await connected(siteOf('tok-inline').proc);
    for (const c of cases) {
      const r = await upgradeAttempt(G.url, c.headers);
      assert.equal(r.status, c.status, `${c.what}: ${r.status} ${r.body}`);
      assert.match(r.body, c.body, c.what);
      for (const value of Object.values(secret)) assert.ok(!r.body.includes(value), `${c.what}: the answer shows no token`);
    }
    assert.ok(!G.proc.events.some((e) => e.event === 'tunnel.name_reclaimed'), 'the connected site kept its name');
  });

  test('no token value appears in the log of the server or of any client, refused or not', () => {
    for (const [name, p] of [['tok-G', G.proc], ...[...sites].map(([n, s]) => [n, s.proc] as const)] as const) {
      for (const [which, value] of Object.entries(secret)) assert.ok(!p.stderr.includes(value), `${name}'s log shows the ${which} token`);
    }
  });
});

test('wsts.ca with an address list without 127.0.0.1 refuses a client from 127.0.0.1 with 401, as any refused admission', async () => {
  const G = await tunnelServer('ca-addr-G', 'ws', { ca: ['10.0.0.0/8'] });
  const s = await site('ca-addr-L', G.url, 'caaddr');
  try {
    await serverLogged(G.proc, 'tunnel.client_refused', /address .*127\.0\.0\.1.* may not connect/);
    await refusedDial(s.proc, /^server answered 401/);
    await assertCutOff(s, 'caaddr');
  } finally {
    await Promise.all([s.proc.stop(), G.proc.stop()]);
  }
});
