/**
 * `west check a.json b.json ...` as one deployment, run as the real CLI: the four samples are
 * sound and draw their chains; each broken set in test/fixtures/topologies/ reports exactly its
 * problems, each with the file and JSON path; warnings never change the exit status.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { walkChains } from '../../src/check/chains.js';
import { Deployment } from '../../src/check/deployment.js';
import { accepts, isLoopback, overlaps } from '../../src/check/hosts.js';
import { parseConfig } from '../../src/config/load.js';
import { ROOT, runCli, SAMPLES, stopAll, tempDir, writeConfig } from '../helpers/west.js';

const SETS = path.join(ROOT, 'test', 'fixtures', 'topologies');

/** A sample config as JSON, to edit one key. */
interface RawNodeJson {
  west: Record<string, unknown>;
}

function jsonFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f));
}

interface Reported {
  severity: string;
  /** File name only (the CLI prints the path as given). */
  file: string;
  path: string;
  rule: string;
  message: string;
}

/** `  error: <file>: <json path>: <rule>: <message>` lines (a JSON path never contains ": "). */
function findings(stdout: string): Reported[] {
  const out: Reported[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*(error|warning): (.*)$/.exec(line);
    if (!m) continue;
    const [, severity = '', text = ''] = m;
    const [file = '', jsonPath = '', rule = '', ...rest] = text.split(': ');
    out.push({ severity, file: path.basename(file), path: jsonPath, rule, message: rest.join(': ') });
  }
  return out;
}

/** The lines under "  chains:" (each one chain). */
function chains(stdout: string): string[] {
  const lines = stdout.split('\n');
  const start = lines.indexOf('  chains:');
  if (start < 0) return [];
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('    ')) break;
    out.push(line.trim());
  }
  return out;
}

/** The lines under "  tunnels:". */
function tree(stdout: string): string[] {
  const lines = stdout.split('\n');
  const start = lines.indexOf('  tunnels:');
  const end = lines.indexOf('  chains:');
  return start < 0 ? [] : lines.slice(start + 1, end).map((l) => l.slice(4));
}

const key = (f: Pick<Reported, 'severity' | 'file' | 'path' | 'rule'>): string => `${f.severity} ${f.file} ${f.path} ${f.rule}`;

const relay = (file: string): Expected => ({ severity: 'warning', file, path: 'wsts.sp', rule: 'open relay', message: /can make .* fetch any URL it can reach \(no west\.egress allowlist\)/ });

/** The open-relay warning for a node that runs no tunnel server but dials some, without `west.egress`. */
const clientRelay = (file: string, message = /the tunnel servers? .* can make .* fetch any URL it can reach \(no west\.egress allowlist\)/): Expected =>
  ({ severity: 'warning', file, path: 'west', rule: 'open relay', message });

/** A control port on every interface without west.cpToken (the original's ":port" habit). */
const openCp = (file: string): Expected => ({ severity: 'warning', file, path: 'west.cp', rule: 'open control port', message: /listens on every interface without west\.cpToken/ });

/** A listener on every interface whose mappings have no `ca`. */
const noCa = (file: string, listener: string): Expected =>
  ({ severity: 'warning', file, path: `proxy[${JSON.stringify(listener)}]`, rule: 'no ca', message: /has no "ca": any client that reaches \*:\d+ can use it/ });

interface Expected {
  severity: 'error' | 'warning';
  file: string;
  path: string;
  rule: string;
  message?: RegExp;
}

interface SetCase {
  set: string;
  exit: 0 | 1;
  findings: Expected[];
  chains?: string[];
  tree?: string[];
}

