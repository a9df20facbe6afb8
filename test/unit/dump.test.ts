import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entry } from '../helpers/at.js';
import { pythonJson, renderDump } from '../../src/control/dump.js';
import type { NodeState, PeerState, RouteState, TunnelState } from '../../src/control/state.js';

type Json = Parameters<typeof pythonJson>[0];

// Expected strings are what Python 3 prints for
// json.dumps(value, sort_keys=True, indent=4, separators=(',', ':')).
const PYTHON: { name: string; value: Json; want: string }[] = [
  { name: 'empty object', value: {}, want: '{}' },
  { name: 'empty array', value: [], want: '[]' },
  { name: 'null', value: null, want: 'null' },
  { name: 'true', value: true, want: 'true' },
  { name: 'false', value: false, want: 'false' },
  { name: 'zero', value: 0, want: '0' },
  { name: 'a port number', value: 9701, want: '9701' },
  { name: 'a negative integer', value: -42, want: '-42' },
  { name: 'a fraction', value: 1.5, want: '1.5' },
  { name: 'a decimal fraction', value: 0.1, want: '0.1' },
  { name: 'a plain string', value: 'ws://127.0.0.1:9801', want: '"ws://127.0.0.1:9801"' },
  { name: 'quote and backslash escaped', value: 'a"b\\c', want: '"a\\"b\\\\c"' },
  { name: 'control characters escaped', value: '\n\t\r\b\f\u0001\u001f', want: '"\\n\\t\\r\\b\\f\\u0001\\u001f"' },
  { name: 'DEL escaped', value: '\u007f', want: '"\\u007f"' },
  { name: 'Latin-1 escaped', value: 'café', want: '"caf\\u00e9"' },
  { name: 'CJK escaped', value: '日本', want: '"\\u65e5\\u672c"' },
  { name: 'astral character escaped as a surrogate pair', value: '😀', want: '"\\ud83d\\ude00"' },
  { name: 'line separator escaped', value: '\u2028', want: '"\\u2028"' },
  { name: 'non-ASCII keys escaped', value: { 'ü': 1 }, want: '{\n    "\\u00fc":1\n}' },
  { name: 'keys sorted (upper-case first)', value: { b: 1, a: 2, B: 3 }, want: '{\n    "B":3,\n    "a":2,\n    "b":1\n}' },
  { name: 'array of scalars', value: ['127.0.0.1', 34848], want: '[\n    "127.0.0.1",\n    34848\n]' },
  { name: 'empty containers inside containers', value: [[], {}, [[]]], want: '[\n    [],\n    {},\n    [\n        []\n    ]\n]' },
  {
    name: 'nested objects and arrays',
    value: { wstc: { 'ws://x': { so: ['127.0.0.1', 1], ee: 'no' } }, n: null, ok: true },
    want: [
      '{',
      '    "n":null,',
      '    "ok":true,',
      '    "wstc":{',
      '        "ws://x":{',
      '            "ee":"no",',
      '            "so":[',
      '                "127.0.0.1",',
      '                1',
      '            ]',
      '        }',
      '    }',
      '}',
    ].join('\n'),
  },
  {
    name: 'the original control-port west object',
    value: { addr: '127.0.0.1', cp: '127.0.0.1:9701', nm: 'ws://case2.G.fiap.org', port: 9701 },
    want: '{\n    "addr":"127.0.0.1",\n    "cp":"127.0.0.1:9701",\n    "nm":"ws://case2.G.fiap.org",\n    "port":9701\n}',
  },
];

for (const c of PYTHON) {
  test(`pythonJson: ${c.name}`, () => {
    assert.equal(pythonJson(c.value), c.want);
  });
}

// ---- renderDump ----

const EN = 'ws://case2.L.fiap.org';
const LISTENER_KEY = 'http://127.0.0.1:9911';

