import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { securityFindings, type SecurityFinding } from '../../src/check/security.js';
import { loadConfigFile, parseConfig, readConfig } from '../../src/config/load.js';
import { at } from '../helpers/at.js';

const PEM = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
const TOKEN = 's3cret-token-value';

let dir = '';

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'west-security-unit-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a file with `mode` (chmod, so the umask does not decide) and returns its path. */
async function file(name: string, text: string, mode: number): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, text);
  await chmod(p, mode);
  return p;
}

/** `rule path` of each finding, in order. */
function summary(findings: SecurityFinding[]): string[] {
  return findings.map((f) => `${f.rule} ${f.path}`);
}

const quiet = { nm: 'n', cp: '127.0.0.1:9701', egress: {} };

test('token and key files that group or others can read are reported with their JSON path and mode; owner-only ones are not', { skip: process.platform === 'win32' }, async () => {
  const open = { token: await file('open.token', `${TOKEN}\n`, 0o644), key: await file('open.key', PEM, 0o640) };
  const closed = { token: await file('closed.token', `${TOKEN}\n`, 0o600), key: await file('closed.key', PEM, 0o400) };
  const cert = await file('cert.pem', PEM.replace(/PRIVATE KEY/g, 'CERTIFICATE'), 0o644); // public: never reported
  const config = (f: { token: string; key: string }): string => JSON.stringify({
    west: { ...quiet, cpToken: { file: f.token } },
    wsts: { sp: 'wss://127.0.0.1:9801', cert, key: f.key, tokens: { 'site-L': { file: f.token }, '*': { env: 'NOT_A_FILE' } } },
    wstc: { 'wss://relay.example:9801': { token: { file: f.token }, cert, key: f.key } },
    proxy: { 'https://127.0.0.1:9911': { ea: 'wss://relay.example:9801', cert, key: f.key, '/x': { ou: 'http://127.0.0.1:9921/x' } } },
  });
  process.env.NOT_A_FILE = 'from-the-environment';
  try {
    const found = securityFindings(parseConfig(config(open)));
    assert.deepEqual(summary(found), [
      'secret_file_readable west.cpToken.file',
      'secret_file_readable wsts.tokens["site-L"].file',
      'secret_file_readable wsts.key',
      'secret_file_readable wstc["wss://relay.example:9801"].token.file',
      'secret_file_readable wstc["wss://relay.example:9801"].key',
      'secret_file_readable proxy["https://127.0.0.1:9911"].key',
    ]);
    const token = at(found, 0);
    assert.equal(token.event, 'security.secret_file_readable');
    assert.match(token.message, /^token file ".*open\.token" is open to other users of this machine \(mode 644\); make it readable by its owner only \(chmod 600\)$/);
    assert.deepEqual(token.fields, { at: 'west.cpToken.file', file: open.token, mode: '644', hint: token.message });
    assert.match(at(found, 2).message, /^TLS key file ".*open\.key" is open to other users .*\(mode 640\)/);
    assert.ok(!JSON.stringify(found).includes(TOKEN), 'a finding never carries the secret itself');

    assert.deepEqual(securityFindings(parseConfig(config(closed))), []);
  } finally {
    delete process.env.NOT_A_FILE;
  }
});

test('a relative token file is judged where the config file is, as loading reads it', { skip: process.platform === 'win32' }, async () => {
  await file('relative.token', TOKEN, 0o604);
  const configFile = await file('relative.json', JSON.stringify({ west: { ...quiet, cpToken: { file: 'relative.token' } } }), 0o644);
  const found = securityFindings(await loadConfigFile(configFile));
  assert.deepEqual(summary(found), ['secret_file_readable west.cpToken.file']);
  assert.equal(at(found, 0).fields.file, 'relative.token');
  assert.equal(at(found, 0).fields.mode, '604');
});

test('the mode is read through modeOf: any group or other bit counts, the owner\'s never do', () => {
  const config = parseConfig(JSON.stringify({ west: { ...quiet, cpToken: { env: 'HOME' } } }));
  assert.deepEqual(securityFindings(config, () => 0o644), [], 'no token or key file: nothing to judge');
  const withFile = { ...config, raw: { ...config.raw, west: { ...config.raw.west, cpToken: { file: '/etc/west/token' } } } };
  for (const [mode, reported] of [[0o600, false], [0o700, false], [0o610, true], [0o601, true], [0o620, true], [0o100600, false], [0o100604, true]] as const) {
    assert.equal(securityFindings(withFile, () => mode).length, reported ? 1 : 0, `mode ${mode.toString(8)}`);
  }
  assert.deepEqual(securityFindings(withFile, () => undefined), [], 'a file that cannot be stat-ed was reported when the config loaded');
});

