/**
 * Real programs the tests drive (mosquitto, sshd, redis-server, ...): found on the PATH (or
 * in /usr/sbin), started by the test itself on a loopback port with a generated config, never
 * as a system service, and stopped by `stopDaemons()` in `after`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { waitFor } from './net.js';

/** The program's full path, or undefined when it is not installed. */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Why a test that needs these programs is skipped, or false when all are installed. */
export function missingPrograms(...names: string[]): string | false {
  const missing = names.filter((n) => findProgram(n) === undefined);
  return missing.length === 0 ? false : `not installed: ${missing.join(', ')} (.ci/run installs them from Debian)`;
}

/** Runs a program to completion (for setup steps: key generation, password files). */
export function runProgram(name: string, args: string[], input?: string): string {
  const file = findProgram(name);
  if (!file) throw new Error(`${name} is not installed`);
  const r = spawnSync(file, args, { encoding: 'utf8', input, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${name} ${args.join(' ')} exited with ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** A started program; `output` collects its stdout and stderr as text. */
export interface Daemon {
  readonly child: ChildProcess;
  readonly port: number;
  output: string;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<Daemon>();

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts `name args` and waits (bounded) until 127.0.0.1:`port` accepts connections. Throws
 * with the program's output when it exits first or the port never opens.
 */
export async function startDaemon(name: string, args: string[], port: number, timeoutMs = 10_000): Promise<Daemon> {
  const file = findProgram(name);
  if (!file) throw new Error(`${name} is not installed`);
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let exited = false;
  const done = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  const daemon: Daemon = {
    child,
    port,
    output: '',
    async stop(graceMs = 5000) {
      running.delete(daemon);
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await done;
        clearTimeout(timer);
      }
    },
  };
  child.stdout.setEncoding('utf8').on('data', (c: string) => { daemon.output += c; });
  child.stderr.setEncoding('utf8').on('data', (c: string) => { daemon.output += c; });
  running.add(daemon);
  try {
    await waitFor(`${name} on port ${port}`, async () => {
      if (exited) throw new Error(`${name} exited before listening:\n${daemon.output}`);
      return portOpen(port);
    }, timeoutMs);
  } catch (err) {
    await daemon.stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${daemon.output}`);
  }
  return daemon;
}

/** Stops every program this test file started (call from `after`). */
export async function stopDaemons(): Promise<void> {
  await Promise.all([...running].map((d) => d.stop()));
}
