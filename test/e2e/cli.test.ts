/**
 * The `west` command line, run as a real process: --version, --help, `west check` on every
 * sample and on broken configs, and `west -c` refusing to start on a bad config, a missing
 * file or a port that is taken — each with a clear message and no stack trace.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { at } from '../helpers/at.js';
import { freePort } from '../helpers/net.js';
import { ROOT, runCli, SAMPLES, stopAll, tempDir, writeConfig } from '../helpers/west.js';

let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  ({ dir, cleanup } = await tempDir('west-cli-'));
});

after(async () => {
  await stopAll();
  await cleanup();
});

const STACK_LINE = /^\s+at .+\(?.*:\d+:\d+\)?$/m;

/** stderr without JSON log lines: what a person reads when the command fails. */
function plainLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => {
    if (line.trim() === '') return false;
    try {
      return typeof (JSON.parse(line) as { event?: unknown }).event !== 'string';
    } catch {
      return true;
    }
  });
}

/** The one `node.start_failed` JSON line of a refused start; it is the last line. */
function startFailed(stderr: string): { error: string; file?: string; setting?: string; node?: string; problems?: string[] } {
  const lines = stderr.trim().split('\n');
  const last = JSON.parse(lines[lines.length - 1]!) as { event: string; level: string; error: string };
  assert.equal(last.event, 'node.start_failed', stderr);
  assert.equal(last.level, 'error');
  assert.equal(lines.filter((l) => l.includes('"node.start_failed"')).length, 1, stderr);
  return last;
}

