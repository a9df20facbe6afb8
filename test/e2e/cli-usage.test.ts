/**
 * How a new user meets the `west` command: the npm package's name and its `west` bin, typos
 * and unknown commands, shell completion, and the original's usage line (-O, --output,
 * --input, --debug N) accepted as it was.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { waitFor } from '../helpers/net.js';
import { ROOT, runCli, stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  ({ dir, cleanup } = await tempDir('west-usage-'));
});

after(async () => {
  await stopAll();
  await cleanup();
});

/** The JSON log lines of a file (none when it does not exist yet). */
async function logLines(file: string): Promise<{ event: string; level: string; node?: string; [k: string]: unknown }[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string; level: string });
}

describe('the npm package', () => {
  test('is not named `west` (an unrelated package on the registry) and installs the `west` command', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
    assert.notEqual(pkg.name, 'west');
    assert.equal(pkg.name, 'west-tunnel');
    assert.equal(pkg.bin.west, 'dist/src/cli.js');
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const line of ['npm install -g west-tunnel', 'npx west-tunnel', 'npm link']) assert.ok(readme.includes(line), `README.md does not say ${line}`);
  });
});

describe('west pipe', () => {
  test('is listed by west --help, and without its arguments says what it needs (exit 1)', async () => {
    const help = await runCli(['--help']);
    assert.match(help.stdout, /west pipe <node> <target> +join the mesh with the config's tunnel clients/);
    const bare = await runCli(['pipe']);
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /Not enough non-option arguments|Missing required argument/);
  });
});

describe('commands it does not know', () => {
  for (const [typo, meant] of [['chek', 'check'], ['stat', 'state'], ['demo2', 'demo'], ['piep', 'pipe']] as const) {
    test(`west ${typo} says "unknown command" and suggests west ${meant}, exit 2`, async () => {
      const r = await runCli([typo, 'sample/case1/G.json']);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.includes(`unknown command "${typo}"`), r.stderr);
      assert.ok(r.stderr.includes(`did you mean "west ${meant}"`), r.stderr);
      assert.doesNotMatch(r.stderr, /Missing required argument/);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line, not the whole help:\n${r.stderr}`);
    });
  }

  test('a word far from every command gets no suggestion', async () => {
    const r = await runCli(['xyzzyplugh']);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes('unknown command "xyzzyplugh"'), r.stderr);
    assert.doesNotMatch(r.stderr, /did you mean/);
  });
});

describe('shell completion', () => {
  test('west completion prints a script, and the script\'s query completes commands', async () => {
    const script = await runCli(['completion']);
    assert.equal(script.code, 0, script.stderr);
    assert.match(script.stdout, /west --get-yargs-completions/);
    const r = await runCli(['--get-yargs-completions', 'west', 'ch']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.split('\n').includes('check'), r.stdout);
  });
});

describe("the original's usage line", () => {
  test('-O file --debug 2 --input f: the log goes to the file at debug level, and SIGUSR1 reopens it', async () => {
    const config = await writeConfig(dir, 'quiet.json', {
      west: { nm: 'usage-node', cp: '127.0.0.1:0' },
      proxy: { 'http://127.0.0.1:0': { ea: 'ws://127.0.0.1:1', '/px': { ou: 'http://127.0.0.1:1/x' } } },
    });
    const logFile = path.join(dir, 'west.log');
    const p = WestProcess.spawn(['-c', config, '-O', logFile, '--debug', '2', '--input', 'ignored.txt']);
    const started = await waitFor('node.started in the log file', async () => {
      if (p.exitCode !== null) throw new Error(`west exited with ${p.exitCode}:\n${p.stderr}`);
      return (await logLines(logFile)).find((e) => e.event === 'node.started');
    }, 30_000);
    assert.equal(started.node, 'usage-node');
    const lines = await logLines(logFile);
    assert.ok(lines.some((e) => e.event === 'node.input_ignored' && e.level === 'debug' && e.input === 'ignored.txt'), JSON.stringify(lines));
    assert.equal(p.stderr, '', 'nothing on stderr: the log is in the file');

    // logrotate moves the file away, then signals.
    const rotated = `${logFile}.1`;
    await rename(logFile, rotated);
    p.kill('SIGUSR1');
    const reopened = await waitFor('node.log_reopened in a new file', async () => (await logLines(logFile)).find((e) => e.event === 'node.log_reopened'));
    assert.equal(reopened.node, 'usage-node');
    assert.equal(await p.stop(), 0);
    const after = await logLines(logFile);
    const stopping = after.find((e) => e.event === 'node.stopping');
    assert.ok(stopping, JSON.stringify(after));
    assert.equal(stopping.node, 'usage-node', 'node.stopping carries the node name');
    assert.ok(!(await logLines(rotated)).some((e) => e.event === 'node.stopping'), 'the moved file gets no more lines');
  });

  test('--output is -O, and -d -d --debug 1 is accepted', async () => {
    const config = await writeConfig(dir, 'quiet2.json', { west: { nm: 'usage-two', cp: '127.0.0.1:0' } });
    const logFile = path.join(dir, 'west2.log');
    const p = WestProcess.spawn(['-c', config, '--output', logFile, '-d', '-d', '--debug', '1']);
    await waitFor('node.started in the log file', async () => {
      if (p.exitCode !== null) throw new Error(`west exited with ${p.exitCode}:\n${p.stderr}`);
      return (await logLines(logFile)).find((e) => e.event === 'node.started');
    }, 30_000);
    assert.equal(await p.stop(), 0);
  });
});