const CASES: SetCase[] = [
  {
    set: 'loop', exit: 1,
    findings: [
      { severity: 'error', file: 'B.json', path: 'proxy["http://127.0.0.1:9912"]["/b"].ou', rule: 'loop', message: /goes back to A:9911, which the request already passed: A:9911\/a -> B:9912\/b -> A:9911\/a \(west answers 508\)/ },
      relay('B.json'), clientRelay('A.json'),
    ],
    chains: ['A:9911/a -> B:9912/b -> A:9911/a [loop]'],
  },
  {
    set: 'unknown-name', exit: 1,
    findings: [
      { severity: 'error', file: 'G.json', path: 'proxy["http://127.0.0.1:9931"].en', rule: 'unknown name', message: /no config in this deployment connects as "ws:\/\/nobody\.example" \(nodes here: G, L, L2\)/ },
      { severity: 'error', file: 'G.json', path: 'proxy["http://127.0.0.1:9932"].en', rule: 'unknown name', message: /"L2", which connects to "ws:\/\/127\.0\.0\.1:9802" \(served by L\), not to this node's tunnel server "ws:\/\/127\.0\.0\.1:9801"; the mesh reaches it through L -> L2, but L does not relay streams from G to L2 \(west\.transit\)/ },
      relay('G.json'), relay('L.json'), clientRelay('L2.json', /^the tunnel server ws:\/\/127\.0\.0\.1:9802 can make L2 fetch/),
    ],
    chains: ['G:9931/pa -> ? (no peer nobody.example)', 'G:9932/pb -> ? (no peer L2; L does not relay streams from G to L2 (west.transit))'],
  },
  {
    // The same deployment where G does not believe its client L about L2 (west.learn's default).
    set: 'unlearned', exit: 1,
    findings: [
      { severity: 'error', file: 'G.json', path: 'proxy["http://127.0.0.1:9932"].en', rule: 'unknown name', message: /the mesh could reach it through L -> L2, but G does not learn the route to L2 from L, a client of its tunnel server \(west\.learn\): requests would get 503/ },
      relay('G.json'), relay('L.json'), clientRelay('L2.json', /^the tunnel server ws:\/\/127\.0\.0\.1:9802 can make L2 fetch/),
    ],
    chains: ['G:9932/pb -> ? (no peer L2; G does not learn the route to L2 from L, a client of its tunnel server (west.learn))'],
  },
  {
    set: 'missing-server', exit: 1,
    findings: [
      { severity: 'error', file: 'L.json', path: 'wstc["ws://relay.example.org:9801"]', rule: 'missing server', message: /no config in this deployment serves "ws:\/\/relay\.example\.org:9801"/ },
      { severity: 'error', file: 'L.json', path: 'proxy["http://127.0.0.1:9911"].ea', rule: 'missing server', message: /serves "ws:\/\/127\.0\.0\.1:9899"/ },
      relay('G.json'),
      clientRelay('L.json', /^the tunnel servers ws:\/\/127\.0\.0\.1:9801, ws:\/\/relay\.example\.org:9801, ws:\/\/127\.0\.0\.1:9899 can make L fetch any URL it can reach \(no west\.egress allowlist\)$/),
    ],
    chains: ['L:9911/px -> ? (no server for ws://127.0.0.1:9899)'],
  },
  {
    set: 'port-clash', exit: 1,
    findings: [
      { severity: 'error', file: 'L.json', path: 'west.cp', rule: 'port clash', message: /\*:9701 is also bound by .*G\.json west\.cp/ },
      { severity: 'error', file: 'L.json', path: 'proxy["http://:9801"]', rule: 'port clash', message: /\*:9801 is also bound by .*G\.json wsts\.sp \(127\.0\.0\.1:9801\)/ },
      relay('G.json'), clientRelay('L.json', /^the tunnel server ws:\/\/localhost:9801 can make L fetch/),
      openCp('G.json'), openCp('L.json'), noCa('L.json', 'http://:9801'),
    ],
  },
  {
    set: 'open-relay', exit: 0,
    findings: [relay('G.json'), clientRelay('L.json', /^the tunnel server ws:\/\/127\.0\.0\.1:9801 can make L fetch any URL it can reach \(no west\.egress allowlist\)$/)],
    chains: ['G:9931/pa -> L -> http://127.0.0.1:9941/a'],
  },
  {
    set: 'egress', exit: 0,
    findings: [clientRelay('L.json')],
    chains: ['L:9911/px -> G -> http://127.0.0.1:9921/x'],
  },
  {
    set: 'no-mapping', exit: 1,
    findings: [
      { severity: 'error', file: 'L.json', path: 'proxy["http://127.0.0.1:9951"]["/bx"].ou', rule: 'no mapping', message: /leads to G:9961 .* no mapping for \/zz; requests would get 404/ },
      relay('G.json'), clientRelay('L.json'), clientRelay('L2.json'),
    ],
    chains: ['G:9961/by -> L2 -> http://127.0.0.1:9971/b', 'L:9951/bx -> G:9961/zz [no mapping: 404]'],
  },
  {
    set: 'duplicate-name', exit: 1,
    findings: [
      { severity: 'error', file: 'L.json', path: 'west.nm', rule: 'duplicate name', message: /G\.json is also named "site"/ },
      relay('G.json'), clientRelay('L.json'),
    ],
  },
  {
    set: 'name-claimed-twice', exit: 1,
    findings: [
      { severity: 'error', file: 'L2.json', path: 'wstc["ws://127.0.0.1:9801"]', rule: 'name claimed twice', message: /connects to G as "edge", as does L1/ },
      relay('G.json'), clientRelay('L1.json'), clientRelay('L2.json'),
    ],
  },
  {
    set: 'dials-late', exit: 1,
    findings: [
      { severity: 'error', file: 'G.json', path: 'proxy["http://127.0.0.1:9931"].en', rule: 'dials late', message: /never dials this node: wstc\["ws:\/\/127\.0\.0\.1:9801"\] has "ee": "no"/ },
      relay('G.json'), clientRelay('L.json'),
    ],
  },
  {
    set: 'hop-limit', exit: 1,
    findings: [
      { severity: 'error', file: 'L.json', path: 'proxy["http://127.0.0.1:9951"]["/bx"].ou', rule: 'hop limit', message: /reaches G:9961 after 1 west listener, but that node allows at most 1/ },
      relay('G.json'), clientRelay('L.json'), clientRelay('L2.json'),
    ],
    chains: ['L:9951/bx -> G:9961/by -> L2 -> http://127.0.0.1:9971/b'],
  },
  {
    set: 'wrong-scheme', exit: 1,
    findings: [
      { severity: 'error', file: 'L.json', path: 'wstc["wss://127.0.0.1:9801"]', rule: 'missing server', message: /listens there with wsts\.sp "ws:\/\/127\.0\.0\.1:9801" \(ws:\/\/ and wss:\/\/ do not mix\)/ },
      relay('G.json'), clientRelay('L.json', /^the tunnel server wss:\/\/127\.0\.0\.1:9801 can make L fetch/),
    ],
    tree: ['G  (tunnel server ws://127.0.0.1:9801)', '? wss://127.0.0.1:9801  (no config serves it)', '└─ L'],
  },
  {
    set: 'two-machines', exit: 0,
    findings: [
      relay('G.json'), clientRelay('L.json', /^the tunnel server ws:\/\/relay\.example\.org:9801 can make site-l fetch/),
      openCp('G.json'), openCp('L.json'), noCa('G.json', 'http://:9931'),
    ],
    chains: ['relay.example.org:9931/pa -> site-l -> http://127.0.0.1:9941/a'],
  },
  {
    set: 'ambiguous', exit: 0,
    findings: [
      { severity: 'warning', file: 'L.json', path: 'wstc["ws://relay.example.org:9801"]', rule: 'ambiguous server', message: /could be served by G1 .* or G2 .*; the check assumes G1/ },
      relay('G1.json'), relay('G2.json'), clientRelay('L.json'),
      openCp('G1.json'), openCp('G2.json'), openCp('L.json'),
    ],
  },
  {
    set: 'ring', exit: 0,
    findings: [relay('A.json'), relay('B.json')],
    tree: [
      'A  (tunnel server ws://127.0.0.1:9801)',
      '└─ B  (tunnel server ws://127.0.0.1:9802)',
      '   └─ A  (tunnel server ws://127.0.0.1:9801)  (see above)',
    ],
  },
  {
    set: 'beside', exit: 1,
    findings: [
      { severity: 'error', file: 'X.json', path: 'west.cp', rule: 'port clash', message: /\*:9702 is also bound by .*L\.json west\.cp .*X and L run on one machine/ },
      relay('G.json'), clientRelay('L.json'), clientRelay('X.json', /^the tunnel server ws:\/\/relay\.example\.org:9801 can make X fetch/),
      openCp('G.json'), openCp('L.json'), openCp('X.json'), noCa('G.json', 'http://:9931'),
    ],
    chains: ['G:9931/pa -> L -> X:9961/x -> G -> http://127.0.0.1:9971/y'],
  },
  {
    set: 'fan-out', exit: 0,
    findings: [relay('G.json'), clientRelay('L.json'), clientRelay('L2.json')],
    chains: [
      'L:9951/all -> G:9961/a -> L2 -> http://127.0.0.1:9971/a',
      'L:9951/all -> G:9961/b -> L2 -> http://127.0.0.1:9972/b',
    ],
  },
];

interface SampleCase {
  dir: string;
  chains: string[];
  tree: string[];
  /** Files that run a tunnel server without west.egress. */
  relays: string[];
  /** Files that run no tunnel server, dial one, and have no west.egress. */
  clientRelays: string[];
}

const SAMPLE_CASES: SampleCase[] = [
  {
    dir: 'case1',
    chains: ['[case1.L.fiap.org:9802]:9911/px -> ws//case1.G.flap.org -> http://127.0.0.1:9921/x'],
    tree: ['ws//case1.G.flap.org  (tunnel server ws://127.0.0.1:9801)', '└─ [case1.L.fiap.org:9802]'],
    relays: ['G.json'],
    clientRelays: ['L.json'],
  },
  {
    dir: 'case2',
    chains: ['case2.G.fiap.org:9931/pa -> case2.L.fiap.org -> http://127.0.0.1:9941/a'],
    tree: ['case2.G.fiap.org  (tunnel server ws://127.0.0.1:9801)', '└─ case2.L.fiap.org'],
    relays: ['G.json'],
    clientRelays: ['L.json'],
  },
  {
    dir: 'case3',
    chains: ['case3.L.fiap.org:9951/bx -> case3.G.fiap.org:9961/by -> case3.L2.fiap.org -> http://127.0.0.1:9971/b'],
    tree: ['case3.G.fiap.org  (tunnel server ws://127.0.0.1:9801)', '├─ case3.L.fiap.org', '└─ case3.L2.fiap.org'],
    relays: ['G.json'],
    clientRelays: ['L.json', 'L2.json'],
  },
  {
    dir: 'case4',
    chains: ['case4.G.fiap.org:9981/baz -> case4.L.fiap.org:9982/ba -> case4.L2.fiap.org -> http://127.0.0.1:9983/a'],
    tree: [
      'case4.G.fiap.org  (tunnel server ws://127.0.0.1:9801)',
      '└─ case4.L.fiap.org  (tunnel server ws://127.0.0.1:9802)',
      '   └─ case4.L2.fiap.org',
    ],
    relays: ['G.json', 'L.json'],
    clientRelays: ['L2.json'],
  },
];

after(async () => {
  await stopAll();
});

describe('west check computes the mesh\'s routes offline', () => {
  const files = jsonFiles(path.join(SAMPLES, 'mesh'));

  test('sample/mesh: site-A\'s "en": "site-C" is routed through the hub and site-B, and sound', async () => {
    const r = await runCli(['check', ...files], 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(chains(r.stdout), ['site-A:9911/c -> site-C (via hub, site-B) -> http://127.0.0.1:9921/'], r.stdout);
    assert.match(r.stdout, /^sound: 4 nodes, 3 tunnels, 1 chain; 0 errors, 0 warnings$/m);
  });

  for (const [what, file, edit, message] of [
    ['the hub does not allow the transit', 'hub.json', (c: RawNodeJson) => { delete c.west.transit; }, /hub does not relay streams from site-A to site-C \(west.transit\)/],
    ['site-C does not believe site-B', 'site-C.json', (c: RawNodeJson) => { delete c.west.relays; }, /site-C does not take relayed streams from site-B \(west.relays\)/],
    ['site-B holds to the previous wire version', 'site-B.json', (c: RawNodeJson) => { c.west.wire = 2; }, /no config in this deployment connects as "site-C"|which connects to/],
  ] as const) {
    test(`sample/mesh when ${what}: an error on site-A's en, naming why`, async () => {
      const { dir, cleanup } = await tempDir('west-check-mesh-');
      try {
        const edited = await Promise.all(files.map(async (f) => {
          const config = JSON.parse(await readFile(f, 'utf8')) as RawNodeJson;
          if (path.basename(f) === file) edit(config);
          return writeConfig(dir, path.basename(f), config);
        }));
        const r = await runCli(['check', ...edited], 30_000);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        const errors = findings(r.stdout).filter((f) => f.severity === 'error');
        assert.equal(errors.length, 1, r.stdout);
        assert.equal(errors[0]?.file, 'site-A.json');
        assert.match(errors[0]?.message ?? '', message, r.stdout);
      } finally {
        await cleanup();
      }
    });
  }
});

describe('west check on the sample deployments', { concurrency: 4 }, () => {
  for (const c of SAMPLE_CASES) {
    const files = jsonFiles(path.join(SAMPLES, c.dir));
    test(`sample/${c.dir}: sound, its tunnels drawn as a tree and its chain resolved`, async () => {
      const r = await runCli(['check', ...files], 30_000);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      for (const f of files) assert.ok(r.stdout.includes(`${f}: ok`), r.stdout);
      assert.deepEqual(tree(r.stdout), c.tree, r.stdout);
      assert.deepEqual(chains(r.stdout), c.chains, r.stdout);
      // Every sample binds its control port to all interfaces, as the original's did.
      const want = [...c.relays.map(relay), ...c.clientRelays.map((f) => clientRelay(f)), ...[...c.relays, ...c.clientRelays].map(openCp)];
      const got = findings(r.stdout);
      assert.deepEqual(got.map(key).sort(), want.map(key).sort(), r.stdout);
      for (const w of want) assert.match(got.find((g) => key(g) === key(w))!.message, w.message!, r.stdout);
      assert.match(r.stdout, new RegExp(`^sound: ${files.length} nodes, `, 'm'));
    });
  }

  test('-c a -c b is the same as a b', async () => {
    const files = jsonFiles(path.join(SAMPLES, 'case4'));
    const positional = await runCli(['check', ...files], 30_000);
    const repeated = await runCli(['check', ...files.flatMap((f) => ['-c', f])], 30_000);
    assert.equal(repeated.code, 0, repeated.stdout + repeated.stderr);
    assert.equal(repeated.stdout, positional.stdout);
  });
});

describe('west check on broken deployments (test/fixtures/topologies)', { concurrency: 4 }, () => {
  test('every fixture set has a case here', () => {
    const dirs = readdirSync(SETS, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    assert.deepEqual(dirs, CASES.map((c) => c.set).sort());
  });

  for (const c of CASES) {
    test(`${c.set}: exit ${c.exit}, ${c.findings.map((f) => f.rule).join(', ') || 'no findings'}`, async () => {
      const files = jsonFiles(path.join(SETS, c.set));
      const r = await runCli(['check', ...files], 30_000);
      assert.equal(r.code, c.exit, r.stdout + r.stderr);
      const got = findings(r.stdout);
      assert.deepEqual(got.map(key).sort(), c.findings.map(key).sort(), r.stdout);
      for (const want of c.findings) {
        const line = got.find((g) => key(g) === key(want))!;
        if (want.message) assert.match(line.message, want.message, r.stdout);
      }
      // Every finding names the file as given on the command line.
      for (const line of r.stdout.split('\n').filter((l) => /^\s*(error|warning): /.test(l))) {
        assert.ok(files.some((f) => line.includes(`: ${f}: `)), line);
      }
      const errors = c.findings.filter((f) => f.severity === 'error').length;
      assert.match(r.stdout, new RegExp(`^${errors === 0 ? 'sound' : 'NOT sound'}: .*; ${errors} errors?, `, 'm'));
      if (c.chains) assert.deepEqual(chains(r.stdout), c.chains, r.stdout);
      if (c.tree) assert.deepEqual(tree(r.stdout), c.tree, r.stdout);
    });
  }
});

describe('west check: one file, and files that do not load', { concurrency: 4 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('west-topology-'));
  });
  after(async () => {
    await cleanup();
  });

  test('one file with a tunnel server: the per-file report plus the open-relay and open control port warnings, exit 0', async () => {
    const file = path.join(SAMPLES, 'case4', 'L.json');
    const r = await runCli(['check', file], 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(r.stdout.startsWith(`${file}: ok\n  node ws://case4.L.fiap.org\n`), r.stdout);
    assert.deepEqual(findings(r.stdout).map(key), [key(relay('L.json')), key(openCp('L.json'))]);
    assert.doesNotMatch(r.stdout, /deployment|unknown name|missing server/);
  });

  test('one file that only dials a tunnel server, without west.egress: exactly the client open-relay warning, exit 0', async () => {
    const file = path.join(SAMPLES, 'case1', 'L.json');
    const r = await runCli(['check', file], 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(findings(r.stdout).filter((f) => f.rule !== 'open control port'), [{
      severity: 'warning', file: 'L.json', path: 'west', rule: 'open relay',
      message: 'the tunnel server ws://127.0.0.1:9801 can make case1.L.fiap.org:9802 fetch any URL it can reach (no west.egress allowlist)',
    }]);
    assert.doesNotMatch(r.stdout, /deployment|unknown name|missing server/);
  });

  test('one file that dials two tunnel servers: the warning names both', async () => {
    const file = await writeConfig(dir, 'two-servers.json', {
      west: { nm: 'site' },
      wstc: { 'ws://127.0.0.1:9801': {} },
      proxy: { 'http://127.0.0.1:9911': { ea: 'ws://127.0.0.1:9802', '/x': { ou: 'http://127.0.0.1:9921/x' } } },
    });
    const r = await runCli(['check', file], 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(findings(r.stdout), [{
      severity: 'warning', file: 'two-servers.json', path: 'west', rule: 'open relay',
      message: 'the tunnel servers ws://127.0.0.1:9801, ws://127.0.0.1:9802 can make site fetch any URL it can reach (no west.egress allowlist)',
    }]);
  });

  test('one file that only dials a tunnel server, with west.egress: no warnings at all', async () => {
    const file = await writeConfig(dir, 'client-egress.json', {
      west: { nm: 'site', egress: { G: ['http://127.0.0.1:9941/a'] } },
      wstc: { 'ws://127.0.0.1:9801': {} },
      proxy: { 'http://127.0.0.1:9911': { ea: 'ws://127.0.0.1:9801', '/x': { ou: 'http://127.0.0.1:9921/x' } } },
    });
    const r = await runCli(['check', file], 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(findings(r.stdout), []);
  });

  test('one file that neither serves nor dials a tunnel: no warnings at all', async () => {
    const file = await writeConfig(dir, 'standalone.json', { west: { nm: 'alone' } });
    const r = await runCli(['check', file], 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(findings(r.stdout), []);
  });

  test('a deployment where the server and its client both have west.egress: sound, no warnings', async () => {
    const server = await writeConfig(dir, 'egress-G.json', {
      west: { nm: 'G', cp: '127.0.0.1:9701', egress: { L: ['http://127.0.0.1:9921/x'] } },
      wsts: { sp: 'ws://127.0.0.1:9801' },
      proxy: { 'http://127.0.0.1:9931': { en: 'L', '/pa': { ou: 'http://127.0.0.1:9941/a' } } },
    });
    const client = await writeConfig(dir, 'egress-L.json', {
      west: { nm: 'L', cp: '127.0.0.1:9702', egress: { G: ['http://127.0.0.1:9941/a'] } },
      proxy: { 'http://127.0.0.1:9911': { ea: 'ws://127.0.0.1:9801', '/px': { ou: 'http://127.0.0.1:9921/x' } } },
    });
    const r = await runCli(['check', server, client], 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(findings(r.stdout), [], r.stdout);
    assert.match(r.stdout, /^sound: 2 nodes, .*; 0 errors, 0 warnings$/m, r.stdout);
  });

  test('the same file named twice is checked once, on its own', async () => {
    const file = path.join(SAMPLES, 'case2', 'G.json');
    const r = await runCli(['check', file, '-c', file], 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.split(`${file}: ok`).length, 2, r.stdout);
    assert.doesNotMatch(r.stdout, /deployment/);
  });

  test('a deployment with a file that does not load is not checked as a whole, exit 1', async () => {
    const bad = await writeConfig(dir, 'bad.json', { west: { nm: 'bad' }, proxy: { 'http://127.0.0.1:9999': { '/x': { ou: 'http://127.0.0.1:1/' } } } });
    const files = [...jsonFiles(path.join(SAMPLES, 'case2')), bad];
    const r = await runCli(['check', ...files], 30_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok(r.stdout.includes(`${bad}: invalid config (1 problem):`), r.stdout);
    assert.match(r.stdout, /deployment not checked: 1 of 3 configs did not load; fix it first/);
    assert.doesNotMatch(r.stdout, /chains:/);
  });
});

describe('a deployment with millions of chains', () => {
  test('is walked to a bound, and says where the list stops', () => {
    // Nine nodes whose five mappings each lead to the root of the next node's listener: 5^9 chains.
    const configs = Array.from({ length: 9 }, (_, i) => {
      const mappings = Object.fromEntries(Array.from({ length: 5 }, (_v, j) =>
        [`/m${j}`, { ou: i < 8 ? `http://127.0.0.1:${20001 + i}/` : 'http://127.0.0.1:1/x' }]));
      const text = JSON.stringify({
        west: { nm: `n${i}`, maxHops: 64 },
        wsts: { sp: `ws://127.0.0.1:${21000 + i}` },
        proxy: { [`http://127.0.0.1:${20000 + i}`]: { ea: `ws://127.0.0.1:${21000 + i}`, ...mappings } },
      });
      return { file: `n${i}.json`, config: parseConfig(text, `n${i}.json`) };
    });
    const started = Date.now();
    const { chains: walked, findings: found } = walkChains(new Deployment(configs));
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.ok(walked.length > 100 && walked.length < 5000, `${walked.length} chains`);
    assert.equal(walked.filter((c) => c.end.kind === 'truncated').length, 1);
    assert.deepEqual(found, []);
  });
});

describe('host rules', () => {
  const ACCEPTS: [bound: string, target: string, expected: boolean][] = [
    ['', 'relay.example.org', true],
    ['0.0.0.0', '127.0.0.1', true],
    ['::', '::1', true],
    ['127.0.0.1', 'localhost', true],
    ['localhost', '127.0.0.1', true],
    ['127.0.0.1', 'relay.example.org', false],
    ['10.0.0.5', '127.0.0.1', false],
    ['::1', '[::1]', true],
    ['Relay.Example.org', 'relay.example.ORG', true],
  ];
  for (const [bound, target, expected] of ACCEPTS) {
    test(`a socket bound to ${JSON.stringify(bound)} ${expected ? 'takes' : 'does not take'} ${target}`, () => {
      assert.equal(accepts(bound, target), expected);
    });
  }

  const OVERLAPS: [a: string, b: string, expected: boolean][] = [
    ['', '127.0.0.1', true],
    ['127.0.0.1', 'localhost', true],
    ['127.0.0.1', '10.0.0.5', false],
    ['127.0.0.1', '::1', false],
  ];
  for (const [a, b, expected] of OVERLAPS) {
    test(`${JSON.stringify(a)} and ${JSON.stringify(b)} on one port ${expected ? 'clash' : 'do not clash'}`, () => {
      assert.equal(overlaps(a, b), expected);
    });
  }

  for (const [host, expected] of [['127.0.0.1', true], ['127.1.2.3', true], ['localhost', true], ['[::1]', true], ['10.0.0.1', false], ['', false]] as const) {
    test(`${JSON.stringify(host)} is ${expected ? '' : 'not '}a loopback address`, () => {
      assert.equal(isLoopback(host), expected);
    });
  }
});
