/**
 * `west pipe -c config <node> <host:port>`: one TCP stream to `host:port` at `node`, on stdin
 * and stdout (an SSH ProxyCommand, a netcat through the mesh). Only the config's tunnel
 * clients start (no listeners, no control port, no tunnel server), and this process performs
 * nothing for its peers. Logs go to stderr only: stdout carries the bytes.
 */
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { formatTcpTarget, parseTcpTarget } from './config/endpoint.js';
import { loadConfigFile } from './config/load.js';
import type { ListenerTarget, NodeConfig } from './config/types.js';
import { ConfigError, WestError } from './errors.js';
import { colourOnTerminal, LineBatch, Logger, type LogFormat, type LogLevel } from './log.js';
import { WestNode } from './node.js';
import type { TunnelStream } from './tunnel/stream.js';

export interface PipeArgs {
  config: string;
  /** The node to connect at: a node name of the mesh, or a `wstc` URL of the config (`ea`). */
  node: string;
  /** `host:port` the node connects to. */
  target: string;
  /** Seconds to wait for a tunnel and a route to `node`. */
  waitS: number;
  logLevel: LogLevel | undefined;
  logFormat: LogFormat | undefined;
  verbose: boolean;
  debug: number;
}

export interface PipeIo {
  stdin: Readable;
  stdout: Writable;
  /** Called once the far end's FIN has been written out: tells stdout's reader EOF (closeStdout). */
  closeOut?: () => void;
  /** Where the one-line errors go (the log too, unless the logger is given). */
  stderr: Writable;
}

/** Only what a pipe needs: the tunnel clients, all dialled now; it performs and relays nothing. */
export function pipeConfig(config: NodeConfig): NodeConfig {
  const { server: _server, control: _control, transit: _transit, ...rest } = config;
  return {
    ...rest, listeners: [], tcpListeners: [], relays: [], egress: new Map(),
    clients: config.clients.map((c) => ({ ...c, early: true })),
  };
}

/** Runs the pipe; resolves with the exit code (0: both directions ended). */
export async function runPipe(args: PipeArgs, io: PipeIo): Promise<number> {
  const fail = (message: string, code = 1): number => {
    io.stderr.write(`west pipe: ${message}\n`);
    return code;
  };
  const to = parseTcpTarget(args.target);
  if (!to) return fail(`${JSON.stringify(args.target)} is not host:port (a host name, an IPv4 address or [IPv6], port 1-65535)`, 2);
  let loaded: NodeConfig;
  try {
    loaded = await loadConfigFile(args.config);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message.replace(/\n\s*/g, '; '));
    throw err;
  }
  if (loaded.clients.length === 0) return fail(`${args.config} has no tunnel client (wstc, or a listener's ea) to join the mesh with`);
  const config = pipeConfig(loaded);
  const lines = new LineBatch((text) => { io.stderr.write(text); });
  const onTerminal = 'isTTY' in io.stderr && io.stderr.isTTY === true;
  const level: LogLevel = args.logLevel ?? (args.debug > 0 ? 'debug' : args.verbose ? 'info' : 'warn');
  const log = new Logger({ level, format: args.logFormat ?? (onTerminal ? 'pretty' : 'json'), colour: onTerminal && colourOnTerminal(), write: lines.write }).child(config.name);
  const node = new WestNode(config, log);
  const target = targetOf(config, args.node);
  try {
    await node.start();
    await waitForRoute(node, target, args.waitS * 1000);
    const stream = await node.openTcp({ target }, to, { timeoutMs: Math.max(1000, args.waitS * 1000) });
    log.info('pipe.connected', { target: args.node, to: formatTcpTarget(to) });
    const error = await pump(stream, io);
    return error === undefined ? 0 : fail(error);
  } catch (err) {
    if (err instanceof WestError) return fail(`${err.message} (${err.code} at ${err.node})`);
    return fail(err instanceof Error ? err.message : String(err));
  } finally {
    await node.stop(0);
    lines.flush();
  }
}

function targetOf(config: NodeConfig, node: string): ListenerTarget {
  const client = config.clients.find((c) => c.url === node);
  return client ? { kind: 'ea', url: client.url } : { kind: 'en', name: node };
}

/** Waits (bounded) until the mesh has a route to the `en` node; an `ea` tunnel is awaited by openTcp. */
async function waitForRoute(node: WestNode, target: ListenerTarget, waitMs: number): Promise<void> {
  if (target.kind === 'ea') return;
  const deadline = Date.now() + waitMs;
  while (!node.mesh.lookup(target.name)) {
    if (Date.now() >= deadline) {
      throw new WestError('no_route', node.config.name, `no route to ${target.name} within ${waitMs / 1000} s (is a tunnel of this config up, and does the mesh reach it?)`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * stdin to the stream, the stream to stdout, each with its own end: stdin's EOF is a FIN at the
 * far end, the far end's FIN ends stdout (`closeOut`, once what came before it is written).
 * Resolves when both directions ended (undefined) or with why the stream was reset.
 */
export function pump(stream: TunnelStream, io: PipeIo): Promise<string | undefined> {
  return new Promise((resolve) => {
    let upDone = false;
    let downDone = false;
    const done = (): void => { if (upDone && downDone) resolve(undefined); };
    stream.once('error', (err: Error) => resolve(`the connection was reset: ${err.message}`));
    // Reset in the same turn it connected: its 'error' has been emitted already.
    if (stream.destroyed) {
      resolve(`the connection was reset: ${stream.errored?.message ?? 'closed before it was used'}`);
      return;
    }
    io.stdin.pipe(stream);
    stream.once('finish', () => { upDone = true; done(); });
    // Nobody reads any more (the consumer closed stdout): what still comes is dropped.
    io.stdout.once('error', () => { stream.unpipe(io.stdout); stream.resume(); });
    // The far end's FIN: stdout ends once what came before it is written (pipe() would end()
    // it, which Node's process.stdout ignores: `closeOut` closes it for real).
    stream.pipe(io.stdout, { end: false });
    stream.once('end', () => {
      io.stdout.write('', () => {
        io.closeOut?.();
        downDone = true;
        done();
      });
    });
  });
}

/**
 * Closes the process's fd 1 so whoever reads it sees EOF while stdin may still be sending
 * (half-close): Node's process.stdout never closes its descriptor, and writing to fd 1 through
 * an fs stream instead fails with EAGAIN when the descriptor is non-blocking (as under ssh).
 * Nothing writes to stdout after the stream has ended.
 */
export function closeStdout(): void {
  try {
    fs.closeSync(1);
  } catch {
    // already closed: nothing to say EOF to
  }
}
