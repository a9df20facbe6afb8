#!/usr/bin/env node
/** The `west` command: argument parsing only; the work is in node.ts and config/. */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { LOG_LEVELS } from './log.js';
import { VERSION } from './node.js';
import { checkConfigs } from './check/index.js';
import { startEchoOrigin } from './demo.js';
import { runNode } from './run.js';
import { showState } from './state-cli.js';

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
    (argv) => runNode({ config: argv.config, verbose: argv.verbose, debug: argv.debug, logLevel: argv.logLevel, logFormat: argv.logFormat }),
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
    'state <url>',
    "print a running node's live state from its control port (west.cp; a token goes in WEST_CP_TOKEN)",
    (y) => y
      .positional('url', { type: 'string', demandOption: true, describe: 'the control port: http://host:port, host:port or :port' })
      .option('json', { type: 'boolean', default: false, describe: 'print /state.json as it is' })
      .option('timeout', { type: 'number', default: 5, describe: 'seconds to wait for the answer' }),
    async (argv) => {
      const timeoutMs = Number.isFinite(argv.timeout) && argv.timeout > 0 ? Math.ceil(argv.timeout * 1000) : 5000;
      const token = process.env.WEST_CP_TOKEN || undefined;
      process.exit(await showState({ target: argv.url, json: argv.json, timeoutMs, token }, process.stdout, process.stderr));
    },
  )
  .command(
    'demo',
    'run the self-contained demo (sample/demo/demo.json)',
    () => {},
    async (argv) => {
      try {
        await startEchoOrigin(9901);
      } catch (err) {
        process.stderr.write(`west demo: cannot start the demo's echo origin on 127.0.0.1:9901: ${(err as Error).message}\n`);
        process.exit(1);
      }
      process.stderr.write(
        'west demo: one node that tunnels to itself. Try, in another terminal:\n' +
        '  curl http://127.0.0.1:9900/hello/world      (through the tunnel to a built-in echo origin)\n' +
        '  curl http://127.0.0.1:9900/state            (this node\'s own state, fetched through its tunnel)\n' +
        '  wget -qO- http://127.0.0.1:9700/             (the control port\'s text dump)\n' +
        'Stop with Ctrl-C.\n');
      return runNode({ config: demoConfig, verbose: argv.verbose, debug: argv.debug, logLevel: argv.logLevel, logFormat: argv.logFormat });
    },
  )
  .version(VERSION)
  .alias('version', 'V')
  .help()
  .alias('help', 'h')
  .strict()
  .wrap(Math.min(100, process.stdout.columns || 100))
  .parseAsync();