test('a control port on every interface or a public address without west.cpToken is reported; loopback, private or with a token is not', () => {
  const every = /^control port (\*|0\.0\.0\.0|\[::\]):9701 listens on every interface without west\.cpToken: .* bind it to 127\.0\.0\.1 or set west\.cpToken$/;
  const cases: [Record<string, unknown>, RegExp | undefined][] = [
    [{ cp: ':9701' }, every],
    [{ cp: '0.0.0.0:9701' }, every],
    [{ cp: '[::]:9701' }, every],
    [{ cp: '203.0.113.7:9701' }, /^control port 203\.0\.113\.7:9701 listens on a public address without west\.cpToken: /],
    [{ cp: '[2001:db8::7]:9701' }, /^control port \[2001:db8::7\]:9701 listens on a public address without west\.cpToken: /],
    [{ cp: 'relay.example.org:9701' }, /^control port relay\.example\.org:9701 listens on relay\.example\.org, a name that may be a public address, without west\.cpToken: /],
    [{ cp: ':9701', cpToken: TOKEN }, undefined],
    [{ cp: '203.0.113.7:9701', cpToken: { env: 'WEST_TEST_SURELY_UNSET' } }, undefined],
    [{ cp: '127.0.0.1:9701' }, undefined],
    [{ cp: 'localhost:9701' }, undefined],
    [{ cp: '[::1]:9701' }, undefined],
    [{ cp: '10.1.2.3:9701' }, undefined],
    [{ cp: '172.20.0.5:9701' }, undefined],
    [{ cp: '192.168.1.5:9701' }, undefined],
    [{ cp: '[fd00::5]:9701' }, undefined],
    [{}, undefined],
  ];
  for (const [west, message] of cases) {
    const json = JSON.stringify({ west: { nm: 'n', egress: {}, ...west } });
    // A token that cannot be read here still counts as set (west check --skip-secrets).
    const { config } = readConfig(json, '', { skipSecrets: true });
    const found = securityFindings(config);
    assert.deepEqual(summary(found), message ? ['control_port_open west.cp'] : [], JSON.stringify(west));
    if (message) {
      assert.equal(at(found, 0).event, 'security.control_port_open');
      assert.match(at(found, 0).message, message);
      assert.ok(!at(found, 0).message.includes(TOKEN));
    }
  }
});

test('mappings without "ca" on a listener other machines reach: one finding per listener naming them; loopback listeners and mappings with ca are not reported', () => {
  const mappings = { '/open': { ou: 'http://127.0.0.1:9921/a' }, '/also': { ou: 'http://127.0.0.1:9921/b' }, '/guarded': { ou: 'http://127.0.0.1:9921/c', ca: ['10.0.0.0/8'] } };
  const config = parseConfig(JSON.stringify({
    west: quiet,
    wsts: { sp: 'ws://127.0.0.1:9801' },
    proxy: {
      'http://:9911': { en: 'p', ...mappings },
      'http://10.1.2.3:9912': { en: 'p', '/one': { ou: 'http://127.0.0.1:9921/d' } },
      'http://127.0.0.1:9913': { en: 'p', '/local': { ou: 'http://127.0.0.1:9921/e' } },
      'http://localhost:9914': { en: 'p', '/local': { ou: 'http://127.0.0.1:9921/e' } },
      'http://0.0.0.0:9915': { en: 'p', '/guarded': mappings['/guarded'] },
    },
  }));
  const found = securityFindings(config);
  assert.deepEqual(summary(found), ['mapping_without_ca proxy["http://:9911"]', 'mapping_without_ca proxy["http://10.1.2.3:9912"]']);
  assert.equal(at(found, 0).message, 'mappings /open, /also on *:9911 have no "ca": any client that reaches *:9911 can use them; list the client addresses that may in "ca"');
  assert.equal(at(found, 1).message, 'mapping /one on 10.1.2.3:9912 has no "ca": any client that reaches 10.1.2.3:9912 can use it; list the client addresses that may in "ca"');
  assert.deepEqual(at(found, 0).fields, { at: 'proxy["http://:9911"]', listener: 'http://:9911', mappings: '/open /also', hint: at(found, 0).message });
});

test('the original samples: only their control ports on every interface are reported', async () => {
  const originals = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/original');
  for (const name of await readdir(originals)) {
    const config = await loadConfigFile(path.join(originals, name));
    const found = securityFindings(config);
    const expected = config.control?.host === '' ? ['control_port_open west.cp'] : [];
    assert.deepEqual(summary(found), expected, name);
  }
});
