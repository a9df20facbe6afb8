/**
 * Structured logging: every line is an event name plus fields. Humans on a terminal get a
 * coloured line; machines (or --log-format json) get one JSON object per line.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Chalk, supportsColorStderr, type ChalkInstance, type ColorSupportLevel } from 'chalk';
import type { LogEventAt, LogLevel } from './log-events.js';

export type { LogEvent, LogLevel } from './log-events.js';
export type LogFormat = 'pretty' | 'json';
export type LogFields = Record<string, unknown>;

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
export const LOG_LEVELS = Object.keys(RANK) as LogLevel[];

/** Field names whose values never reach a log line. */
const SECRET_KEYS = /token|secret|password|authorization|key$/i;

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Prefix for every line: the node name. */
  node?: string;
  write?: (line: string) => void;
  /** Colours in pretty lines (default: none; `colourOnTerminal()` says whether stderr wants them). */
  colour?: boolean;
  /** With `west.workers` above 1: the worker (0 to N - 1) that writes, on every line. */
  worker?: number;
}

/**
 * Whether pretty lines on stderr get colours: only on a terminal, and never when NO_COLOR is
 * set to anything (https://no-color.org); FORCE_COLOR is honoured through chalk.
 */
export function colourOnTerminal(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return supportsColorStderr !== false && supportsColorStderr.level > 0;
}

export class Logger {
  private readonly opts: Required<Omit<LoggerOptions, 'node' | 'worker'>> & { node: string | undefined; worker?: number };
  private readonly chalk: ChalkInstance;

  constructor(opts: LoggerOptions) {
    this.opts = { write: (line) => process.stderr.write(line + '\n'), node: undefined, colour: false, ...opts };
    const level: ColorSupportLevel = supportsColorStderr === false || supportsColorStderr.level === 0 ? 1 : supportsColorStderr.level;
    this.chalk = new Chalk({ level: this.opts.colour ? level : 0 });
  }

  get format(): LogFormat {
    return this.opts.format;
  }

  /** A logger with the same sink and level that tags lines with `node`. */
  child(node: string): Logger {
    return new Logger({ ...this.opts, node });
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] <= RANK[this.opts.level];
  }

  // Each method takes only the events the catalogue (log-events.ts) puts at its level.
  error(event: LogEventAt<'error'>, fields: LogFields = {}): void { this.emit('error', event, fields); }
  warn(event: LogEventAt<'warn'>, fields: LogFields = {}): void { this.emit('warn', event, fields); }
  info(event: LogEventAt<'info'>, fields: LogFields = {}): void { this.emit('info', event, fields); }
  debug(event: LogEventAt<'debug'>, fields: LogFields = {}): void { this.emit('debug', event, fields); }

  private emit(level: LogLevel, event: string, fields: LogFields): void {
    if (!this.enabled(level)) return;
    const time = isoNow();
    if (this.opts.format === 'json') {
      // The fields go straight into the line's object (what `{ ..., ...redact(fields) }` gave,
      // without the copy in between: a line per request at each end).
      const head = this.opts.worker === undefined ? { time, level, node: this.opts.node, event } : { time, level, node: this.opts.node, worker: this.opts.worker, event };
      this.opts.write(JSON.stringify(redact(fields, head)));
      return;
    }
    const clean = redact(fields);
    const chalk = this.chalk;
    const colour = level === 'error' ? chalk.red : level === 'warn' ? chalk.yellow : level === 'debug' ? chalk.gray : chalk.cyan;
    const parts = Object.entries(clean).map(([k, v]) => `${chalk.dim(k + '=')}${formatValue(v)}`);
    const worker = this.opts.worker === undefined ? '' : `/w${this.opts.worker}`;
    const node = this.opts.node ? chalk.magenta(`[${this.opts.node}${worker}] `) : '';
    const line = `${chalk.dim(time)} ${colour(level.toUpperCase().padEnd(5))} ${node}${chalk.bold(event)} ${parts.join(' ')}`.trimEnd();
    this.opts.write(this.byOutcome(event, clean, line));
  }

  /** A request line that failed stands out: 5xx or a failure code red, 4xx yellow. */
  private byOutcome(event: string, fields: LogFields, line: string): string {
    if (event !== 'access' && event !== 'perform') return line;
    const status = typeof fields.status === 'number' ? fields.status : 0;
    if (status >= 500 || (status === 0 && fields.error !== undefined)) return this.chalk.red(line);
    if (status >= 400) return this.chalk.yellow(line);
    return line;
  }
}

