/**
 * Runs the real `west` CLI as a child process on configs derived from the samples, with every
 * port rewritten to a free one so tests never collide with each other or with a user's node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
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
    const text = texts[i]!.replace(/:(\d{4,5})\b/g, (_m, p: string) => `:${ports.get(Number(p))}`);
    const out = path.join(dir, f.replace(/[\\/]/g, '-'));
    await writeFile(out, text);
    paths[f] = out;
  }));
  return { paths, ports };
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

  private constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

  /** Spawns `west <args>` without waiting for anything. */
  static spawn(args: string[]): WestProcess {
    const p = new WestProcess(args);
    running.add(p);
    return p;
  }

  /** Runs `west -c config` and waits until the node reports it started. */
  static async start(config: string, extraArgs: string[] = []): Promise<WestProcess> {
    const p = WestProcess.spawn(['-c', config, '--log-format', 'json', ...extraArgs]);
    await Promise.race([
      p.waitForEvent('node.started'),
      p.exited.then((code) => { throw new Error(`west exited with ${code} before starting:\n${p.stderr}`); }),
    ]);
    return p;
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

/** Runs `west <args>` to completion; returns exit code and output. */
export async function runCli(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = WestProcess.spawn(args);
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
