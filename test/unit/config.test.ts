import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile, parseConfig, parseEndpoint, readConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { DEFAULT_TUNING } from '../../src/config/types.js';

// Compiled to dist/test/unit/, so the repository root is three levels up.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const fixtureSamples = join(repoRoot, 'test/fixtures/original');

/**
 * The original program's sample configs (SPEC §1: each must load unchanged), copied byte for
 * byte from ../shared/original-samples so the test does not depend on a directory outside the
 * checkout.
 */
const ORIGINAL_SAMPLES = [
  'config-sample-case1-G.json',
  'config-sample-case1-L.json',
  'config-sample-case2-G.json',
  'config-sample-case2-L.json',
  'config-sample-case3-G.json',
  'config-sample-case3-L.json',
  'config-sample-case3-L2.json',
];

/** Issues of a config that must fail, as the lines `west check` prints. */
function problems(text: string): string[] {
  try {
    parseConfig(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail(`config was accepted:\n${text}`);
}

const L = 'http://127.0.0.1:9911';
const P = `proxy["${L}"]`;

/** A valid config; each bad case below changes one thing in it. */
function base(): Record<string, any> {
  return {
    west: { nm: 'site-L', cp: '127.0.0.1:9701' },
    wsts: { sp: 'ws://127.0.0.1:9801' },
    wstc: { 'ws://127.0.0.1:9802': { ee: 'yes' } },
    proxy: { [L]: { ea: 'ws://127.0.0.1:9802', '/px': { ou: 'http://127.0.0.1:9921/x' } } },
  };
}

function edited(edit: (c: Record<string, any>) => void): string {
  const config = base();
  edit(config);
  return JSON.stringify(config, null, 2);
}

test('the base config of the bad cases is itself valid', () => {
  assert.doesNotThrow(() => parseConfig(edited(() => {})));
});

test('test/fixtures/original holds exactly the original samples', () => {
  const present = readdirSync(fixtureSamples).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(present, [...ORIGINAL_SAMPLES].sort());
});

for (const name of ORIGINAL_SAMPLES) {
  test(`original sample loads unchanged: ${name}`, async () => {
    const config = await loadConfigFile(join(fixtureSamples, name));
    assert.deepEqual(config.raw, JSON.parse(readFileSync(join(fixtureSamples, name), 'utf8')));
  });
}

test('case2-G resolves: en listener, server, control on all interfaces', async () => {
  const config = await loadConfigFile(join(fixtureSamples, 'config-sample-case2-G.json'));
  assert.equal(config.name, 'ws://case2.G.fiap.org');
  assert.deepEqual(config.control, { host: '', port: 9701 });
  assert.deepEqual(config.server, {
    url: 'ws://127.0.0.1:9801', tls: false, claim: 'replace', host: '127.0.0.1', port: 9801, allowAddresses: [], allowNames: [],
  });
  assert.deepEqual(config.clients, []);
  assert.equal(config.listeners.length, 1);
  const [listener] = config.listeners;
  assert.equal(listener?.key, 'http://127.0.0.1:9931');
  assert.equal(listener?.host, '127.0.0.1');
  assert.equal(listener?.port, 9931);
  assert.deepEqual(listener?.target, { kind: 'en', name: 'ws://case2.L.fiap.org' });
  assert.equal(listener?.mappings[0]?.path, '/pa');
  assert.equal(listener?.mappings[0]?.outgoing.href, 'http://127.0.0.1:9941/a');
  assert.deepEqual(listener?.mappings[0]?.allow, []);
  assert.deepEqual(config.tuning, DEFAULT_TUNING);
});

test('case1-L resolves: an ea implies an early client presenting west.nm', async () => {
  const config = await loadConfigFile(join(fixtureSamples, 'config-sample-case1-L.json'));
  assert.equal(config.server, undefined);
  assert.deepEqual(config.clients, [{ url: 'ws://127.0.0.1:9801', name: 'ws://case1.L.fiap.org:9802', early: true }]);
  assert.deepEqual(config.listeners[0]?.target, { kind: 'ea', url: 'ws://127.0.0.1:9801' });
});

test('case2-L resolves: an empty wstc entry dials early with west.nm', async () => {
  const config = await loadConfigFile(join(fixtureSamples, 'config-sample-case2-L.json'));
  assert.deepEqual(config.clients, [{ url: 'ws://127.0.0.1:9801', name: 'ws://case2.L.fiap.org', early: true }]);
  assert.deepEqual(config.listeners, []);
});

test('an ea reuses its wstc entry (ee, nm) even when spelled differently', () => {
  const config = parseConfig(edited((c) => {
    c.wstc = { 'ws://Relay.example:9802/': { nm: 'other', ee: 'no' } };
    c.proxy[L].ea = 'ws://relay.example:9802';
  }));
  assert.deepEqual(config.clients, [{ url: 'ws://Relay.example:9802/', name: 'other', early: false }]);
  assert.deepEqual(config.listeners[0]?.target, { kind: 'ea', url: 'ws://Relay.example:9802/' });
});

test('mappings: trailing slash dropped, longest first, ca becomes allow', () => {
  const config = parseConfig(edited((c) => {
    c.proxy[L] = {
      en: 'peer',
      '/': { ou: 'http://a/' },
      '/px/': { ou: 'http://b/x', ca: ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'] },
      '/px/deep': { ou: 'https://c/d?q=1' },
    };
  }));
  const mappings = config.listeners[0]?.mappings ?? [];
  assert.deepEqual(mappings.map((m) => m.path), ['/px/deep', '/px', '/']);
  assert.deepEqual(mappings[1]?.allow, ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
  assert.equal(mappings[0]?.outgoing.href, 'https://c/d?q=1');
});

test('tuning keys override the defaults, seconds become milliseconds', () => {
  const config = parseConfig(edited((c) => {
    Object.assign(c.west, {
      responseTimeout: 2.5, connectTimeout: 1, heartbeat: 5, drainTimeout: 3, streamWindow: 65536, maxHops: 3, retryAfter: 0,
      peerWait: 0.5, reconnectMin: 0.1, reconnectMax: 2, maxStreams: 10, maxHeaderSize: 4096, idleTimeout: 60,
      headerTimeout: 7.5, maxConnectionsPerAddress: 0, errorDetail: 'minimal', trustedProxies: ['10.0.0.5', '2001:db8::/32'], wire: 2,
      maxStreamWindow: 1_048_576, maxConnectionWindow: 4_194_304, memoryBudget: 33_554_432,
    });
  }));
  assert.deepEqual(config.tuning, {
    responseTimeoutMs: 2500, connectTimeoutMs: 1000, heartbeatMs: 5000, drainTimeoutMs: 3000,
    streamWindow: 65536, maxStreamWindow: 1_048_576, maxConnectionWindow: 4_194_304, memoryBudget: 33_554_432, maxHops: 3, retryAfterS: 0,
    peerWaitMs: 500, reconnectMinMs: 100, reconnectMaxMs: 2000, maxStreams: 10, maxHeaderSize: 4096, idleTimeoutMs: 60_000,
    headerTimeoutMs: 7500, maxConnectionsPerAddress: 0, errorDetail: 'minimal', trustedProxies: ['10.0.0.5', '2001:db8::/32'], wireVersion: 2,
  });
});

test('the mesh keys: west.wire (3 by default), west.transit and west.relays in canonical names, wstc cost', () => {
  const plain = parseConfig(edited(() => {}));
  assert.equal(plain.tuning.wireVersion, 3);
  assert.equal(plain.transit, undefined, 'no transit by default');
  assert.deepEqual(plain.relays, []);
  const config = parseConfig(edited((c) => {
    Object.assign(c.west, { transit: { 'ws://site-A': ['ws://site-C/', '*'], '*': ['hub'] }, relays: ['ws://hub', '*'] });
    c.wstc = { 'ws://127.0.0.1:9802': { cost: 7 } };
  }));
  assert.deepEqual([...(config.transit ?? [])], [['site-A', ['site-C', '*']], ['*', ['hub']]]);
  assert.deepEqual(config.relays, ['hub', '*']);
  assert.equal(config.clients.find((x) => x.url === 'ws://127.0.0.1:9802')?.cost, 7);
  assert.throws(() => parseConfig(edited((c) => { c.west.wire = 4; c.west.transit = { A: 'C' }; c.west.relays = 'hub'; })), (err: ConfigError) => {
    assert.deepEqual(err.issues.map((i) => i.path).sort(), ['west.relays', 'west.transit.A', 'west.wire']);
    return true;
  });
});

test('west.maxStreamWindow below west.streamWindow is refused with both values named', () => {
  assert.throws(() => parseConfig(edited((c) => { Object.assign(c.west, { streamWindow: 1_048_576, maxStreamWindow: 524_288 }); })),
    /west\.maxStreamWindow: must not be below west\.streamWindow \(1048576\)/);
  assert.throws(() => parseConfig(edited((c) => { Object.assign(c.west, { maxStreamWindow: 100 }); })),
    /west\.maxStreamWindow: must be a whole number from 16384 to 1073741824/);
  // The default cap (32 MiB) stays above the largest streamWindow (16 MiB): windows may grow.
  assert.equal(parseConfig(edited((c) => { c.west.streamWindow = 16_777_216; })).tuning.maxStreamWindow, 33_554_432);
  assert.equal(parseConfig(edited(() => {})).tuning.maxStreamWindow, 33_554_432);
});

test('west.trustedProxies: loopback by default, [] trusts nobody', () => {
  assert.deepEqual(parseConfig(edited(() => {})).tuning.trustedProxies, ['127.0.0.0/8', '::1']);
  assert.deepEqual(parseConfig(edited((c) => { c.west.trustedProxies = []; })).tuning.trustedProxies, []);
});

test('defaults: listener port 18889, wss server port 443, no control port, raw kept as written', () => {
  const text = JSON.stringify({
    west: { nm: 'n' },
    wsts: { sp: 'wss://0.0.0.0', ca: ['10.0.0.0/8', 'ws://site-L'], cert: 'tls/server.crt', key: 'tls/server.key' },
    proxy: { 'http://127.0.0.1': { en: 'ws://peer', '/': { ou: 'http://x' } } },
  });
  // TLS file paths are read relative to the config file's directory.
  const source = join(repoRoot, 'test/fixtures/mem.json');
  const config = parseConfig(`\uFEFF${text}`, source);
  assert.equal(config.source, source);
  assert.equal(config.control, undefined);
  const { tlsMaterial, ...server } = config.server!;
  assert.deepEqual(server, {
    url: 'wss://0.0.0.0', tls: true, claim: 'replace', host: '0.0.0.0', port: 443, allowAddresses: ['10.0.0.0/8'], allowNames: ['site-L'],
  });
  assert.match(String(tlsMaterial?.cert), /BEGIN CERTIFICATE/);
  assert.match(String(tlsMaterial?.key), /BEGIN PRIVATE KEY/);
  assert.equal(config.listeners[0]?.port, 18889);
  assert.deepEqual(config.raw, JSON.parse(text));
});

test('wsts.certNames: true on a wss:// server with wsts.clientCa ties names to certificates; false is the same as absent', () => {
  const source = join(repoRoot, 'test/fixtures/mem.json');
  const load = (certNames: boolean | undefined): unknown => parseConfig(JSON.stringify({
    west: { nm: 'n' },
    wsts: { sp: 'wss://127.0.0.1:9801', cert: 'tls/server.crt', key: 'tls/server.key', clientCa: 'tls/server.crt', certNames },
  }), source).server?.certNames;
  assert.deepEqual([load(true), load(false), load(undefined)], [true, undefined, undefined]);
  assert.doesNotThrow(() => parseConfig(edited((c) => { c.wsts.certNames = false; })), 'false is fine on ws:// too');
});

test('empty sections and URL-like names are valid', () => {
  const config = parseConfig('{"west":{"nm":"ws//case1.G.flap.org"},"wsts":{},"wstc":{},"proxy":{}}');
  assert.equal(config.name, 'ws//case1.G.flap.org');
  assert.equal(config.server, undefined);
});

test('listeners on different hosts may share a port; port 0 never clashes', () => {
  assert.doesNotThrow(() => parseConfig(edited((c) => {
    c.proxy['http://127.0.0.2:9911'] = { en: 'p', '/': { ou: 'http://x' } };
    c.west.cp = ':0';
    c.proxy['http://:0'] = { en: 'p', '/': { ou: 'http://x' } };
  })));
});

interface BadCase {
  name: string;
  text: string;
  expect: string[];
  /** Total issues reported (default 1); proves one problem gives one message. */
  count?: number;
}

const badCases: BadCase[] = [
  { name: 'missing west', text: '{"proxy": {}}', expect: ['west: is required'] },
  { name: 'missing nm', text: edited((c) => delete c.west.nm), expect: ['west.nm: is required'] },
  { name: 'empty nm', text: edited((c) => { c.west.nm = ''; }), expect: ['west.nm: must be a non-empty string'] },
  { name: 'not an object', text: '[1]', expect: ['(top level): must be a JSON object with a "west" section, got a list'] },
  {
    name: 'both ea and en',
    text: edited((c) => { c.proxy[L].en = 'peer'; }),
    expect: [`${P}: needs exactly one of "ea" or "en" (found both)`],
  },
  {
    name: 'neither ea nor en',
    text: edited((c) => delete c.proxy[L].ea),
    expect: [`${P}: needs exactly one of "ea" or "en" (found none)`],
  },
  {
    name: 'listener is not an object',
    text: edited((c) => { c.proxy[L] = 'ws://x'; }),
    expect: [`${P}: must be an object with "ea" or "en"`, 'got "ws://x"'],
  },
  {
    name: 'mapping without ou',
    text: edited((c) => { c.proxy[L]['/px'] = { ca: [] }; }),
    expect: [`${P}["/px"].ou: is required`],
  },
  {
    name: 'bad ou scheme',
    text: edited((c) => { c.proxy[L]['/px'].ou = 'ftp://x'; }),
    expect: [`${P}["/px"].ou: must be an http:// or https:// URL, got "ftp://x"`],
  },
  {
    name: 'malformed ou',
    text: edited((c) => { c.proxy[L]['/px'].ou = 'http//x'; }),
    expect: [`${P}["/px"].ou: must be an http:// or https:// URL, got "http//x"`],
  },
  {
    name: 'ca not a list',
    text: edited((c) => { c.proxy[L]['/px'].ca = '127.0.0.1'; }),
    expect: [`${P}["/px"].ca: must be a list of IP addresses or CIDRs`, 'got "127.0.0.1"'],
  },
  {
    name: 'ca bad CIDR',
    text: edited((c) => { c.proxy[L]['/px'].ca = ['::1', '10.0.0.0/33']; }),
    expect: [`${P}["/px"].ca[1]: must be an IP address or CIDR like "10.0.0.0/8", got "10.0.0.0/33"`],
  },
  {
    name: 'trustedProxies bad entry',
    text: edited((c) => { c.west.trustedProxies = ['127.0.0.1', 'nginx.local']; }),
    expect: ['west.trustedProxies[1]: must be an IP address or CIDR like "10.0.0.0/8", got "nginx.local"'],
  },
  {
    name: 'trustedProxies not a list',
    text: edited((c) => { c.west.trustedProxies = '10.0.0.1'; }),
    expect: ['west.trustedProxies: must be a list of IP addresses or CIDRs'],
  },
  {
    name: 'bad ee',
    text: edited((c) => { c.wstc = { 'ws://127.0.0.1:9801': { ee: 'maybe' } }; }),
    expect: ['wstc["ws://127.0.0.1:9801"].ee: must be "yes" or "no", got "maybe"'],
  },
  {
    name: 'wstc key not a ws URL',
    text: edited((c) => { c.wstc = { 'relay:9801': {} }; }),
    expect: ['wstc["relay:9801"]: must be a ws:// or wss:// URL', 'got "relay:9801"'],
  },
  {
    name: 'unknown top-level key',
    text: edited((c) => { c.extra = {}; }),
    expect: ['extra: is not a known key (expected "west", "wsts", "wstc" or "proxy")'],
  },
  {
    name: 'unknown key in west, with a suggestion',
    text: edited((c) => { c.west.np = 'x'; }),
    expect: ['west.np: is not a known key', 'did you mean "nm"?'],
  },
  {
    name: 'listener key that is neither ea, en nor a path',
    text: edited((c) => { c.proxy[L].px = { ou: 'http://x' }; }),
    expect: [`${P}.px: is not a known key (expected "ea", "en", "cert", "key", "via", "wazigate" or a path starting with "/")`],
  },
  {
    name: 'bad listener address',
    text: edited((c) => { c.proxy['ftp://:9912'] = { en: 'p', '/': { ou: 'http://x' } }; }),
    expect: ['proxy["ftp://:9912"]: must be a listener address "http://host:port" or "https://host:port"'],
  },
  {
    name: 'ea not a ws URL',
    text: edited((c) => { c.proxy[L].ea = 'http://127.0.0.1:9802'; }),
    expect: [`${P}.ea: must be a ws:// or wss:// URL`],
  },
  {
    name: 'tuning out of range',
    text: edited((c) => { Object.assign(c.west, { heartbeat: 0, streamWindow: 100, maxHops: 1.5 }); }),
    expect: [
      'west.heartbeat: must be a number of seconds above 0',
      'west.streamWindow: must be a whole number from 16384 to 16777216 (bytes), got 100',
      'west.maxHops: must be a whole number from 1 to 64, got 1.5',
    ],
    count: 3,
  },
  {
    name: 'listener without mappings',
    text: edited((c) => { c.proxy[L] = { ea: 'ws://127.0.0.1:9802' }; }),
    expect: [`${P}: has no path mappings; add at least one`],
  },
  {
    name: 'duplicate listener port',
    text: edited((c) => { c.proxy['http://:9911'] = { en: 'p', '/': { ou: 'http://x' } }; }),
    expect: [`proxy["http://:9911"]: port 9911 is already used by ${P}`],
  },
  {
    name: 'listener clashing with cp',
    text: edited((c) => { c.west.cp = ':9911'; }),
    expect: [`${P}: port 9911 is already used by west.cp (":9911")`],
  },
  {
    name: 'tunnel server clashing with cp',
    text: edited((c) => { c.wsts.sp = 'ws://0.0.0.0:9701'; }),
    expect: ['wsts.sp: port 9701 is already used by west.cp ("127.0.0.1:9701")'],
  },
  {
    name: 'duplicate mapping path via duplicate JSON key',
    text: `{"west": {"nm": "n"}, "proxy": {"${L}": {"ea": "ws://r", "/px": {"ou": "http://a"}, "/px": {"ou": "http://b"}}}}`,
    expect: [`${P}["/px"]: this mapping path is written more than once in the same object; JSON keeps only the last one`],
  },
  {
    name: 'duplicate listener via duplicate JSON key',
    text: `{"west": {"nm": "n"}, "proxy": {"${L}": {"ea": "ws://r", "/": {"ou": "http://a"}}, "${L}": {"ea": "ws://r", "/": {"ou": "http://a"}}}}`,
    expect: [`${P}: this key is written more than once`],
  },
  {
    name: '"/px" vs "/px/"',
    text: edited((c) => { c.proxy[L]['/px/'] = { ou: 'http://y' }; }),
    expect: [`${P}["/px/"]: is the same path as "/px" (a trailing "/" does not count)`],
  },
  {
    name: 'mapping path with a query',
    text: edited((c) => { c.proxy[L]['/q?a=1'] = { ou: 'http://y' }; }),
    expect: [`${P}["/q?a=1"]: a mapping path cannot contain "?" or "#"`],
  },
  {
    name: 'en without any tunnel (no wsts.sp, no wstc, no ea)',
    text: edited((c) => { delete c.wsts.sp; c.wstc = {}; c.proxy = { [L]: { en: 'peer', '/': { ou: 'http://x' } } }; }),
    expect: [`${P}.en: names a peer that connects to this node's tunnel server, but wsts.sp is not set`],
  },
  {
    name: 'via without en',
    text: edited((c) => { c.proxy[L].via = ['hub']; }),
    expect: [`${P}.via: pins a path to the node "en" names: it needs "en"`],
  },
  {
    name: 'via naming the en node',
    text: edited((c) => { c.proxy[L] = { en: 'site-C', via: ['hub', 'ws://site-C'], '/': { ou: 'http://x' } }; }),
    expect: [`${P}.via: lists the nodes between this one and the "en" node`],
  },
  {
    name: 'via that is not a list of names',
    text: edited((c) => { c.proxy[L] = { en: 'site-C', via: 'hub', '/': { ou: 'http://x' } }; }),
    expect: [`${P}.via: must be a list of node names`],
  },
  {
    name: 'en naming this node',
    text: edited((c) => { c.proxy[L] = { en: 'ws://site-L', '/': { ou: 'http://x' } }; }),
    expect: [`${P}.en: names this node itself`],
  },
  {
    name: 'two wstc keys for one server',
    text: edited((c) => { c.wstc['WS://127.0.0.1:9802/'] = {}; }),
    expect: ['wstc["WS://127.0.0.1:9802/"]: names the same tunnel server as wstc["ws://127.0.0.1:9802"]'],
  },
  {
    name: 'JSON syntax error with line number',
    text: '{\n  "west": { "nm": "n" },\n  "proxy": {},\n}\n',
    expect: ['line 4, column 1: invalid JSON: a comma before "}" is not allowed in JSON'],
  },
  {
    name: 'JSON comment',
    text: '{\n  // my node\n  "west": { "nm": "n" }\n}',
    expect: ['line 2, column 3: invalid JSON: comments are not allowed in JSON'],
  },
  {
    name: 'wsts.certNames not a boolean',
    text: edited((c) => { c.wsts.certNames = 'yes'; }),
    expect: ['wsts.certNames: must be true or false, got "yes"'],
  },
  {
    name: 'wsts.certNames on a ws:// tunnel server',
    text: edited((c) => { c.wsts.certNames = true; }),
    expect: ['wsts.certNames: is only used by a wss:// tunnel server (wsts.sp) that requires client certificates (wsts.clientCa)'],
  },
  {
    name: 'wsts.certNames on a wss:// tunnel server without wsts.clientCa',
    text: edited((c) => { c.wsts = { sp: 'wss://127.0.0.1:9801', cert: 'a.crt', key: 'a.key', certNames: true }; }),
    expect: ['wsts.certNames: is only used by a wss:// tunnel server (wsts.sp) that requires client certificates (wsts.clientCa)'],
  },
  {
    name: 'several errors at once, in file order',
    text: JSON.stringify({
      west: { cp: 'nope', colour: 1 },
      wstc: { 'ws://r:1': { ee: 'maybe' } },
      proxy: { 'http://:9911': { '/px': { ou: 'ftp://x' } } },
    }),
    expect: [
      'west.nm: is required',
      'west.cp: must be "host:port" or ":port" (port 0-65535), got "nope"',
      'west.colour: is not a known key',
      'wstc["ws://r:1"].ee: must be "yes" or "no", got "maybe"',
      'proxy["http://:9911"]: needs exactly one of "ea" or "en" (found none)',
      'proxy["http://:9911"]["/px"].ou: must be an http:// or https:// URL, got "ftp://x"',
    ],
    count: 6,
  },
];

for (const bad of badCases) {
  test(`rejects: ${bad.name}`, () => {
    const found = problems(bad.text);
    for (const want of bad.expect) {
      assert.ok(found.some((line) => line.includes(want)), `expected ${JSON.stringify(want)} in:\n${found.join('\n')}`);
    }
    assert.equal(found.length, bad.count ?? 1, `issue count; got:\n${found.join('\n')}`);
  });
}

test('several errors: issues come in file order', () => {
  const last = badCases[badCases.length - 1];
  assert.ok(last);
  const found = problems(last.text);
  last.expect.forEach((want, index) => assert.ok(found[index]?.includes(want), `${index}: ${found[index]}`));
});

test('ConfigError message names the file and lists every issue', () => {
  assert.throws(() => parseConfig('{"west":{}}', 'site.json'), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, 'site.json: invalid config (1 problem):\n  west.nm: is required');
    assert.equal(err.issues[0]?.file, 'site.json');
    return true;
  });
});

test('unreadable file is a ConfigError with a one-line message', async () => {
  const missing = join(repoRoot, 'test/fixtures/does-not-exist.json');
  await assert.rejects(loadConfigFile(missing), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, `cannot read config file ${missing}: no such file`);
    return true;
  });
});