/**
 * The log written to a file (`west -O file`) rather than stderr. Lines are written at once,
 * as stderr's are, so none is lost when the process exits; `reopen()` (on SIGUSR1) starts a
 * new file after logrotate moved the old one away.
 */
export class LogFile {
  private fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a', 0o640);
  }

  readonly write = (line: string): void => {
    writeSync(this.fd, line + '\n');
  };

  /** Writes text as it is (lines with their newlines, see LineBatch). */
  readonly append = (text: string): void => {
    writeSync(this.fd, text);
  };

  /** Opens the path again; the old file is closed once the new one is open. */
  reopen(): void {
    const old = this.fd;
    this.fd = openSync(this.path, 'a', 0o640);
    closeSync(old);
  }
}

/**
 * The lines of one event-loop turn written together. A request logs a line at each end of a
 * tunnel, and one write per line was one syscall per request in each process (a sixth of the
 * CPU a request costs at the default level, doc/benchmarks.md): lines logged in one turn now
 * go out in one write at the end of that turn, and synchronously when the process exits
 * (process.exit, a signal's shutdown, an uncaught exception), so none is lost unless the process
 * is killed outright.
 */
export class LineBatch {
  private lines: string[] = [];
  private scheduled = false;

  constructor(private readonly sink: (text: string) => void) {
    process.on('exit', this.flush);
  }

  readonly write = (line: string): void => {
    this.lines.push(line);
    if (this.scheduled) return;
    this.scheduled = true;
    // Unref'd: a turn's lines never keep the process alive; 'exit' writes them.
    setImmediate(this.flush).unref();
  };

  /** Writes the lines held so far (before the log file is reopened, say). */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const text = this.lines.join('\n') + '\n';
    this.lines = [];
    this.sink(text);
  };

  /** Stops flushing at exit (tests). */
  close(): void {
    this.flush();
    process.off('exit', this.flush);
  }
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v) ?? String(v); // eslint-disable-line @typescript-eslint/no-unnecessary-condition -- JSON.stringify returns undefined for undefined, functions and symbols, whatever its type says
}

/** Field names and whether they name a secret: the same few names come with every line. */
const secretKeys = new Map<string, boolean>();

function isSecretKey(k: string): boolean {
  let secret = secretKeys.get(k);
  if (secret === undefined) {
    if (secretKeys.size >= 4096) secretKeys.clear();
    secretKeys.set(k, secret = SECRET_KEYS.test(k));
  }
  return secret;
}

/** The fields with secrets redacted and errors as their messages, added to `out`. */
function redact(fields: LogFields, out: LogFields = {}): LogFields {
  for (const k in fields) {
    if (!Object.hasOwn(fields, k)) continue;
    const v = fields[k];
    if (v === undefined) continue;
    out[k] = isSecretKey(k) ? '[redacted]' : v instanceof Error ? v.message : v;
  }
  return out;
}

/** The second `isoNow` last formatted, and its text up to the milliseconds. */
let isoSecond = NaN;
let isoPrefix = '';

/**
 * `new Date().toISOString()`, formatting the date and time only once a second (it costs about
 * 2 µs, and a busy node writes a line per request).
 */
export function isoNow(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const ms = now - second * 1000;
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}

/** A logger that prints nothing (tests, library use). */
export const silentLogger = new Logger({ level: 'error', format: 'json', write: () => {} });
