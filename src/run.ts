/** Running one node as a process: load the config, start, and handle signals. */
import { loadConfigFile } from './config/load.js';
import { ConfigError } from './errors.js';
import { Logger, type LogFormat, type LogLevel } from './log.js';
import { WestNode } from './node.js';

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
  process.on('SIGHUP', () => log.warn('node.reload_unsupported', { hint: 'restart the process to apply a new config' }));
}