/** Binds 127.0.0.1:port and releases it: proves the port is free. */
async function assertFree(port: number): Promise<void> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  } catch (err) {
    assert.fail(`port ${port} is not free after west refused to start: ${String(err)}`);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Holds a port of 127.0.0.1 that the OS picks until `release` is called. */
async function occupy(): Promise<{ port: number; release: () => Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Ports a node logged as bound (JSON log lines in its stderr), before it failed. */
function loggedPorts(stderr: string): number[] {
  const ports: number[] = [];
  for (const line of stderr.split('\n')) {
    try {
      const e = JSON.parse(line) as { event?: string; port?: number };
      if (['tunnel.server_listening', 'proxy.listening', 'control.listening'].includes(e.event ?? '') && e.port) ports.push(e.port);
    } catch { /* not a log line */ }
  }
  return ports;
}

describe('--version and --help', () => {
  test('--version prints the package.json version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  });

  test('--help mentions -c and check, exits 0', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /(^|\s)-c\b/);
    assert.match(r.stdout, /\bcheck\b/);
  });
});

// west check on every sample directory: check-samples.test.ts.

describe('the original samples', { concurrency: 4 }, () => {
  const fixtures = path.join(ROOT, 'test', 'fixtures', 'original');
  const files = readdirSync(fixtures).filter((f) => f.endsWith('.json')).sort();
  test('test/fixtures/original holds the original samples', () => {
    assert.equal(files.length, 7, `${files.length} samples in ${fixtures}`);
  });
  for (const f of files) {
    test(`west check loads original/${f}`, async () => {
      const file = path.join(fixtures, f);
      const r = await runCli(['check', '-c', file]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.ok(r.stdout.includes(`${file}: ok`), r.stdout);
    });
  }
});

describe('a config with several problems', () => {
  let file: string;
  let expected: string[];
  let cpPort: number;
  let enPort: number;

  before(async () => {
    // doc/config.md's example, on free ports.
    [cpPort, enPort] = [await freePort(), await freePort()];
    const [wsPort, outPort] = [await freePort(), await freePort()];
    const text = `{
    "west" : {
        "nm": "ws://case1.L.fiap.org",
        "cp": ":${cpPort}",
        "heartbeet": 10
    },
    "wstc" : {
        "ws://127.0.0.1:${wsPort}" : { "ee": "maybe" }
    },
    "proxy" : {
        "http://:${cpPort}": {
            "/px" : { "ou": "ftp://127.0.0.1:${outPort}/x", "ca": ["10.0.0.0/33"] },
            "/px/" : { "ou": "http://127.0.0.1:${outPort}/y" }
        },
        "http://127.0.0.1:${enPort}": {
            "en": "ws://case2.L.fiap.org",
            "/pa": { "ou": "http://127.0.0.1:${outPort}/a" }
        }
    }
}
`;
    file = path.join(dir, 'bad.json');
    await writeFile(file, text);
    const P = `proxy["http://:${cpPort}"]`;
    expected = [
      'west.heartbeet: is not a known key; did you mean "heartbeat"?',
      `wstc["ws://127.0.0.1:${wsPort}"].ee: must be "yes" or "no", got "maybe"`,
      `${P}: needs exactly one of "ea" or "en" (found none)`,
      `${P}: port ${cpPort} is already used by west.cp (":${cpPort}")`,
      `${P}["/px"].ou: must be an http:// or https:// URL, got "ftp://127.0.0.1:${outPort}/x"`,
      `${P}["/px"].ca[0]: must be an IP address or CIDR like "10.0.0.0/8", got "10.0.0.0/33"`,
      `${P}["/px/"]: is the same path as "/px" (a trailing "/" does not count)`,
    ];
  });

  test('west check exits 1 and prints every problem with its JSON path, in file order', async () => {
    const r = await runCli(['check', '-c', file]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const problems = r.stdout.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.trim());
    assert.deepEqual(problems, expected);
    assert.ok(r.stdout.includes(`${file}: invalid config (7 problems):`), r.stdout);
    assert.doesNotMatch(r.stdout + r.stderr, STACK_LINE);
  });

  test('west check of a good and a bad file exits 1 and still says which one is ok', async () => {
    const good = path.join(SAMPLES, 'case1', 'G.json');
    const r = await runCli(['check', '-c', good, '-c', file]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.ok(r.stdout.includes(`${good}: ok`), r.stdout);
    for (const line of expected) assert.ok(r.stdout.includes(line), `missing: ${line}\n${r.stdout}`);
  });

  test('west -c exits non-zero with the same messages on stderr and starts nothing', async () => {
    const r = await runCli(['-c', file, '--log-format', 'json']);
    assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}`);
    // In JSON log mode the refusal is a JSON line too, with every problem.
    const failed = startFailed(r.stderr);
    for (const line of expected) assert.ok(failed.problems?.includes(line), `missing: ${line}\n${r.stderr}`);
    assert.equal(failed.file, file);
    assert.deepEqual(plainLines(r.stderr), []);
    // On a terminal (pretty), the same problems are plain lines.
    const pretty = await runCli(['-c', file, '--log-format', 'pretty']);
    assert.equal(pretty.code, 1);
    for (const line of expected) assert.ok(pretty.stderr.includes(line), `missing on stderr: ${line}\n${pretty.stderr}`);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.doesNotMatch(r.stderr, /node\.started|listening/);
    await assertFree(cpPort);
    await assertFree(enPort);
  });
});

describe('west -c refuses to start, with one clear line and no stack trace', () => {
  test('a config file that does not exist', async () => {
    const missing = path.join(dir, 'does-not-exist.json');
    const r = await runCli(['-c', missing, '--log-format', 'json']);
    assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}`);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.deepEqual(plainLines(r.stderr), [], 'in JSON log mode, no plain line');
    const failed = startFailed(r.stderr);
    assert.ok(failed.error.includes(missing), failed.error);
    assert.match(failed.error, /no such file/i);

    const pretty = await runCli(['-c', missing, '--log-format', 'pretty']);
    const lines = plainLines(pretty.stderr);
    assert.equal(lines.length, 1, `expected one line, got:\n${lines.join('\n')}`);
    assert.ok(at(lines, 0).includes(missing), at(lines, 0));
  });

  for (const where of ['listener', 'control port', 'tunnel server'] as const) {
    test(`a ${where} port that is already taken`, async () => {
      // The test holds the taken port; the node's other ports are the OS's pick (port 0), read
      // back from its log to check that it released them.
      const { port, release } = await occupy();
      const ports = { listener: 0, cp: 0, sp: 0 };
      if (where === 'listener') ports.listener = port;
      if (where === 'control port') ports.cp = port;
      if (where === 'tunnel server') ports.sp = port;
      const file = await writeConfig(dir, `taken-${where.replace(' ', '-')}.json`, {
        west: { nm: 'taken', cp: `127.0.0.1:${ports.cp}` },
        wsts: { sp: `ws://127.0.0.1:${ports.sp}` },
        proxy: { [`http://127.0.0.1:${ports.listener}`]: { en: 'peer', '/px': { ou: 'http://127.0.0.1:1/x' } } },
      });
      let bound: number[] = [];
      try {
        const key = where === 'listener' ? `proxy["http://127.0.0.1:${port}"]` : where === 'control port' ? 'west.cp' : 'wsts.sp';
        const r = await runCli(['-c', file, '--log-format', 'json']);
        assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}\n${r.stderr}`);
        assert.doesNotMatch(r.stderr, STACK_LINE);
        assert.deepEqual(plainLines(r.stderr), [], 'in JSON log mode, no plain line');
        const failed = startFailed(r.stderr);
        assert.ok(failed.error.includes(String(port)), `the message should name port ${port}: ${failed.error}`);
        assert.equal(failed.setting, key);
        assert.equal(failed.node, 'taken');
        assert.ok(failed.error.includes(key), `the message should name ${key}: ${failed.error}`);
        assert.doesNotMatch(r.stderr, /"event":"node\.started"/);
        bound = loggedPorts(r.stderr);
      } finally {
        await release();
      }
      // Whatever it had bound before failing is released with it.
      for (const p of bound) await assertFree(p);
    });
  }
});

describe('west check warns about settings that leave a door open (doc/security.md)', () => {
  test('a token file others can read, a control port on every interface without a token, mappings without ca: three warnings, exit 0', { skip: process.platform === 'win32' }, async () => {
    const secret = 'do-not-print-me';
    const tokenFile = path.join(dir, 'peer.token');
    await writeFile(tokenFile, `${secret}\n`);
    await chmod(tokenFile, 0o644);
    const file = await writeConfig(dir, 'doors.json', {
      west: { nm: 'doors', cp: ':9701', egress: {} },
      wsts: { sp: 'ws://127.0.0.1:9801', tokens: { site: { file: 'peer.token' } } },
      proxy: {
        'http://:9911': { en: 'site', '/open': { ou: 'http://127.0.0.1:9921/a' }, '/guarded': { ou: 'http://127.0.0.1:9921/b', ca: ['10.0.0.0/8'] } },
        'http://127.0.0.1:9912': { en: 'site', '/local': { ou: 'http://127.0.0.1:9921/c' } },
      },
    });
    const r = await runCli(['check', '-c', file]);
    assert.equal(r.code, 0, `warnings do not fail the check:\n${r.stdout}\n${r.stderr}`);
    assert.ok(r.stdout.includes(`${file}: ok`), r.stdout);
    const warnings = r.stdout.split('\n').filter((l) => l.startsWith('warning: '));
    assert.deepEqual(warnings, [
      `warning: ${file}: wsts.tokens.site.file: readable secret: token file "peer.token" is open to other users of this machine (mode 644); make it readable by its owner only (chmod 600)`,
      `warning: ${file}: west.cp: open control port: control port *:9701 listens on every interface without west.cpToken: anyone who reaches it reads the node's state; bind it to 127.0.0.1 or set west.cpToken`,
      `warning: ${file}: proxy["http://:9911"]: no ca: mapping /open on *:9911 has no "ca": any client that reaches *:9911 can use it; list the client addresses that may in "ca"`,
    ]);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(secret));

    // Fixed, the same config checks clean.
    await chmod(tokenFile, 0o600);
    const fixed = await writeConfig(dir, 'doors-shut.json', {
      west: { nm: 'doors', cp: '127.0.0.1:9701', egress: {} },
      wsts: { sp: 'ws://127.0.0.1:9801', tokens: { site: { file: 'peer.token' } } },
      proxy: { 'http://:9911': { en: 'site', '/open': { ou: 'http://127.0.0.1:9921/a', ca: ['10.0.0.0/8'] } } },
    });
    const clean = await runCli(['check', '-c', fixed]);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.doesNotMatch(clean.stdout, /^warning: /m, clean.stdout);
  });
});
