/** Running one node as a process: load the config, start, and handle signals. */
import { loadConfigFile } from './config/load.js';
import { ConfigError } from './errors.js';
import { Logger, type LogFormat, type LogLevel } from './log.js';
import { WestNode } from './node.js';
import type { NodeConfig } from './config/types.js';

export interface RunArgs {
  config: string;
  verbose: boolean;
  debug: number;
  logLevel: LogLevel | undefined;
  logFormat: LogFormat | undefined;
}

function makeLogger(args: Omit<RunArgs, 'config'>): Logger {
  const level: LogLevel = args.logLevel ?? (args.debug > 0 ? 'debug' : 'info');
  const format: LogFormat = args.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json');
  return new Logger({ level, format });
}

/** Runs a node until SIGINT/SIGTERM; exits the process with 1 on a bad config or a port in use. */
export async function runNode(args: RunArgs): Promise<void> {
  const log = makeLogger(args);
  let config;
  try {
    config = await loadConfigFile(args.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`west: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const node = new WestNode(config, log.child(config.name));
  try {
    await node.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'EADDRINUSE' ? ' (another process holds this port; see west.cp, wsts.sp and the proxy keys)' : '';
    process.stderr.write(`west: cannot start ${config.name}: ${e.message}${hint}\n`);
    process.exit(1);
  }

  let stopping = false;
  const shutdown = (signal: string): void => {
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
  const reloads = new ReloadQueue(() => reload(node, args.config, log), log);
  process.on('SIGHUP', () => {
    if (!stopping) reloads.request();
  });
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
