/**
 * `wsts.certNames` (doc/security.md): with client certificates required, the name a client
 * presents must be one its certificate carries (subject CN or a DNS name), so site-L's
 * certificate cannot connect as site-M even with site-M's token. Real `west` servers, real
 * TLS on 127.0.0.1 with certificates openssl makes for this run, upgrades sent by hand.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { freePort } from '../helpers/net.js';
import { issue, makeCa, makeTestPki, pem, type CertFiles, type TestPki } from '../helpers/tls.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';
import { SUBPROTOCOL } from '../../src/tunnel/frame.js';
import { NOT_ADMITTED } from '../../src/tunnel/server.js';

const WAIT_MS = 20_000;
const TOKENS = { 'site-L': `l-${randomBytes(12).toString('hex')}`, 'site-M': `m-${randomBytes(12).toString('hex')}`, 'site-N': `n-${randomBytes(12).toString('hex')}` };

let dir: string;
let cleanup: () => Promise<void>;
let pki: TestPki;
/** CN=site-L. */
let siteL: CertFiles;
/** CN=gateway-7, DNS:site-N. */
let gateway: CertFiles;

before(async () => {
  ({ dir, cleanup } = await tempDir('west-certnames-'));
  pki = await makeTestPki(dir);
  [siteL, gateway] = await Promise.all([
    issue(pki.ca, 'site-L', { kind: 'client' }),
    issue(pki.ca, 'gateway-7', { kind: 'client', altNames: ['DNS:site-N'] }),
  ]);
});

after(async () => {
  await stopAll();
  await cleanup();
});

/** A wss:// tunnel server requiring client certificates from the test CA. */
async function server(name: string, certNames: boolean): Promise<{ proc: WestProcess; port: number }> {
  const port = await freePort();
  const file = await writeConfig(dir, `${name}.json`, {
    west: { nm: name, egress: {} },
    wsts: { sp: `wss://127.0.0.1:${port}`, cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca.cert, tokens: TOKENS, certNames },
  });
  return { proc: await WestProcess.start(file), port };
}

/** Upgrades by hand with a client certificate, as `name` with `token`; the status (101 when admitted) and body. */
async function upgrade(port: number, as: CertFiles, name: string, token: string): Promise<{ status: number; body: string }> {
  const [ca, cert, key] = await Promise.all([pem(pki.ca.cert), pem(as.cert), pem(as.key)]);
  return new Promise((resolve, reject) => {
    const req = https.request(`https://127.0.0.1:${port}/`, {
      agent: false, ca, cert, key,
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        'Sec-WebSocket-Protocol': SUBPROTOCOL, 'X-West-Node': name, Authorization: `Bearer ${token}`,
      },
    });
    req.setTimeout(WAIT_MS, () => req.destroy(new Error('the upgrade was not answered in time')));
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('wsts.certNames: a client connects only under a name its certificate carries (CN or DNS name), whatever token it holds', async () => {
  const g = await server('certnames-G', true);
  const cases: { what: string; as: CertFiles; name: string; token: string; status: number; reason?: RegExp }[] = [
    { what: 'site-L\'s certificate as site-L', as: siteL, name: 'site-L', token: TOKENS['site-L'], status: 101 },
    { what: 'site-L\'s certificate as site-M, with site-M\'s token', as: siteL, name: 'site-M', token: TOKENS['site-M'], status: 401, reason: /name site-M is not one its client certificate carries \(site-L; wsts\.certNames\)/ },
    { what: 'a certificate whose DNS name is site-N, as site-N', as: gateway, name: 'site-N', token: TOKENS['site-N'], status: 101 },
    { what: 'the same, as the original\'s URL form of the name', as: gateway, name: 'ws://site-N/', token: TOKENS['site-N'], status: 101 },
    { what: 'a certificate with a DNS name, as site-L', as: gateway, name: 'site-L', token: TOKENS['site-L'], status: 401, reason: /name site-L is not one .*\(gateway-7, site-N; wsts\.certNames\)/ },
  ];
  for (const c of cases) {
    const before = g.proc.events.length;
    const r = await upgrade(g.port, c.as, c.name, c.token);
    assert.equal(r.status, c.status, `${c.what}: ${r.status} ${r.body}`);
    if (c.reason) {
      assert.equal(r.body, NOT_ADMITTED, `${c.what}: refused like any other admission`);
      const logged = await g.proc.waitForEvent('tunnel.client_refused', (e) => g.proc.events.indexOf(e) >= before, WAIT_MS);
      assert.match(String(logged.reason), c.reason, c.what);
    }
  }
});

test('without wsts.certNames, a certificate from the client CA may present any name it holds a token for', async () => {
  const g = await server('certnames-off-G', false);
  const r = await upgrade(g.port, siteL, 'site-M', TOKENS['site-M']);
  assert.equal(r.status, 101, r.body);
});

test('a certificate from another CA never reaches the name check', async () => {
  const other = await makeCa(dir, 'certnames other CA');
  const stranger = await issue(other, 'site-L', { kind: 'client' });
  const g = await server('certnames-ca-G', true);
  await assert.rejects(upgrade(g.port, stranger, 'site-L', TOKENS['site-L']));
});
