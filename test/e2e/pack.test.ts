/**
 * The package as users get it: `npm pack` makes a tarball holding the built program, the
 * samples and the docs (no tests), which installs into an empty prefix and runs `west` from
 * any directory. Needs the npm registry (or a warm npm cache) for the dependencies.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '../helpers/west.js';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment for a child npm: npm exports its whole config to scripts as npm_* variables
 * (this test may itself run under `npm test`), and a child would take them as its own. Keep
 * only the ones that say how to reach the registry.
 */
function childEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(cache|registry|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl|cafile|offline|prefer_offline)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || keep.test(k)) env[k] = v;
  env.npm_config_update_notifier = 'false';
  return env;
}

/** The whole file stays within this, however slow the machine or the registry. */
const DEADLINE = Date.now() + 85_000;

/**
 * Runs a program to completion, killed after `timeoutMs` or at the file's deadline, whichever
 * comes first; never rejects on a non-zero exit.
 */
function run(file: string, args: string[], cwd: string, limitMs: number): Promise<Run> {
  const timeoutMs = Math.max(1000, Math.min(limitMs, DEADLINE - Date.now()));
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: childEnv(), timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      const why = err?.killed ? `\n(killed after ${timeoutMs} ms)` : '';
      resolve({ code, stdout, stderr: stderr + why });
    });
  });
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}

let tmp: string;
let tarball: string;
let packed: string[];
let prefix: string;
let elsewhere: string;
let west: string;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'west-pack-'));
  const dest = path.join(tmp, 'pack');
  prefix = path.join(tmp, 'prefix');
  elsewhere = path.join(tmp, 'elsewhere');
  await Promise.all([dest, prefix, elsewhere].map((d) => mkdir(d)));
  // --ignore-scripts: "prepare" would rebuild dist/, which the other test files are running
  // from; `npm test` has just built it.
  const pack = await run(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], ROOT, 30_000);
  assert.equal(pack.code, 0, pack.stderr);
  const [result] = JSON.parse(pack.stdout) as PackResult[];
  assert.ok(result, pack.stdout);
  tarball = path.join(dest, result.filename);
  packed = result.files.map((f) => f.path);
  assert.deepEqual(await readdir(dest), [result.filename]);

  const install = await run(NPM, ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball], elsewhere, 70_000);
  assert.equal(install.code, 0, install.stdout + install.stderr);
  west = path.join(prefix, 'node_modules', '.bin', process.platform === 'win32' ? 'west.cmd' : 'west');
}, { timeout: 88_000 });

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the npm package', { timeout: 90_000 }, () => {
  test('holds the built CLI, the samples and the docs', () => {
    for (const f of ['package.json', 'README.md', 'dist/src/cli.js', 'dist/src/check/index.js', 'dist/src/state-cli.js', 'sample/case4/G.json', 'sample/demo/demo.json', 'doc/config.md', 'doc/operations.md', 'sample/deploy/west.service']) {
      assert.ok(packed.includes(f), `${f} is not in the tarball`);
    }
  });

  test('holds no tests, benchmarks or TypeScript sources', () => {
    const stray = packed.filter((f) => /^(test|bench|src)\//.test(f) || /^dist\/(test|bench)\//.test(f) || f.endsWith(".test.js") || /(^|\/)node_modules\//.test(f));
    assert.deepEqual(stray, []);
  });

  test('west --version runs from another directory', async () => {
    const r = await run(west, ['--version'], elsewhere, 30_000);
    assert.equal(r.code, 0, r.stderr);
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(r.stdout.trim(), version);
  });

  test('west check passes on a sample shipped in the package', async () => {
    const sample = path.join(prefix, 'node_modules', 'west-tunnel', 'sample', 'case4');
    const files = (await readdir(sample)).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(sample, f));
    assert.equal(files.length, 3);
    const r = await run(west, ['check', ...files], elsewhere, 30_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /case4\.G\.fiap\.org:9981\/baz -> case4\.L\.fiap\.org:9982\/ba -> case4\.L2\.fiap\.org -> http:\/\/127\.0\.0\.1:9983\/a/);
    assert.match(r.stdout, /^sound: 3 nodes/m);
  });

  test('west --help lists the commands', async () => {
    const r = await run(west, ['--help'], elsewhere, 30_000);
    assert.equal(r.code, 0, r.stderr);
    for (const command of ['check', 'state', 'demo']) assert.match(r.stdout, new RegExp(`west ${command}\\b`));
  });
});
