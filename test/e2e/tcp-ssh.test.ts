/**
 * OpenSSH through three hops of the mesh (L -> hub -> B -> L2, each middle node relaying the
 * tcp stream frame by frame): by a `tcp://` listener at L, and by `west pipe` as ssh's
 * ProxyCommand (with the config of P, another client of the hub). A command runs, and scp
 * moves 50 MiB each way, hash-checked.
 *
 *   ssh -> L [tcp://] ==> hub ==> B ==> L2 -> sshd        ssh | west pipe (P) ==> hub ==> B ==> L2 -> sshd
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stopDaemons, missingPrograms } from '../helpers/daemon.js';
import { MESH_TIMERS, Mesh } from '../helpers/mesh.js';
import { run, sshOptions, startSshd, type Sshd } from '../helpers/sshd.js';
import { tcpListenerAddress } from '../helpers/tcp.js';
import { CLI, tempDir, writeConfig } from '../helpers/west.js';

const skip = missingPrograms('sshd', 'ssh', 'scp', 'ssh-keygen');
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('OpenSSH through three hops: a tcp:// listener and west pipe', { skip }, () => {
  let mesh: Mesh;
  let sshd: Sshd;
  let dir = '';
  let cleanup: () => Promise<void> = async () => {};
  let listenerPort = 0;
  let pConfig = '';

  before(async () => {
    ({ dir, cleanup } = await tempDir('west-tcp-ssh-'));
    sshd = await startSshd(dir);
    const sshAt = `tcp://127.0.0.1:${sshd.port}`;
    mesh = await Mesh.launch(dir, [
      { name: 'hub', server: true, west: { transit: { L: ['L2'], P: ['L2'] }, learn: { B: ['L2'] } } },
      { name: 'B', server: true, dials: ['hub'], west: { transit: { L: ['L2'], P: ['L2'] }, relays: ['hub'] } },
      { name: 'L2', dials: ['B'], west: { relays: ['B'], egress: { L: [sshAt], P: [sshAt] } } },
      { name: 'L', dials: ['hub'], proxy: { 'tcp://127.0.0.1:0': { en: 'L2', to: `127.0.0.1:${sshd.port}` } } },
    ]);
    listenerPort = (await tcpListenerAddress(mesh.proc('L'), 'tcp://127.0.0.1:0')).port;
    await mesh.route('L', 'L2', { hops: 3 });
    // P only joins for `west pipe`: no process of its own runs.
    pConfig = await writeConfig(dir, 'P.json', { west: { nm: 'P', ...MESH_TIMERS }, wstc: { [mesh.serverUrl('hub')]: {} } });
  });

  after(async () => {
    await mesh?.stopAll();
    await stopDaemons();
    await cleanup();
  });

  const viaListener = (): string[] => [...sshOptions(sshd), '-p', String(listenerPort)];
  const viaPipe = (): string[] => [
    ...sshOptions(sshd), '-p', String(sshd.port), '-o', `ProxyCommand=${process.execPath} ${CLI} pipe -c ${pConfig} L2 %h:%p`,
  ];

  for (const [how, opts] of [['a tcp:// listener', viaListener], ['west pipe as ProxyCommand', viaPipe]] as const) {
    test(`ssh runs a command through ${how}`, async () => {
      const r = await run('ssh', [...opts(), `${sshd.user}@127.0.0.1`, 'echo', 'west-says-hello']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'west-says-hello');
    });

    test(`scp 50 MiB up and back down through ${how}, hash-checked`, async () => {
      const local = path.join(dir, `up-${how.length}.bin`);
      const remote = path.join(dir, `remote-${how.length}.bin`);
      const back = path.join(dir, `back-${how.length}.bin`);
      writeFileSync(local, randomBytes(50 * 1024 * 1024));
      const scpOpts = opts().map((o) => (o === '-p' ? '-P' : o));
      const up = await run('scp', ['-q', ...scpOpts, local, `${sshd.user}@127.0.0.1:${remote}`]);
      assert.equal(up.code, 0, `${up.stderr}\n${JSON.stringify(mesh.proc('L2').events.filter((e) => e.event === 'perform'))}\n${JSON.stringify(['hub', 'B'].map((n) => mesh.proc(n).events.filter((e) => e.level !== 'info')))}\n${sshd.daemon.output.slice(-1500)}`);
      assert.equal(sha256(remote), sha256(local));
      const down = await run('scp', ['-q', ...scpOpts, `${sshd.user}@127.0.0.1:${remote}`, back]);
      assert.equal(down.code, 0, `${down.stderr}\n${JSON.stringify(mesh.proc('L2').events.filter((e) => e.event === 'perform'))}\n${JSON.stringify(['hub', 'B'].map((n) => mesh.proc(n).events.filter((e) => e.level !== 'info')))}\n${sshd.daemon.output.slice(-1500)}`);
      assert.equal(sha256(back), sha256(local));
    });
  }

  test('the middle nodes relayed, L2 connected with L as the origin, and L logged each connection', async () => {
    const perform = await mesh.proc('L2').waitForEvent('perform', (e) => e.kind === 'tcp' && e.peer === 'L');
    assert.equal(perform.url, `tcp://127.0.0.1:${sshd.port}`);
    await mesh.proc('L2').waitForEvent('perform', (e) => e.kind === 'tcp' && e.peer === 'P');
    const access = await mesh.proc('L').waitForEvent('tcp.access', (e) => Number(e.in) > 50 * 1024 * 1024);
    assert.equal(access.outcome, 'closed');
    assert.equal(access.target, 'L2');
    for (const n of ['hub', 'B']) assert.equal(mesh.proc(n).events.filter((e) => e.event === 'perform').length, 0, `nothing performed at ${n}`);
  });
});
