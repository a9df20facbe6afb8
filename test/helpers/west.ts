/**
 * Runs the real `west` CLI as a child process. Ports only a test talks to are written as 0 in
 * its config and read back from the node's log (`bound()`); ports a config must name before a
 * node starts (a tunnel server its clients dial, a listener another node's `ou` points at, a
 * port a restarted node must bind again) are picked with `freePort`, and the start is retried
 * on fresh ports when one was taken in between (`retryIfPortTaken`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { entry } from './at.js';
import { freePort, waitFor } from './net.js';
import { Origin } from './origin.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (tests run compiled from dist/test/helpers). */
export const ROOT = path.resolve(here, '..', '..', '..');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
export const SAMPLES = path.join(ROOT, 'sample');

export interface LogEvent {
  event: string;
  level: string;
  [field: string]: unknown;
}

/** What the node logged when it bound its ports (a config may say 0: these are the real ones). */
export interface BoundPorts {
  control: number | undefined;
  server: number | undefined;
  /** Port of each proxy listener, by its key as written in the config. */
  listeners: Map<string, number>;
}

/** Deadline for a node to start; booting can take seconds on a loaded two-core machine. */
const START_MS = 30_000;

/** Starts made in all when a picked port was taken before the node bound it. */
const PORT_ATTEMPTS = 3;

/** Did a node (or a reload) fail because a port was in use? */
export function portTaken(err: unknown): boolean {
  return err instanceof Error && err.message.includes('EADDRINUSE');
}

/**
 * Runs `start` again when it fails on a taken port: a port picked with `freePort` can be bound
 * by another process before the node binds it. `start` picks its ports afresh each time and
 * stops whatever it started before it throws.
 */
export async function retryIfPortTaken<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!portTaken(err) || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

/** A temporary directory removed by `cleanup()`. */
export async function tempDir(prefix = 'west-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Reads sample configs (paths relative to sample/) and rewrites every port number (":NNNN")
 * to a free port, the same number to the same port across all files. Writes the results into
 * `dir` and returns their paths plus the port map (original -> new).
 */
export async function portedSamples(dir: string, files: string[], extra: number[] = []): Promise<{ paths: Record<string, string>; ports: Map<number, number> }> {
  const texts = await Promise.all(files.map((f) => readFile(path.join(SAMPLES, f), 'utf8')));
  const ports = new Map<number, number>();
  const wanted = new Set<number>(extra);
  for (const t of texts) for (const m of t.matchAll(/:(\d{4,5})\b/g)) wanted.add(Number(m[1]));
  for (const p of wanted) ports.set(p, await freePort());
  const paths: Record<string, string> = {};
  await Promise.all(files.map(async (f, i) => {
    const text = (texts[i] ?? '').replace(/:(\d{4,5})\b/g, (_m, p: string) => `:${ports.get(Number(p))}`);
    const out = path.join(dir, f.replace(/[\\/]/g, '-'));
    await writeFile(out, text);
    paths[f] = out;
  }));
  return { paths, ports };
}

export interface StartedSamples {
  /** Path of each config as written, by sample file. */
  paths: Record<string, string>;
  /** Sample port -> the port in use. */
  ports: Map<number, number>;
  /** The running node of each sample file. */
  nodes: Map<string, WestProcess>;
}

/**
 * Ports the samples (`portedSamples`), starts `origin` on the port that stands for the sample's
 * `originPort`, then a node per file in order. The sample configs name each other's ports, so
 * these are picked before anything starts: when one was taken meanwhile, whatever started is
 * stopped and it all starts over on fresh ports.
 */
export async function startSamples(dir: string, files: string[], origin: { server: Origin; samplePort: number }): Promise<StartedSamples> {
  return retryIfPortTaken(async () => {
    const { paths, ports } = await portedSamples(dir, files, [origin.samplePort]);
    const nodes = new Map<string, WestProcess>();
    let originUp = false;
    try {
      await origin.server.listen(ports.get(origin.samplePort));
      originUp = true;
      for (const f of files) nodes.set(f, await WestProcess.start(entry(paths, f)));
      return { paths, ports, nodes };
    } catch (err) {
      await Promise.all([...nodes.values()].map((n) => n.stop()));
      if (originUp) await origin.server.close();
      throw err;
    }
  });
}

/** Writes a config object as JSON into dir and returns its path. */
export async function writeConfig(dir: string, name: string, config: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

export class WestProcess {
  readonly child: ChildProcess;
  readonly events: LogEvent[] = [];
  stderr = '';
  stdout = '';
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;

  private constructor(args: string[], env?: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    this.child.stdout!.setEncoding('utf8').on('data', (c: string) => { this.stdout += c; });
    let partial = '';
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      this.stderr += c;
      partial += c;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        try {
          const e = JSON.parse(line) as LogEvent;
          if (e && typeof e.event === 'string') this.events.push(e);
        } catch { /* not a log line */ }
      }
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      this.exitCode = code ?? (signal ? 128 : null);
      resolve(this.exitCode);
    }));
  }

  /** Spawns `west <args>` without waiting for anything (in `env` instead of this process's). */
  static spawn(args: string[], env?: NodeJS.ProcessEnv): WestProcess {
    const p = new WestProcess(args, env);
    running.add(p);
    return p;
  }

  /** Runs `west -c config` and waits until the node reports it started. */
  static async start(config: string, extraArgs: string[] = [], env?: NodeJS.ProcessEnv): Promise<WestProcess> {
    const p = WestProcess.spawn(['-c', config, '--log-format', 'json', ...extraArgs], env);
    try {
      await Promise.race([
        p.waitForEvent('node.started', undefined, START_MS),
        p.exited.then((code) => { throw new Error(`west exited with ${code} before starting:\n${p.stderr}`); }),
      ]);
    } catch (err) {
      await p.stop();
      throw err;
    }
    return p;
  }

  /**
   * The ports this node bound, from its log lines (the latest for each: a reload may bind
   * again). Complete once `start()` has returned: every bind is logged before node.started.
   */
  bound(): BoundPorts {
    const ports: BoundPorts = { control: undefined, server: undefined, listeners: new Map() };
    for (const e of this.events) {
      if (e.event === 'control.listening') ports.control = Number(e.port);
      else if (e.event === 'tunnel.server_listening') ports.server = Number(e.port);
      else if (e.event === 'proxy.listening') ports.listeners.set(String(e.listener), Number(e.port));
    }
    return ports;
  }

  /** `http://127.0.0.1:<port>` of the control port (throws when the node has none). */
  controlUrl(): string {
    const port = this.bound().control;
    if (port === undefined) throw new Error('this node logged no control.listening');
    return `http://127.0.0.1:${port}`;
  }

  /**
   * `http://host:<port>` of a proxy listener: the one with `key` (as written in the config), or
   * the node's only listener. The host is the key's (loopback when the key means every interface).
   */
  listenerUrl(key?: string): string {
    const listeners = [...this.bound().listeners];
    const found = key === undefined ? (listeners.length === 1 ? listeners[0] : undefined) : listeners.find(([k]) => k === key);
    if (!found) throw new Error(`no proxy.listening for ${key ?? 'a single listener'} (logged: ${listeners.map(([k]) => k).join(', ') || 'none'})`);
    const [, scheme, host] = /^(https?):\/\/(\[[^\]]*\]|[^:/]*)/i.exec(found[0]) ?? [];
    const reachable = !host || host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
    return `${scheme ?? 'http'}://${reachable}:${found[1]}`;
  }

  /** Port of the tunnel server (throws when the node has none). */
  serverPort(): number {
    const port = this.bound().server;
    if (port === undefined) throw new Error('this node logged no tunnel.server_listening');
    return port;
  }

  /** Waits for a log event (optionally matching `match`), bounded. */
  async waitForEvent(event: string, match: (e: LogEvent) => boolean = () => true, timeoutMs = 10_000): Promise<LogEvent> {
    return waitFor(`log event ${event}`, () => this.events.find((e) => e.event === event && match(e)), timeoutMs);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Returns the exit code. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (this.exitCode === null && this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    running.delete(this);
    return this.exitCode;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }
}

