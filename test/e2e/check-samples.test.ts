/**
 * `west check` on every sample directory's configs, and on the original program's samples,
 * with exactly the findings each should have: sample/deploy and sample/hardened (secrets
 * chmod 600) none at all, the original-format samples their open relays and control ports.
 * Then sample/deploy run for real: its two nodes, tokens from the environment, a request
 * through the relay, and the image's health check against the relay's control port.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, cp, readFile, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { ROOT, runCli, SAMPLES, stopAll, tempDir, WestProcess } from '../helpers/west.js';

const run = promisify(execFile);

/** This process's environment without the variables the deploy sample reads its tokens from. */
function envWithout(...names: string[]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const n of names) delete env[n];
  return env;
}
const TOKEN_VARS = ['WEST_CP_TOKEN', 'WEST_SITE_TOKEN'];

function jsonFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f));
}

/** `rule file path` of each `error:`/`warning:` line: `  warning: <file>: <json path>: <rule>: <message>`. */
function findings(stdout: string): string[] {
  return stdout.split('\n').flatMap((line) => {
    const m = /^\s*(error|warning): (.*)$/.exec(line);
    if (!m) return [];
    const [file = '', jsonPath = '', rule = ''] = (m[2] ?? '').split(': ');
    return [`${m[1] ?? ''} ${rule} ${path.basename(file)} ${jsonPath}`];
  }).sort();
}

const openRelay = (file: string): string => `warning open relay ${file} wsts.sp`;
const clientRelay = (file: string): string => `warning open relay ${file} west`;
const openCp = (file: string): string => `warning open control port ${file} west.cp`;

interface Expected {
  /** Arguments before the files. */
  args?: string[];
  /** Every finding, as `findings()` writes it. */
  findings: string[];
  /** Lines `not read here: <path>: ...`, in order. */
  notRead?: string[];
}

/** Every directory of sample/ that holds configs, with what `west check <its configs>` says. */
const SAMPLE_DIRS: Record<string, Expected> = {
  // The original's topologies, in its format: control ports on every interface, no egress.
  case1: { findings: [openRelay('G.json'), clientRelay('L.json'), openCp('G.json'), openCp('L.json')] },
  case2: { findings: [openRelay('G.json'), clientRelay('L.json'), openCp('G.json'), openCp('L.json')] },
  case3: { findings: [openRelay('G.json'), clientRelay('L.json'), clientRelay('L2.json'), openCp('G.json'), openCp('L.json'), openCp('L2.json')] },
  case4: { findings: [openRelay('G.json'), openRelay('L.json'), clientRelay('L2.json'), openCp('G.json'), openCp('L.json'), openCp('L2.json')] },
  demo: { findings: [] },
  // A tunnel over MQTT through a broker the hub embeds: egress set, control ports on loopback.
  mqtt: { findings: [] },
  // The mesh: every node has west.egress (the hub and the relays an empty one), control ports on loopback.
  mesh: { findings: [] },
  // Production: nothing to warn about. Its tokens come from the environment, which a machine
  // that is not the node does not have.
  deploy: {
    args: ['--skip-secrets'],
    findings: [],
    notRead: ['west.cpToken.env', 'wsts.tokens.site.env', 'wstc["ws://relay.example.org:9801"].token.env'],
  },
  // Remote access and rendezvous: the control token comes from the environment.
  'remote-access': { args: ['--skip-secrets'], findings: [], notRead: ['west.cpToken.env'] },
  // Its token and key files come out of git 0644; chmod 600 (below) leaves nothing to warn about.
  hardened: {
    findings: ['G.json west.cpToken.file', 'G.json wsts.tokens["site-L"].file', 'G.json wsts.key', 'L.json wstc["wss://127.0.0.1:9801"].token.file', 'L.json wstc["wss://127.0.0.1:9801"].key']
      .map((f) => `warning readable secret ${f}`),
  },
};

after(async () => {
  await stopAll();
});

