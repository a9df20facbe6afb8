/**
 * A real OpenSSH server for the TCP tests: Debian's /usr/sbin/sshd on a loopback port with a
 * generated host key, a generated client key in authorized_keys and its own sshd_config
 * (StrictModes no, UsePAM no, the pid file in the temp dir), run with `-D -e`, never as a
 * system service. Stopped by `stopDaemons()`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { startDaemon, findProgram, runProgram, type Daemon } from './daemon.js';
import { freePort } from './net.js';

export interface Sshd {
  daemon: Daemon;
  port: number;
  /** The client's private key file. */
  key: string;
  user: string;
}

export async function startSshd(dir: string): Promise<Sshd> {
  // Privilege separation wants this directory; Debian's package makes it only for its service.
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const key = path.join(dir, 'client_key');
  runProgram('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  runProgram('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const authorized = path.join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${key}.pub`), { mode: 0o600 });
  const port = await freePort();
  const sftp = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server'].find((f) => existsSync(f));
  const config = path.join(dir, 'sshd_config');
  writeFileSync(config, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `AuthorizedKeysFile ${authorized}`,
    'StrictModes no', 'UsePAM no', `PidFile ${path.join(dir, 'sshd.pid')}`, 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes', 'PermitRootLogin prohibit-password', 'LogLevel INFO',
    ...(sftp ? [`Subsystem sftp ${sftp}`] : []), '',
  ].join('\n'));
  const daemon = await startDaemon('sshd', ['-D', '-e', '-f', config], port);
  return { daemon, port, key, user: userInfo().username };
}

/** The options every ssh/scp call of the tests takes: no host key prompts, no passwords. */
export function sshOptions(sshd: Sshd): string[] {
  return ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', sshd.key];
}

/** Runs ssh/scp (or any program) without blocking the test's event loop; bounded. */
export function run(name: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = findProgram(name);
  if (!file) throw new Error(`${name} is not installed`);
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
