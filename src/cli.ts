#!/usr/bin/env node
/** The `west` command: argument parsing only; the work is in node.ts and config/. */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commandWord, nearestCommand, withDebugLevel } from './cli-args.js';
import { LOG_LEVELS } from './log.js';
import { VERSION } from './node.js';
import { checkConfigs } from './check/index.js';
import { startEchoOrigin } from './demo.js';
import { closeStdout, runPipe } from './pipe.js';
import { runNode } from './run.js';
import { issueSession } from './session-cli.js';
import { showState } from './state-cli.js';

const demoConfig = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'sample', 'demo', 'demo.json');

const COMMANDS = ['run', 'check', 'state', 'session', 'pipe', 'demo', 'origin', 'completion'];

const args = withDebugLevel(hideBin(process.argv));
const word = commandWord(args);
if (word !== undefined && !COMMANDS.includes(word) && !args.includes('--get-yargs-completions')) {
  // The default command (run) would take it as a stray argument and ask for -c instead.
  const near = nearestCommand(word, COMMANDS);
  process.stderr.write(`west: unknown command "${word}"${near ? `; did you mean "west ${near}"?` : ''} (west --help lists the commands)\n`);
  process.exit(2);
}

/** The original's debug level: the number of -d plus --debug N. */
function debugLevel(argv: { d: number; debug: number | undefined }): number {
  return argv.d + (argv.debug !== undefined && Number.isFinite(argv.debug) ? argv.debug : 0);
}

/** What every way of running a node takes from the command line besides the config. */
function logArgs(argv: { verbose: boolean; d: number; debug: number | undefined; logLevel: (typeof LOG_LEVELS)[number] | undefined; logFormat: 'pretty' | 'json' | undefined; output: string | undefined; input: string | undefined }) {
  return { verbose: argv.verbose, debug: debugLevel(argv), logLevel: argv.logLevel, logFormat: argv.logFormat, output: argv.output, input: argv.input };
}

