#!/usr/bin/env node
/** The `west` command: argument parsing only; the work is in node.ts and config/. */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { loadConfigFile } from './config/load.js';
import { ConfigError } from './errors.js';
import { LOG_LEVELS, Logger, type LogFormat, type LogLevel } from './log.js';
import { VERSION, WestNode } from './node.js';
import { checkConfigs } from './check.js';
import { startEchoOrigin } from './demo.js';

interface RunArgs {
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

async function run(args: RunArgs): Promise<void> {
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

const demoConfig = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'sample', 'demo', 'demo.json');

await yargs(hideBin(process.argv))
  .scriptName('west')
  .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'verbose output (as the original; info level is the default)' })
  .option('debug', { alias: 'd', type: 'count', describe: 'more detail (debug level)' })
  .option('log-level', { choices: LOG_LEVELS, describe: 'log level (default info, or debug with -d)' })
  .option('log-format', { choices: ['pretty', 'json'] as const, describe: 'pretty on a terminal, JSON lines otherwise' })
  .usage('$0 -c config.json\n\nRuns a west node: tunnel server, tunnel client and proxy listeners as the config says.')
  .command(
    ['$0', 'run'],
    'run a node',
    (y) => y
      .option('config', { alias: 'c', type: 'string', demandOption: true, describe: 'config file (JSON)' }),
    (argv) => run({ config: argv.config, verbose: argv.verbose, debug: argv.debug, logLevel: argv.logLevel, logFormat: argv.logFormat }),
  )
  .command(
    'check [files..]',
    'validate configs without starting anything (several files are checked as one deployment)',
    (y) => y
      .positional('files', { type: 'string', array: true, describe: 'config files' })
      .option('config', { alias: 'c', type: 'string', array: true, describe: 'config file (repeatable)' }),
    async (argv) => {
      const files = [...(argv.config ?? []), ...(argv.files ?? [])];
      if (files.length === 0) {
        process.stderr.write('west check: name at least one config file (west check -c config.json)\n');
        process.exit(2);
      }
      process.exit(await checkConfigs(files, process.stdout));
    },
  )
  .command(
    'demo',
    'run the self-contained demo (sample/demo/demo.json)',
    () => {},
    async (argv) => {
      await startEchoOrigin(9901);
      process.stderr.write(
        'west demo: one node that tunnels to itself. Try, in another terminal:\n' +
        '  curl http://127.0.0.1:9900/hello/world      (through the tunnel to a built-in echo origin)\n' +
        '  curl http://127.0.0.1:9900/state            (this node\'s own state, fetched through its tunnel)\n' +
        '  wget -qO- http://127.0.0.1:9700/             (the control port\'s text dump)\n' +
        'Stop with Ctrl-C.\n');
      return run({ config: demoConfig, verbose: argv.verbose, debug: argv.debug, logLevel: argv.logLevel, logFormat: argv.logFormat });
    },
  )
  .version(VERSION)
  .alias('version', 'V')
  .help()
  .alias('help', 'h')
  .strict()
  .wrap(Math.min(100, process.stdout.columns || 100))
  .parseAsync();
