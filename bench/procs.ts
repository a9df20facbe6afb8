/**
 * Child processes of the benchmark: every server and load generator runs in its own process so
 * none shares an event loop with another. Each child is registered here, so that whatever
 * happens (an error, Ctrl-C) `stopAll()` and the exit hook end every one of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (this file runs compiled from dist/bench). */
export const ROOT = path.resolve(here, '..', '..');
/** The compiled bench scripts (origin, http-proxy, load worker...). */
export const BENCH_DIST = here;

export interface SpawnOptions {
  /** A short name for messages ("origin", "west G"...). */
  name: string;
  /** Node flags placed before the script (e.g. --cpu-prof); spawnNode only. */
  nodeArgs?: string[];
  /** Keep at most this many characters of stderr (the tail). */
  keepStderr?: number;
}

export class Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  /** When the process was spawned (ms since the epoch). */
  readonly spawnedAt = Date.now();
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  stdout = '';
  stderr = '';
  private readonly keepStderr: number;
  private readonly lineWaiters: ((line: string) => boolean)[] = [];
  private partial = '';

  /** Runs `command argv` (see spawnNode and spawnProgram). */
  constructor(command: string, argv: string[], opts: SpawnOptions) {
    this.name = opts.name;
    this.keepStderr = opts.keepStderr ?? 256 * 1024;
    const child = spawn(command, argv, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process = child;
    child.stdout.setEncoding('utf8').on('data', (c: string) => this.onStdout(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      this.stderr += c;
      if (this.stderr.length > this.keepStderr) this.stderr = this.stderr.slice(-this.keepStderr);
    });
    // 'close', not 'exit': it comes after stdout has been read to the end, so a child that
    // prints its result and exits at once is never taken for one that died first.
    this.exited = new Promise((resolve) => this.process.once('close', (code, signal) => {
      this.exitCode = code;
      this.signal = signal;
      resolve(code);
    }));
  }

  get pid(): number {
    return this.process.pid ?? 0;
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /**
   * The first stdout line that parses as a JSON object, within `timeoutMs`. Children announce
   * readiness (and their port) this way. Rejects if the child exits first.
   */
  async readyLine<T extends object>(timeoutMs = 15_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ready line within ${timeoutMs} ms\n${this.stderr.slice(-2000)}`)), timeoutMs);
      const settle = (): void => clearTimeout(timer);
      this.lineWaiters.push((line) => {
        try {
          const v = JSON.parse(line) as unknown;
          if (v === null || typeof v !== 'object') return false;
          settle();
          resolve(v as T);
          return true;
        } catch {
          return false;
        }
      });
      void this.exited.then((code) => {
        settle();
        reject(new Error(`${this.name} exited with ${code ?? this.signal} before it was ready\n${this.stderr.slice(-2000)}`));
      });
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.running) {
      this.process.kill('SIGTERM');
      const timer = setTimeout(() => { if (this.running) this.process.kill('SIGKILL'); }, graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    live.delete(this);
  }

  private onStdout(chunk: string): void {
    this.stdout += chunk;
    if (this.stdout.length > 64 * 1024) this.stdout = this.stdout.slice(-64 * 1024);
    this.partial += chunk;
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const i = this.lineWaiters.findIndex((w) => w(line));
      if (i >= 0) this.lineWaiters.splice(i, 1);
    }
  }
}

const live = new Set<Child>();

/** Spawns `node [nodeArgs] script args` and registers it for clean-up. */
export function spawnNode(script: string, args: string[], opts: SpawnOptions): Child {
  const child = new Child(process.execPath, [...(opts.nodeArgs ?? []), script, ...args], opts);
  live.add(child);
  return child;
}

/** Spawns a program that is not a Node script (wrk, nginx) and registers it for clean-up. */
export function spawnProgram(file: string, args: string[], opts: SpawnOptions): Child {
  const child = new Child(file, args, opts);
  live.add(child);
  return child;
}

/** Stops every child still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopAll(graceMs = 5000): Promise<void> {
  await Promise.all([...live].map((c) => c.stop(graceMs)));
}

/**
 * Ctrl-C or SIGTERM stops every child (then runs `onSignal`) before exiting; a process exit
 * for any other reason kills whatever is left (synchronously: nothing else can run then).
 */
let interruptedBy: NodeJS.Signals | undefined;

/** True once Ctrl-C or SIGTERM arrived: failures that follow are the clean-up's doing. */
export function interrupted(): boolean {
  return interruptedBy !== undefined;
}

export function installCleanup(onSignal?: () => Promise<void>): void {
  const stop = (signal: NodeJS.Signals): void => {
    if (interruptedBy) return;
    interruptedBy = signal;
    process.stderr.write(`\nbench: ${signal}, stopping ${live.size} child process(es)\n`);
    void stopAll(2000)
      .then(() => onSignal?.())
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('exit', () => {
    for (const c of live) if (c.running) c.process.kill('SIGKILL');
  });
}

/** Path of a compiled bench script, e.g. `benchScript('origin')`. */
export function benchScript(name: string): string {
  return path.join(BENCH_DIST, `${name}.js`);
}

/** Runs one measurement and stops every process it started, whatever happens. */
export async function withProcesses<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } finally {
    await stopAll();
  }
}

/**
 * In a benchmark child process: listens on a free loopback port, reports it on stdout as
 * `{"port": n}` for the parent, and exits cleanly on SIGTERM.
 */
export function serveAndReport(server: http.Server): void {
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n');
  });
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