describe('west check on every sample directory', { concurrency: 4 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir('west-check-samples-'));
  });
  after(async () => {
    await cleanup();
  });

  test('every sample directory with configs has an expectation here', () => {
    const dirs = readdirSync(SAMPLES).filter((d) => statSync(path.join(SAMPLES, d)).isDirectory() && jsonFiles(path.join(SAMPLES, d)).length > 0);
    assert.deepEqual(dirs.sort(), Object.keys(SAMPLE_DIRS).sort());
  });

  for (const [name, want] of Object.entries(SAMPLE_DIRS)) {
    test(`sample/${name}: ${want.findings.length === 0 ? 'no findings at all' : want.findings.map((f) => f.split(' ').slice(1, -2).join(' ')).filter((r, i, all) => all.indexOf(r) === i).join(', ')}`, async () => {
      let root = path.join(SAMPLES, name);
      if (name === 'hardened') {
        // git keeps no mode but 0644/0755: make the files as a checkout with umask 022 has them.
        root = path.join(dir, name);
        await cp(path.join(SAMPLES, name), root, { recursive: true });
        for (const f of ['tokens/control.token', 'tokens/site-L.token', 'tls/relay.key', 'tls/site-L.key']) await chmod(path.join(root, f), 0o644);
      }
      const files = jsonFiles(root);
      const r = await runCli(['check', ...(want.args ?? []), ...files], 30_000, envWithout(...TOKEN_VARS));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      for (const f of files) assert.ok(r.stdout.includes(`${f}: ok\n`), r.stdout);
      assert.deepEqual(findings(r.stdout), [...want.findings].sort(), r.stdout);
      const notRead = [...r.stdout.matchAll(/^ {2}not read here: (.*?): /gm)].map((m) => m[1]);
      assert.deepEqual(notRead, want.notRead ?? [], r.stdout);
      if (files.length > 1) {
        const secrets = want.notRead?.length ? `; ${want.notRead.length} secret${want.notRead.length === 1 ? '' : 's'} not read here` : '';
        assert.match(r.stdout, new RegExp(`^sound: ${files.length} nodes, .*; 0 errors, ${want.findings.length} warnings?${secrets.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
      }
    });
  }

  test('sample/hardened with its secrets chmod 600: no findings at all', async () => {
    const root = path.join(dir, 'hardened-600');
    await cp(path.join(SAMPLES, 'hardened'), root, { recursive: true });
    for (const f of ['tokens/control.token', 'tokens/site-L.token', 'tls/relay.key', 'tls/site-L.key']) await chmod(path.join(root, f), 0o600);
    const r = await runCli(['check', ...jsonFiles(root)], 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(findings(r.stdout), [], r.stdout);
    assert.match(r.stdout, /^sound: 2 nodes, 1 tunnel, 1 chain; 0 errors, 0 warnings$/m);
  });

  test('sample/deploy on its nodes (tokens set): no findings and nothing left unread', async () => {
    const r = await runCli(['check', ...jsonFiles(path.join(SAMPLES, 'deploy'))], 30_000, { ...process.env, WEST_CP_TOKEN: 'cp-secret', WEST_SITE_TOKEN: 'site-secret' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(findings(r.stdout), [], r.stdout);
    assert.doesNotMatch(r.stdout, /not read here|secret/);
    assert.match(r.stdout, /^sound: 2 nodes, 1 tunnel, 1 chain; 0 errors, 0 warnings$/m);
  });

  test('sample/deploy where its tokens are not set, without --skip-secrets: each file fails, naming the variable, and says how to check the rest', async () => {
    const files = jsonFiles(path.join(SAMPLES, 'deploy'));
    const r = await runCli(['check', ...files], 30_000, envWithout(...TOKEN_VARS));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /relay\.json: invalid config \(2 problems\):\n {2}west\.cpToken\.env: environment variable WEST_CP_TOKEN is not set\n {2}wsts\.tokens\.site\.env: environment variable WEST_SITE_TOKEN is not set\n/);
    assert.match(r.stdout, /site\.json: invalid config \(1 problem\):\n {2}wstc\["ws:\/\/relay\.example\.org:9801"\]\.token\.env: environment variable WEST_SITE_TOKEN is not set\n/);
    assert.equal(r.stdout.split('west check --skip-secrets checks the rest').length - 1, 2, r.stdout);
    assert.match(r.stdout, /deployment not checked: 2 of 2 configs did not load/);
  });

  test('--skip-secrets skips only what is not here: an empty token file, or another error, still fails', async () => {
    await writeFile(path.join(dir, 'empty.token'), '', { mode: 0o600 });
    const file = path.join(dir, 'skip.json');
    await writeFile(file, JSON.stringify({
      west: { nm: 'n', cp: '127.0.0.1:9701', cpToken: { file: 'empty.token' }, egress: {}, heartbeet: 1 },
      wstc: { 'ws://127.0.0.1:9801': { token: { file: 'absent.token' } } },
    }));
    const r = await runCli(['check', '--skip-secrets', file], 30_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /west\.heartbeet: is not a known key/);
    await writeFile(file, JSON.stringify({
      west: { nm: 'n', cp: '127.0.0.1:9701', cpToken: { file: 'empty.token' }, egress: {} },
      wstc: { 'ws://127.0.0.1:9801': { token: { file: 'absent.token' } } },
    }));
    const empty = await runCli(['check', '--skip-secrets', file], 30_000);
    assert.equal(empty.code, 1, empty.stdout + empty.stderr);
    assert.match(empty.stdout, /invalid config \(1 problem\):\n {2}west\.cpToken\.file: token file "empty\.token" is empty\n/);
    await writeFile(path.join(dir, 'empty.token'), 'now-set\n');
    const ok = await runCli(['check', '--skip-secrets', file], 30_000);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^ {2}not read here: wstc\["ws:\/\/127\.0\.0\.1:9801"\]\.token\.file: cannot read token file "absent\.token": no such file \(--skip-secrets\)$/m);
  });
});

/** The original program's samples, grouped by topology: `config-sample-case1-G.json` -> case1. */
function originalGroups(dir: string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const f of jsonFiles(dir)) {
    const c = /config-sample-(case\d+)-/.exec(path.basename(f))?.[1] ?? path.basename(f);
    groups.set(c, [...(groups.get(c) ?? []), f]);
  }
  return groups;
}

describe('west check on the original program\'s samples, one topology at a time', { concurrency: 4 }, () => {
  const shared = path.resolve(ROOT, '..', 'shared', 'original-samples');
  const sources: [string, string, string | undefined][] = [
    ['test/fixtures/original', path.join(ROOT, 'test', 'fixtures', 'original'), undefined],
    ['../shared/original-samples', shared, existsSync(shared) ? undefined : `${shared} is not on this machine`],
  ];
  for (const [label, dir, skip] of sources) {
    const groups = skip === undefined ? originalGroups(dir) : new Map<string, string[]>([['(none)', []]]);
    for (const [group, files] of groups) {
      test(`${label}: ${group} is sound; its warnings are its open relays and control ports on every interface`, { skip }, async () => {
        assert.ok(files.length >= 2, `${group}: ${files.join(', ')}`);
        const r = await runCli(['check', ...files], 30_000);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const want = files.flatMap((f) => {
          const name = path.basename(f);
          const config = JSON.parse(readFileSync(f, 'utf8')) as { wsts?: { sp?: string } };
          return [config.wsts?.sp ? openRelay(name) : clientRelay(name), openCp(name)];
        });
        assert.deepEqual(findings(r.stdout), want.sort(), r.stdout);
        assert.match(r.stdout, /^sound: /m);
      });
    }
  }
});

describe('sample/deploy runs: tokens from the environment, a request through the relay, the image\'s health check', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir('west-deploy-'));
  });
  after(async () => {
    await stopAll();
    await cleanup();
  });

  test('relay and site on one machine (free ports, relay.example.org as 127.0.0.1): /site/ answers 200; the health check passes with WEST_CP_TOKEN and fails without', async () => {
    const [sp, listener, relayCp, siteCp, originPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const port = (text: string): string => text
      .replaceAll('0.0.0.0:9801', `127.0.0.1:${sp}`).replaceAll('relay.example.org:9801', `127.0.0.1:${sp}`)
      .replaceAll('"http://:9911"', `"http://127.0.0.1:${listener}"`)
      .replaceAll('":9701"', `"127.0.0.1:${relayCp}"`).replaceAll('127.0.0.1:9701', `127.0.0.1:${siteCp}`)
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${originPort}`);
    for (const f of ['relay.json', 'site.json']) await writeFile(path.join(dir, f), port(await readFile(path.join(SAMPLES, 'deploy', f), 'utf8')));
    const env = { ...process.env, WEST_CP_TOKEN: 'cp-secret', WEST_SITE_TOKEN: 'site-secret' };
    const origin = WestProcess.spawn(['origin', '--port', String(originPort)]);
    await waitFor('west origin to listen', () => origin.stderr.includes('answering on'));
    await WestProcess.start(path.join(dir, 'relay.json'), [], env);
    await WestProcess.start(path.join(dir, 'site.json'), [], env);
    const r = await waitFor('/site/ to answer 200', async () => {
      const answer = await fetchText(`http://127.0.0.1:${listener}/site/hello`);
      return answer.status === 200 ? answer : undefined;
    }, 20_000);
    assert.match(r.text, /"url": ?"\/hello"/);

    // The HEALTHCHECK line of sample/deploy/Dockerfile, as the image runs it.
    const dockerfile = await readFile(path.join(SAMPLES, 'deploy', 'Dockerfile'), 'utf8');
    const cmd = /^\s+CMD (\[.*\])$/m.exec(dockerfile.slice(dockerfile.indexOf('HEALTHCHECK')))?.[1];
    assert.ok(cmd, 'the Dockerfile has a HEALTHCHECK CMD');
    const [program, ...args] = JSON.parse(cmd) as string[];
    assert.equal(program, 'node');
    const health = { WEST_HEALTH_URL: `http://127.0.0.1:${relayCp}/healthz` };
    await run(process.execPath, args, { env: { ...process.env, ...health, WEST_CP_TOKEN: 'cp-secret' } });
    await assert.rejects(run(process.execPath, args, { env: { ...envWithout(...TOKEN_VARS), ...health } }), 'without the token the control port answers 401');
  });
});