const running = new Set<WestProcess>();

/** Stops every west process a test file started (call from `after`). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(5000)));
}

/** Runs `west <args>` to completion (in `env` instead of this process's); returns exit code and output. */
export async function runCli(args: string[], timeoutMs = 15_000, env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = WestProcess.spawn(args, env);
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  running.delete(p);
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/**
 * A test file's origin and temporary directory: set up before its tests and torn down after
 * them, together with every west process the file started. Call it at the top level.
 */
export function originAndTempDir(prefix: string): { readonly origin: Origin; readonly dir: string } {
  const origin = new Origin();
  let dir = '';
  let cleanup = async (): Promise<void> => {};
  before(async () => {
    await origin.listen();
    ({ dir, cleanup } = await tempDir(prefix));
  });
  after(async () => {
    await stopAll();
    await origin.close();
    await cleanup();
  });
  return { origin, get dir() { return dir; } };
}

/**
 * One node that tunnels to itself (as the demo does) in front of a test Origin, mapped at
 * `/o`, set up before the file's tests and torn down after: the listener's port is `port`.
 */
export function selfTunnelledNode(prefix: string, west: Record<string, unknown> = {}): { readonly origin: Origin; readonly port: number } {
  const origin = new Origin();
  let port = 0;
  let cleanup = async (): Promise<void> => {};
  before(async () => {
    await origin.listen();
    const sp = await freePort();
    port = await freePort();
    let dir: string;
    ({ dir, cleanup } = await tempDir(prefix));
    const config = await writeConfig(dir, 'self.json', {
      west: { nm: 'self', ...west },
      wsts: { sp: `ws://127.0.0.1:${sp}` },
      proxy: { [`http://127.0.0.1:${port}`]: { ea: `ws://127.0.0.1:${sp}`, '/o': { ou: `http://127.0.0.1:${origin.port}/` } } },
    });
    const node = await WestProcess.start(config);
    await node.waitForEvent('tunnel.connected');
  });
  after(async () => {
    await stopAll();
    await origin.close();
    await cleanup();
  });
  return { origin, get port() { return port; } };
}
