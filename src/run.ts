/** Running one node as a process: load the config, start, and handle signals. */
import cluster from 'node:cluster';
import { loadConfigFile } from './config/load.js';
import { ConfigError } from './errors.js';
import { tuneGarbageCollector } from './gc.js';
import { colourOnTerminal, LineBatch, LogFile, Logger, type LogFormat, type LogLevel } from './log.js';
import { WestNode } from './node.js';
import type { NodeConfig } from './config/types.js';
import { parseWorkersFlag, workerCount } from './workers/count.js';
import { runPrimary } from './workers/primary.js';
import { shareFromEnv, workerPart } from './workers/split.js';
import { joinPrimary } from './workers/worker.js';

export interface RunArgs {
  config: string;
  verbose: boolean;
  debug: number;
  logLevel: LogLevel | undefined;
  logFormat: LogFormat | undefined;
  /** `-O`/`--output`: the log goes to this file instead of stderr. */
  output?: string | undefined;
  /** `--input`: the original's option, accepted and ignored. */
  input?: string | undefined;
  /** `--workers`: overrides `west.workers` (a whole number, or "auto"). */
  workers?: string | undefined;
}

/** The process's logger and, with `-O`, the file it writes to (through the batch of the turn's lines). */
function makeLogger(args: Omit<RunArgs, 'config'>, worker?: number): { log: Logger; file: LogFile | undefined; lines: LineBatch } {
  const level: LogLevel = args.logLevel ?? (args.debug > 0 ? 'debug' : 'info');
  let file: LogFile | undefined;
  if (args.output !== undefined) {
    try {
      file = new LogFile(args.output);
    } catch (err) {
      process.stderr.write(`west: cannot open the log file ${args.output}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    }
  }
  const onTerminal = file === undefined && process.stderr.isTTY;
  const format: LogFormat = args.logFormat ?? (onTerminal ? 'pretty' : 'json');
  const lines = new LineBatch(file ? file.append : (text) => { process.stderr.write(text); });
  const log = new Logger({ level, format, colour: onTerminal && colourOnTerminal(), write: lines.write, ...(worker !== undefined ? { worker } : {}) });
  return { log, file, lines };
}

/**
 * A start-up failure, said once: a JSON line in JSON log mode (so a log shipper sees why the
 * node never came up), a plain `west: …` line otherwise. With `-O` the person who started
 * west reads it on stderr too.
 */
function startFailed(log: Logger, file: LogFile | undefined, message: string, fields: Record<string, unknown>): never {
  if (log.format === 'json') log.error('node.start_failed', { error: message, ...fields });
  if (log.format !== 'json' || file !== undefined) process.stderr.write(`west: ${message}\n`);
  process.exit(1);
}

/**
 * The config key that names the endpoint a bind error is about (`proxy["http://127.0.0.1:9911"]`,
 * `west.cp`, `wsts.sp`): the error only carries an address and a port.
 */
export function configKeyOf(config: NodeConfig, err: NodeJS.ErrnoException & { port?: number; address?: string }): string | undefined {
  if (err.port === undefined) return undefined;
  const candidates: { key: string; host: string; port: number }[] = [];
  if (config.server) candidates.push({ key: 'wsts.sp', host: config.server.host, port: config.server.port });
  for (const l of [...config.listeners, ...config.tcpListeners]) candidates.push({ key: `proxy[${JSON.stringify(l.key)}]`, host: l.host, port: l.port });
  if (config.control) candidates.push({ key: 'west.cp', host: config.control.host, port: config.control.port });
  const samePort = candidates.filter((c) => c.port === err.port);
  const anyHost = (h: string | undefined): boolean => h === undefined || h === '' || h === '::' || h === '0.0.0.0';
  const sameHost = samePort.filter((c) => c.host === err.address || (anyHost(c.host) && anyHost(err.address)));
  return (sameHost[0] ?? samePort[0])?.key;
}

/** Runs a node until SIGINT/SIGTERM; exits the process with 1 on a bad config or a port in use. */
export async function runNode(args: RunArgs): Promise<void> {
  tuneGarbageCollector();
  // Started by a primary (west.workers above 1): this process is one of the node's workers.
  const share = shareFromEnv(process.env, cluster.isWorker);
  const { log: processLog, file, lines } = makeLogger(args, share?.worker);
  const flag = args.workers === undefined ? undefined : parseWorkersFlag(args.workers);
  if (flag instanceof Error) startFailed(processLog, file, flag.message, {});
  if (args.input !== undefined) processLog.debug('node.input_ignored', { input: args.input });
  let config;
  try {
    config = await loadConfigFile(args.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      startFailed(processLog, file, err.message, { file: args.config, problems: err.issues.map((i) => `${i.path}: ${i.message}`) });
    }
    throw err;
  }
  const log = processLog.child(config.name);
  if (!share) {
    const workers = workerCount(config, flag);
    if (workers.asked !== undefined) log.warn('node.workers_capped', { workers: workers.count, asked: workers.asked, reason: workers.reason });
    if (workers.count > 1) {
      runPrimary({ count: workers.count, log, forwardUsr1: file !== undefined });
      return;
    }
  }
  const node = new WestNode(share ? workerPart(config, share.worker) : config, log, share);
  try {
    await node.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const key = configKeyOf(config, e);
    const hint = e.code === 'EADDRINUSE'
      ? ` (another process holds this port${key ? `: change ${key} or stop that process` : '; see west.cp, wsts.sp and the proxy keys'})`
      : '';
    startFailed(log, file, `cannot start ${config.name}: ${key ? `${key}: ` : ''}${e.message}${hint}`, { file: args.config, setting: key, code: e.code });
  }

  if (share) joinPrimary(node, share);

  let stopping = false;
  const shutdown = (signal: string): void => {
    // A worker hears a stop from its primary and, from a terminal or systemd, often directly too:
    // one drain; a forced exit is the primary's to decide.
    if (stopping && share) return;
    if (stopping) {
      log.warn('node.forced_exit', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('node.stopping', { signal, drainMs: config.tuning.drainTimeoutMs });
    node.stop().then(() => process.exit(0), (err: unknown) => {
      log.error('node.stop_failed', { error: String(err) });
      process.exit(1);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  const load = share ? async (f: string) => workerPart(fitsWorkers(await loadConfigFile(f), share.workers, f), share.worker) : loadConfigFile;
  const reloads = new ReloadQueue(() => reload(node, args.config, log, load), log);
  process.on('SIGHUP', () => {
    if (!stopping) reloads.request();
  });
  // Only with -O: Node keeps SIGUSR1 for its inspector otherwise.
  if (file) process.on('SIGUSR1', () => {
    try {
      lines.flush(); // what was logged before the signal belongs to the old file
      file.reopen();
      log.info('node.log_reopened', { file: file.path });
    } catch (err) {
      // The old file stays open: lines keep going somewhere rather than nowhere.
      log.error('node.log_reopen_failed', { file: file.path, error: err instanceof Error ? err.message : String(err) });
    }
  });
}

/**
 * A reloaded file for a node of `workers` workers: rejected when that many would no longer
 * run it (a tunnel's `connections` × workers above one pool's 16, a tunnel over MQTT, a relay
 * between its server and its tunnels), as workerCount lowers the count at start. The count
 * cannot change without a restart, and each worker judges the whole file the same way.
 */
export function fitsWorkers(next: NodeConfig, workers: number, file: string): NodeConfig {
  const fit = workerCount(next, workers);
  if (fit.count < workers) {
    throw new ConfigError([{ path: 'west.workers', message: `${workers} workers run and cannot change without a restart, but this file fits ${fit.count}: ${fit.reason ?? ''}`, file }], file);
  }
  return next;
}

/**
 * Runs reloads one at a time: a request while one runs is queued, and further requests fold
 * into that one (it reads the file when it starts, so it sees the latest edit).
 */
export class ReloadQueue {
  private running: Promise<void> | undefined;
  private pending = false;

  constructor(private readonly run: () => Promise<void>, private readonly log: Logger) {}

  request(): void {
    if (this.running) {
      if (!this.pending) this.log.info('node.reload_queued', {});
      this.pending = true;
      return;
    }
    this.running = this.drain();
  }

  /** Resolves once no reload is running or queued. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    do {
      this.pending = false;
      // reload() logs its own failures; this is a last guard so a signal can never kill the node.
      await this.run().catch((err: unknown) => this.log.error('node.reload_failed', { error: String(err) }));
    } while (this.pending); // eslint-disable-line @typescript-eslint/no-unnecessary-condition -- request() sets it while run() is awaited
    this.running = undefined;
  }
}

/**
 * SIGHUP: re-read the config file and apply what changed. A config that does not load, or
 * that cannot be applied, is rejected with its errors and the running one stays in force;
 * anything unexpected is logged as node.reload_failed. Never throws.
 */
export async function reload(
  node: Pick<WestNode, 'reload'>, file: string, log: Logger, load: (file: string) => Promise<NodeConfig> = loadConfigFile,
): Promise<void> {
  log.info('node.reload_requested', { file });
  let next;
  try {
    next = await load(file);
  } catch (err) {
    if (err instanceof ConfigError) log.error('node.reload_rejected', { file, problems: err.issues.map((i) => `${i.path}: ${i.message}`) });
    else failed(log, file, err);
    return;
  }
  try {
    await node.reload(next);
  } catch (err) {
    // A refusal (west.nm) or a port that cannot be bound: the node says why and nothing changed.
    log.error('node.reload_rejected', { file, error: err instanceof Error ? err.message : String(err) });
  }
}

function failed(log: Logger, file: string, err: unknown): void {
  log.error('node.reload_failed', { file, error: err instanceof Error ? err.message : String(err) });
  if (err instanceof Error) log.debug('node.reload_failed_stack', { stack: err.stack });
}