const endpoints: [string, number | undefined, { host: string; port: number }][] = [
  ['127.0.0.1:9701', undefined, { host: '127.0.0.1', port: 9701 }],
  [':9701', undefined, { host: '', port: 9701 }],
  ['localhost:80', undefined, { host: 'localhost', port: 80 }],
  ['[::1]:9701', undefined, { host: '::1', port: 9701 }],
  ['0.0.0.0:0', undefined, { host: '0.0.0.0', port: 0 }],
  ['example.org', 18889, { host: 'example.org', port: 18889 }],
  ['[::]', 18889, { host: '::', port: 18889 }],
];
for (const [text, defaultPort, want] of endpoints) {
  test(`parseEndpoint(${JSON.stringify(text)}, ${defaultPort})`, () => {
    assert.deepEqual(parseEndpoint(text, defaultPort), want);
  });
}

const badEndpoints: [string, RegExp][] = [
  ['example.org', /the port is missing/],
  ['', /expected "host:port"/],
  [':', /"" is not a port number/],
  [':70000', /"70000" is not a port number/],
  ['h:x', /"x" is not a port number/],
  ['::1:80', /expected "host:port"/],
  ['[zz]:1', /"\[zz\]" is not an IPv6 address/],
  ['a b:1', /"a b" is not a host name/],
  ['http://h:1', /expected "host:port"/],
];
for (const [text, message] of badEndpoints) {
  test(`parseEndpoint rejects ${JSON.stringify(text)}`, () => {
    assert.throws(() => parseEndpoint(text), message);
  });
}