const PEER: PeerState = {
  name: 'case2.L.fiap.org', address: '127.0.0.1', port: 34848, since: '2025-01-01T00:00:00.000Z',
  streams: 2, streamsOpened: 5, bytesIn: 10, bytesOut: 20, wire: 'west.v3',
};

const TUNNEL: TunnelState = {
  url: 'ws://relay.example:9801', as: 'case2.G.fiap.org', early: true, state: 'connected', connected: true,
  since: '2025-01-01T00:00:01.000Z', peer: 'relay', address: '192.0.2.1', port: 9801,
  streams: 0, bytesIn: 0, bytesOut: 0, connects: 1, lastError: undefined, wire: 'west.v3',
};

/** A tunnel server node with one `en` listener, as in the spec's control-port example. */
function state(opts: { peers?: PeerState[]; tunnels?: TunnelState[]; routes?: RouteState[] } = {}): NodeState {
  return {
    name: 'ws://case2.G.fiap.org',
    version: '0.1.0',
    pid: 4242,
    startedAt: '2025-01-01T00:00:00.000Z',
    uptimeS: 12,
    raw: {
      west: { nm: 'ws://case2.G.fiap.org', cp: '127.0.0.1:9701' },
      wsts: { sp: 'ws://127.0.0.1:9801' },
      proxy: { [LISTENER_KEY]: { en: EN, '/px': { ou: 'http://127.0.0.1:9921/x' } } },
    },
    control: { host: '127.0.0.1', port: 9701 },
    server: { url: 'ws://127.0.0.1:9801', host: '127.0.0.1', port: 9801, peers: opts.peers ?? [] },
    tunnels: opts.tunnels ?? [],
    routes: opts.routes ?? [],
    listeners: [{
      key: LISTENER_KEY, host: '127.0.0.1', port: 9911, target: { en: EN }, connected: (opts.peers ?? []).length > 0,
      mappings: [{ path: '/px', ou: 'http://127.0.0.1:9921/x', ca: [] }], requests: 3, inFlight: 1, statuses: { '200': 3 },
    }],
  };
}

/** The dump's sections: name -> text of its JSON (without the header line). */
function sectionTexts(text: string): Map<string, string> {
  const heads = [...text.matchAll(/^--- (\w+) object ---\n/gm)];
  return new Map(heads.map((m, i) => [m[1] ?? '', text.slice(m.index + m[0].length, heads[i + 1]?.index ?? text.length)]));
}

/** The dump's sections, each one's JSON parsed. */
function sections(text: string): Record<string, Record<string, unknown>> {
  return Object.fromEntries([...sectionTexts(text)].map(([name, json]) => [name, JSON.parse(json) as Record<string, unknown>]));
}

/** One section's text, header line included. */
function sectionText(text: string, name: string): string {
  return `--- ${name} object ---\n${sectionTexts(text).get(name) ?? ''}`;
}

test('renderDump: the four section headers, in order', () => {
  const headers = renderDump(state()).split('\n').filter((l) => l.startsWith('---'));
  assert.deepEqual(headers, ['--- west object ---', '--- wsts object ---', '--- wstc object ---', '--- proxy object ---']);
});

