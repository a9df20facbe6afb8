/**
 * `tcp://` listeners and `tcp://` egress entries in the config (doc/tcp.md): what they resolve
 * to, and every odd `to` refused with a message, case by case (as chisel's remote-spec parser
 * is tested).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTcpTarget } from '../../src/config/endpoint.js';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { EgressPolicy } from '../../src/proxy/far/egress.js';

const base = (proxy: Record<string, unknown>, west: Record<string, unknown> = {}): string => JSON.stringify({
  west: { nm: 'L', ...west }, wstc: { 'ws://127.0.0.1:9802': {} }, proxy,
});

function problems(text: string): string[] {
  try {
    parseConfig(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('accepted');
}

test('a tcp:// listener resolves: endpoint, target, to, ca, via; an ea adds its client', () => {
  const c = parseConfig(base({
    'tcp://127.0.0.1:2222': { en: 'L2', to: '10.0.0.5:22', ca: ['127.0.0.1'], via: ['hub'] },
    'tcp://:2223': { ea: 'ws://127.0.0.1:9803', to: '[::1]:22' },
    'http://127.0.0.1:9911': { en: 'L2', '/x': { ou: 'http://127.0.0.1:1/' } },
  }));
  assert.equal(c.listeners.length, 1);
  assert.deepEqual(c.tcpListeners.map((l) => [l.key, l.host, l.port, l.target, l.to, l.allow, l.via]), [
    ['tcp://127.0.0.1:2222', '127.0.0.1', 2222, { kind: 'en', name: 'L2' }, { host: '10.0.0.5', port: 22 }, ['127.0.0.1'], ['hub']],
    ['tcp://:2223', '', 2223, { kind: 'ea', url: 'ws://127.0.0.1:9803' }, { host: '::1', port: 22 }, [], undefined],
  ]);
  assert.ok(c.clients.some((cl) => cl.url === 'ws://127.0.0.1:9803'));
});

const targets: [string, { host: string; port: number } | undefined][] = [
  ['127.0.0.1:22', { host: '127.0.0.1', port: 22 }],
  ['Example.ORG:443', { host: 'example.org', port: 443 }],
  ['[::1]:22', { host: '::1', port: 22 }],
  ['[FE80::1]:65535', { host: 'fe80::1', port: 65535 }],
  ['host_1.lan:1', { host: 'host_1.lan', port: 1 }],
  ['127.0.0.1:0', undefined],
  ['127.0.0.1:65536', undefined],
  ['127.0.0.1:99999999', undefined],
  ['127.0.0.1:022', undefined],
  ['127.0.0.1: 22', undefined],
  [' 127.0.0.1:22', undefined],
  ['127.0.0.1:22 ', undefined],
  ['127.0.0.1', undefined],
  [':22', undefined],
  ['::1:22', undefined],
  ['[::1]', undefined],
  ['[1.2.3.4]:22', undefined],
  ['999.1.1.1:22', undefined],
  ['a b:22', undefined],
  ['user@host:22', undefined],
  ['host:22/x', undefined],
  ['tcp://host:22', undefined],
  ['host:-1', undefined],
  ['host:+22', undefined],
  ['-host:22', undefined],
  ['', undefined],
];
for (const [text, want] of targets) {
  test(`tcp target ${JSON.stringify(text)} -> ${want ? `${want.host} ${want.port}` : 'refused'}`, () => {
    assert.deepEqual(parseTcpTarget(text), want);
  });
}

test('odd values of "to" are refused with what is expected', () => {
  for (const to of ['127.0.0.1:0', '127.0.0.1:70000', 'host', ' host:22', 'tcp://host:22', '[::1:22']) {
    const found = problems(base({ 'tcp://127.0.0.1:2222': { en: 'L2', to } }));
    assert.deepEqual(found, [`proxy["tcp://127.0.0.1:2222"].to: must be "host:port" (a host name, an IPv4 address or [IPv6], port 1-65535) that the far end connects to, got ${JSON.stringify(to)}`], to);
  }
});

test('a tcp:// listener needs "to" and one of ea/en, takes no mappings, cert or unknown keys, and needs a port', () => {
  assert.deepEqual(problems(base({ 'tcp://127.0.0.1:2222': { en: 'L2' } })), ['proxy["tcp://127.0.0.1:2222"].to: is required']);
  assert.match(problems(base({ 'tcp://127.0.0.1:2222': { to: 'h:1' } })).join('\n'), /needs exactly one of "ea" or "en"/);
  assert.match(problems(base({ 'tcp://127.0.0.1:2222': { en: 'L2', to: 'h:1', '/x': { ou: 'http://h/' } } })).join('\n'), /\["\/x"\]: is not a known key \(expected "ea", "en", "via", "to" or "ca"\)/);
  assert.match(problems(base({ 'tcp://127.0.0.1:2222': { en: 'L2', to: 'h:1', cert: 'c.pem' } })).join('\n'), /\.cert: is not a known key/);
  assert.match(problems(base({ 'tcp://127.0.0.1': { en: 'L2', to: 'h:1' } })).join('\n'), /must be a listener address/);
  assert.match(problems(base({ 'tcp://127.0.0.1:2222': { en: 'L2', to: 'h:1', ca: ['nobody'] } })).join('\n'), /\.ca\[0\]: must be an IP address or CIDR/);
});

test('a tcp:// listener clashes with an http:// listener, the control port or another tcp:// one on the same port', () => {
  const found = problems(base({
    'http://127.0.0.1:9911': { en: 'L2', '/x': { ou: 'http://h/' } },
    'tcp://0.0.0.0:9911': { en: 'L2', to: 'h:1' },
    'tcp://127.0.0.1:9701': { en: 'L2', to: 'h:1' },
  }, { cp: '127.0.0.1:9701' }));
  assert.deepEqual(found, [
    'proxy["tcp://0.0.0.0:9911"]: port 9911 is already used by proxy["http://127.0.0.1:9911"]',
    'proxy["tcp://127.0.0.1:9701"]: port 9701 is already used by west.cp ("127.0.0.1:9701")',
  ]);
});

test('egress: tcp://host:port entries allow exactly that address to TCP streams, and nothing to HTTP; other entries allow no TCP', () => {
  const c = parseConfig(base({}, { egress: { L2: ['tcp://127.0.0.1:22', 'tcp://[::1]:22', '127.0.0.1', 'http://127.0.0.1:8080'], '*': ['tcp://db.lan:5432'] } }));
  const e = new EgressPolicy(c.egress ?? new Map<string, string[]>());
  assert.equal(e.allowsTcp('L2', '127.0.0.1', 22), true);
  assert.equal(e.allowsTcp('ws://L2/', '::1', 22), true);
  assert.equal(e.allowsTcp('L2', '127.0.0.1', 23), false);
  assert.equal(e.allowsTcp('L2', '127.0.0.1', 8080), false, 'an http:// entry allows no TCP');
  assert.equal(e.allowsTcp('L2', 'localhost', 22), false, 'names are not resolved: written exactly');
  assert.equal(e.allowsTcp('other', 'db.lan', 5432), true, '"*" counts');
  assert.equal(e.allows('L2', new URL('http://127.0.0.1:22/')), true, 'the bare host entry still allows HTTP on any port');
  assert.equal(e.allows('other', new URL('http://db.lan:5432/')), false, 'a tcp:// entry allows no HTTP');
  assert.match(problems(base({}, { egress: { L2: ['tcp://127.0.0.1'] } })).join('\n'), /or a TCP address like "tcp:\/\/127\.0\.0\.1:22"/);
});