test('skipSecrets (west check --skip-secrets): tokens and TLS keys not on this machine are listed, not errors; certificates and other problems still are', () => {
  const tls = join(repoRoot, 'sample/hardened/tls');
  const config = {
    west: { nm: 'n', cpToken: { env: 'WEST_TEST_SURELY_UNSET' } },
    wsts: { sp: 'wss://127.0.0.1:9801', cert: join(tls, 'relay.crt'), key: '/nonexistent/relay.key', tokens: { site: { file: '/nonexistent/site.token' } } },
  };
  const text = JSON.stringify(config);
  assert.throws(() => readConfig(text, 'n.json'), (err: unknown) => err instanceof ConfigError && err.issues.length === 3);
  const { config: read, skipped } = readConfig(text, 'n.json', { skipSecrets: true });
  assert.equal(read.controlToken, undefined);
  assert.deepEqual(skipped.map((s) => s.path), ['west.cpToken.env', 'wsts.key', 'wsts.tokens.site.file']);
  assert.match(skipped[0]?.message ?? '', /environment variable WEST_TEST_SURELY_UNSET is not set/);
  const noCert = JSON.stringify({ ...config, wsts: { ...config.wsts, cert: '/nonexistent/relay.crt' } });
  assert.throws(() => readConfig(noCert, 'n.json', { skipSecrets: true }), /wsts\.cert: cannot read "\/nonexistent\/relay\.crt": no such file/);
});

test('a value of the wrong type for a key of several forms is one finding, not a crash or a pass', () => {
  // The branches' type errors used to hide the oneOf that failed: a token of 5 reached the loader.
  for (const token of [5, true]) {
    assert.throws(() => parseConfig(JSON.stringify({ west: { nm: 'a' }, wstc: { 'ws://127.0.0.1:1': { token } } }), ''),
      (err: unknown) => err instanceof ConfigError && err.message.includes('token: must be a token string'), String(token));
  }
  assert.throws(() => parseConfig(JSON.stringify({ west: { nm: 'a', workers: '2' } }), ''),
    (err: unknown) => err instanceof ConfigError && err.message.includes('west.workers: must be a whole number'));
});