await yargs(args)
  .scriptName('west')
  .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'verbose output (as the original; info level is the default)' })
  .option('d', { type: 'count', describe: 'more detail (debug level); the level is the number of -d plus --debug' })
  .option('debug', { type: 'number', describe: 'debug level, as the original\'s --debug N (adds to the -d count)' })
  .option('log-level', { choices: LOG_LEVELS, describe: 'log level (default info, or debug with -d)' })
  .option('log-format', { choices: ['pretty', 'json'] as const, describe: 'pretty on a terminal, JSON lines otherwise' })
  .option('output', { alias: 'O', type: 'string', describe: 'write the log to this file (reopened on SIGUSR1, for logrotate)' })
  .option('input', { type: 'string', describe: "accepted for the original's usage line; west ignores it" })
  .usage('$0 -c config.json\n\nRuns a west node: tunnel server, tunnel client and proxy listeners as the config says.')
  .command(
    ['$0', 'run'],
    'run a node',
    (y) => y
      .option('config', { alias: 'c', type: 'string', demandOption: true, describe: 'config file (JSON)' })
      .option('workers', { type: 'string', describe: 'worker processes: a number, or auto (overrides west.workers)' }),
    (argv) => runNode({ config: argv.config, workers: argv.workers, ...logArgs(argv) }),
  )
  .command(
    'check [files..]',
    'validate configs without starting anything (several files are checked as one deployment)',
    (y) => y
      .positional('files', { type: 'string', array: true, describe: 'config files' })
      .option('config', { alias: 'c', type: 'string', array: true, describe: 'config file (repeatable)' })
      .option('skip-secrets', {
        type: 'boolean', default: false,
        describe: 'for a machine that is not the node: a token whose environment variable is unset or whose file is absent (or a TLS key file) is listed as not read instead of an error, and the rest is checked',
      }),
    async (argv) => {
      const files = [...(argv.config ?? []), ...(argv.files ?? [])];
      if (files.length === 0) {
        process.stderr.write('west check: name at least one config file (west check -c config.json)\n');
        process.exit(2);
      }
      process.exit(await checkConfigs(files, process.stdout, { skipSecrets: argv.skipSecrets }));
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
    'session <action> [args..]',
    'issue a one-time key on a node\'s control port: "new <node> <host:port>" (remote access) or "pair" (rendezvous); prints the WebSocket URL',
    (y) => y
      .positional('action', { type: 'string', demandOption: true, choices: ['new', 'pair'], describe: 'new: a remote-access key bound to a node and a TCP endpoint; pair: a rendezvous key' })
      .positional('args', { type: 'string', array: true, describe: 'for new: the node that reaches the endpoint, and the endpoint (host:port)' })
      .option('cp', { type: 'string', describe: 'the control port (http://host:port, host:port or :port); a token goes in WEST_CP_TOKEN' })
      .option('config', { alias: 'c', type: 'string', describe: 'the node\'s config: its west.cp and west.cpToken are used' })
      .option('listener', { type: 'string', describe: 'which listener of west.access to print the URL of (default: the first)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the whole answer (key, url, expires) as JSON' })
      .option('timeout', { type: 'number', default: 5, describe: 'seconds to wait for the answer' }),
    async (argv) => {
      const timeoutMs = Number.isFinite(argv.timeout) && argv.timeout > 0 ? Math.ceil(argv.timeout * 1000) : 5000;
      process.exit(await issueSession({
        action: argv.action, args: (argv.args ?? []).map(String), json: argv.json, timeoutMs,
        ...(argv.cp !== undefined ? { cp: argv.cp } : {}), ...(argv.config !== undefined ? { config: argv.config } : {}),
        ...(argv.listener !== undefined ? { listener: argv.listener } : {}),
        ...(process.env.WEST_CP_TOKEN ? { token: process.env.WEST_CP_TOKEN } : {}),
      }, process.stdout, process.stderr));
    },
  )
  .command(
    'pipe <node> <target>',
    'join the mesh with the config\'s tunnel clients, open one TCP stream to <target> (host:port) at <node> and pipe stdin/stdout through it (an SSH ProxyCommand: west pipe -c me.json L2 %h:%p)',
    (y) => y
      .positional('node', { type: 'string', demandOption: true, describe: 'the node that connects: a node name of the mesh, or a wstc URL of the config' })
      .positional('target', { type: 'string', demandOption: true, describe: 'host:port the node connects to (allowed by its west.egress as tcp://host:port)' })
      .option('config', { alias: 'c', type: 'string', demandOption: true, describe: 'config file (JSON) whose tunnel clients to use' })
      .option('wait', { type: 'number', default: 10, describe: 'seconds to wait for a tunnel and a route to <node>' }),
    async (argv) => {
      const waitS = Number.isFinite(argv.wait) && argv.wait > 0 ? argv.wait : 10;
      const code = await runPipe(
        { config: argv.config, node: argv.node, target: argv.target, waitS, ...logArgs(argv) },
        { stdin: process.stdin, stdout: process.stdout, closeOut: closeStdout, stderr: process.stderr },
      );
      process.exit(code);
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
      // One process: the demo's echo origin is this process's, and a worker would run `demo` again.
      return runNode({ config: demoConfig, workers: '1', ...logArgs(argv) });
    },
  )
  .command(
    'origin',
    'run a small HTTP origin that answers 200 to every request with what reached it (for the samples)',
    (y) => y
      .option('port', { alias: 'p', type: 'number', demandOption: true, describe: 'port to listen on (0: any free port)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' }),
    async (argv) => {
      try {
        const server = await startEchoOrigin(argv.port, argv.host);
        const a = server.address();
        const port = typeof a === 'object' && a ? a.port : argv.port;
        process.stderr.write(`west origin: answering on http://${argv.host.includes(':') ? `[${argv.host}]` : argv.host}:${port}/ (Ctrl-C stops it)\n`);
        const stop = (): void => { server.close(); server.closeAllConnections(); };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      } catch (err) {
        process.stderr.write(`west origin: cannot listen on ${argv.host}:${argv.port}: ${(err as Error).message}\n`);
        process.exit(1);
      }
    },
  )
  .completion('completion', 'print a bash/zsh completion script (west completion >> ~/.bashrc)')
  .version(VERSION)
  .alias('version', 'V')
  .help()
  .alias('help', 'h')
  .strict()
  .strictCommands()
  .recommendCommands()
  .wrap(Math.min(100, process.stdout.columns || 100))
  .parseAsync();
