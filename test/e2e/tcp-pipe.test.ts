/**
 * `west pipe -c config <node> <host:port>`: stdin to a TCP stream and the stream to stdout,
 * with half-close (stdin's EOF reaches an origin that reads to EOF, whose answer still comes
 * back whole), exit 0 when both directions ended. Refusals are one line on stderr and a
 * non-zero exit: egress, no route, connection refused, a bad address, a config without tunnel
 * clients. stdout carries the bytes only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { MESH_TIMERS, Mesh } from '../helpers/mesh.js';
import { expectedReply, tcpOrigin, type TcpOrigin } from '../helpers/tcp.js';
import { CLI, tempDir, writeConfig } from '../helpers/west.js';

/** Runs `west pipe …` with `input` on stdin; bounded. */
function pipe(args: string[], input: Buffer | string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'pipe', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    child.stdin.on('error', () => { /* it may exit before reading everything */ });
    child.stdin.end(input);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
  });
}

describe('west pipe', () => {
  let mesh: Mesh;
  let answer: TcpOrigin;
  let dir = '';
  let cleanup: () => Promise<void> = async () => {};
  let me = '';

  before(async () => {
    answer = await tcpOrigin('answer-after-eof');
    ({ dir, cleanup } = await tempDir('west-tcp-pipe-'));
    mesh = await Mesh.launch(dir, [
      { name: 'hub', server: true, west: { egress: { P: [`tcp://127.0.0.1:${answer.port}`, 'tcp://127.0.0.1:1'] } } },
    ]);
    me = await writeConfig(dir, 'P.json', { west: { nm: 'P', ...MESH_TIMERS }, wstc: { [mesh.serverUrl('hub')]: {} } });
  });

  after(async () => {
    await mesh?.stopAll();
    await answer?.close();
    await cleanup();
  });

  test('stdin goes out, its EOF is a FIN, the whole answer comes back on stdout, exit 0', async () => {
    const data = randomBytes(1024 * 1024);
    const r = await pipe(['-c', me, 'hub', `127.0.0.1:${answer.port}`], data);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), expectedReply(data), 'stdout holds the bytes and nothing else');
    assert.doesNotMatch(r.stderr, /west pipe:/);
  });

  test('a wstc URL of the config names the node too (as "ea" does)', async () => {
    const r = await pipe(['-c', me, mesh.serverUrl('hub'), `127.0.0.1:${answer.port}`], 'via ea');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), expectedReply('via ea'));
  });

  const refusals: [string, () => string[], RegExp, number][] = [
    ['outside the far end\'s egress', () => ['-c', me, 'hub', '127.0.0.1:22'], /^west pipe: .*west\.egress.*\(egress_denied at hub\)$/, 1],
    ['a node no route reaches', () => ['--wait', '1', '-c', me, 'nowhere', `127.0.0.1:${answer.port}`], /^west pipe: no route to nowhere within 1 s.*\(no_route at P\)$/, 1],
    ['a refused connection', () => ['-c', me, 'hub', '127.0.0.1:1'], /^west pipe: .*ECONNREFUSED \(origin_refused at hub\)$/, 1],
    ['an address that is not host:port', () => ['-c', me, 'hub', '127.0.0.1:0'], /^west pipe: "127\.0\.0\.1:0" is not host:port/, 2],
  ];
  for (const [what, args, message, code] of refusals) {
    test(`refused: ${what}: one line on stderr, nothing on stdout, exit ${code}`, async () => {
      const r = await pipe(args(), 'hello');
      assert.equal(r.code, code, r.stderr);
      assert.equal(r.stdout.length, 0);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0] ?? '', message);
    });
  }

  test('a config without tunnel clients is refused', async () => {
    const lonely = await writeConfig(dir, 'lonely.json', { west: { nm: 'lonely' } });
    const r = await pipe(['-c', lonely, 'hub', '127.0.0.1:22'], '');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^west pipe: .*has no tunnel client/);
  });
});