test('renderDump: the mesh\'s routes come after the original sections, by destination, on a node whose en is routed beyond its peers', () => {
  const route: RouteState = { name: 'case2.L.fiap.org', nextHop: 'hub', path: ['hub', 'case2.L.fiap.org'], hops: 2, cost: 2, since: '2025-01-01T00:00:02.000Z', ageS: 10 };
  const text = renderDump(state({ routes: [route] }));
  const headers = text.split('\n').filter((l) => l.startsWith('---'));
  assert.deepEqual(headers, ['--- west object ---', '--- wsts object ---', '--- wstc object ---', '--- proxy object ---', '--- routes object ---']);
  assert.match(sectionText(text, 'routes'), /"case2\.L\.fiap\.org":\{\n\s+"ageS":10,\n\s+"cost":2,\n\s+"hops":2,\n\s+"nextHop":"hub",/);
});

test('renderDump: a classic deployment (its routes are its own peers) keeps the original four sections', () => {
  const direct: RouteState = { name: 'case2.L.fiap.org', nextHop: 'case2.L.fiap.org', path: ['case2.L.fiap.org'], hops: 1, cost: 1, since: '2025-01-01T00:00:02.000Z', ageS: 10 };
  const far: RouteState = { name: 'other', nextHop: 'case2.L.fiap.org', path: ['case2.L.fiap.org', 'other'], hops: 2, cost: 2, since: '2025-01-01T00:00:02.000Z', ageS: 10 };
  const headers = renderDump(state({ routes: [direct, far] })).split('\n').filter((l) => l.startsWith('---'));
  assert.deepEqual(headers, ['--- west object ---', '--- wsts object ---', '--- wstc object ---', '--- proxy object ---']);
});

test('renderDump: every section is a header line and one JSON document, nothing else', () => {
  const text = renderDump(state());
  assert.match(text, /^--- west object ---\n\{\n[\s\S]*\n\}\n--- wsts object ---\n\{\n[\s\S]*\n\}\n--- wstc object ---\n\{\n[\s\S]*\n\}\n--- proxy object ---\n\{\n[\s\S]*\n\}\n$/);
});

test('renderDump: sections are Python-style JSON (what pythonJson prints of their parsed value)', () => {
  const text = renderDump(state({ peers: [PEER], tunnels: [TUNNEL] }));
  const parsed = sections(text);
  const rebuilt = (['west', 'wsts', 'wstc', 'proxy'] as const).map((n) => `--- ${n} object ---\n${pythonJson(parsed[n] as Json)}\n`).join('');
  assert.equal(text, rebuilt);
});

const FIELDS: { name: string; state: () => NodeState; section: string; pick: (s: Record<string, unknown>) => unknown; want: unknown }[] = [
  { name: 'west keeps nm and cp', state: () => state(), section: 'west', pick: (s) => [s.nm, s.cp], want: ['ws://case2.G.fiap.org', '127.0.0.1:9701'] },
  { name: 'west has the control addr and port', state: () => state(), section: 'west', pick: (s) => [s.addr, s.port], want: ['127.0.0.1', 9701] },
  { name: 'wsts keeps sp', state: () => state(), section: 'wsts', pick: (s) => s.sp, want: 'ws://127.0.0.1:9801' },
  { name: 'wsts has the server addr and port', state: () => state(), section: 'wsts', pick: (s) => [s.addr, s.port], want: ['127.0.0.1', 9801] },
  { name: 'an en peer that is absent is "unconnected"', state: () => state(), section: 'wstc', pick: (s) => (s[EN] as Record<string, unknown>).so, want: 'unconnected' },
  { name: 'an en peer has ee "no" and this node\'s nm', state: () => state(), section: 'wstc', pick: (s) => { const e = s[EN] as Record<string, unknown>; return [e.ee, e.nm]; }, want: ['no', 'ws://case2.G.fiap.org'] },
  { name: 'a connected en peer (bare name) is [addr, port]', state: () => state({ peers: [PEER] }), section: 'wstc', pick: (s) => (s[EN] as Record<string, unknown>).so, want: ['127.0.0.1', 34848] },
  { name: 'a connected en peer (URL-style name) is [addr, port]', state: () => state({ peers: [{ ...PEER, name: EN }] }), section: 'wstc', pick: (s) => (s[EN] as Record<string, unknown>).so, want: ['127.0.0.1', 34848] },
  { name: 'another peer does not connect the en', state: () => state({ peers: [{ ...PEER, name: 'someone-else' }] }), section: 'wstc', pick: (s) => (s[EN] as Record<string, unknown>).so, want: 'unconnected' },
  { name: 'a connected dialed tunnel is [addr, port]', state: () => state({ tunnels: [TUNNEL] }), section: 'wstc', pick: (s) => (s[TUNNEL.url] as Record<string, unknown>).so, want: ['192.0.2.1', 9801] },
  { name: 'a dialed tunnel that is down is "unconnected"', state: () => state({ tunnels: [{ ...TUNNEL, connected: false, state: 'backoff' }] }), section: 'wstc', pick: (s) => (s[TUNNEL.url] as Record<string, unknown>).so, want: 'unconnected' },
  { name: 'a dialed tunnel shows ee and the name presented', state: () => state({ tunnels: [TUNNEL] }), section: 'wstc', pick: (s) => { const e = s[TUNNEL.url] as Record<string, unknown>; return [e.ee, e.nm]; }, want: ['yes', 'case2.G.fiap.org'] },
  { name: 'proxy listener has addr and port', state: () => state(), section: 'proxy', pick: (s) => { const e = s[LISTENER_KEY] as Record<string, unknown>; return [e.addr, e.port]; }, want: ['127.0.0.1', 9911] },
  { name: 'proxy listener keeps en and its mapping', state: () => state(), section: 'proxy', pick: (s) => { const e = s[LISTENER_KEY] as Record<string, unknown>; return [e.en, e['/px']]; }, want: [EN, { ou: 'http://127.0.0.1:9921/x' }] },
];

for (const c of FIELDS) {
  test(`renderDump: ${c.name}`, () => {
    assert.deepEqual(c.pick(entry(sections(renderDump(c.state())), c.section)), c.want);
  });
}

test('renderDump: the wstc section of an unconnected en peer, byte for byte', () => {
  assert.equal(sectionText(renderDump(state()), 'wstc'), [
    '--- wstc object ---',
    '{',
    '    "ws://case2.L.fiap.org":{',
    '        "ee":"no",',
    '        "nm":"ws://case2.G.fiap.org",',
    '        "so":"unconnected"',
    '    }',
    '}',
    '',
  ].join('\n'));
});

test('renderDump: a connected en peer keeps the original keys in the original layout', () => {
  const text = sectionText(renderDump(state({ peers: [PEER] })), 'wstc');
  assert.match(text, /\n {8}"ee":"no",\n[\s\S]*\n {8}"nm":"ws:\/\/case2\.G\.fiap\.org",\n {8}"so":\[\n {12}"127\.0\.0\.1",\n {12}34848\n {8}\]\n/);
});

test('renderDump: does not modify the raw config it reports', () => {
  const s = state({ peers: [PEER], tunnels: [TUNNEL] });
  const before = JSON.stringify(s.raw);
  renderDump(s);
  assert.equal(JSON.stringify(s.raw), before);
});

test('renderDump: a node without control port, server or listeners still has all four sections', () => {
  const s: NodeState = { ...state(), raw: { west: { nm: 'solo' } }, control: undefined, server: undefined, listeners: [] };
  assert.deepEqual(Object.keys(sections(renderDump(s))), ['west', 'wsts', 'wstc', 'proxy']);
});

test('renderDump: tokens never appear, whether inline, from a file or from the environment', () => {
  const s = state();
  s.raw = {
    ...s.raw,
    west: { ...s.raw.west, cpToken: 'cp-secret-1' },
    wsts: { sp: 'ws://127.0.0.1:9801', tokens: { 'site-L': 'peer-secret-2', '*': { file: '/etc/west/any-token' } } },
    wstc: { 'ws://relay:9801': { token: { env: 'WEST_TOKEN_3' } } },
  };
  const text = renderDump(s);
  for (const secret of ['cp-secret-1', 'peer-secret-2', '/etc/west/any-token', 'WEST_TOKEN_3']) {
    assert.ok(!text.includes(secret), `${secret} leaked into the dump`);
  }
  const parsed = sections(text);
  assert.deepEqual((parsed.wsts as { tokens: unknown }).tokens, { '*': '[redacted]', 'site-L': '[redacted]' });
  assert.equal((parsed.west as { cpToken: unknown }).cpToken, '[redacted]');
});
