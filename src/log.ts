/**
 * Structured logging: every line is an event name plus fields. Humans on a terminal get a
 * coloured line; machines (or --log-format json) get one JSON object per line.
 */
import chalk from 'chalk';
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
}

export class Logger {
  private readonly opts: Required<Omit<LoggerOptions, 'node'>> & { node: string | undefined };

  constructor(opts: LoggerOptions) {
    this.opts = { write: (line) => process.stderr.write(line + '\n'), node: undefined, ...opts };
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
    const clean = redact(fields);
    const time = new Date().toISOString();
    if (this.opts.format === 'json') {
      this.opts.write(JSON.stringify({ time, level, node: this.opts.node, event, ...clean }));
      return;
    }
    const colour = level === 'error' ? chalk.red : level === 'warn' ? chalk.yellow : level === 'debug' ? chalk.gray : chalk.cyan;
    const parts = Object.entries(clean).map(([k, v]) => `${chalk.dim(k + '=')}${formatValue(v)}`);
    const node = this.opts.node ? chalk.magenta(`[${this.opts.node}] `) : '';
    this.opts.write(`${chalk.dim(time)} ${colour(level.toUpperCase().padEnd(5))} ${node}${chalk.bold(event)} ${parts.join(' ')}`.trimEnd());
  }
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v) ?? String(v); // eslint-disable-line @typescript-eslint/no-unnecessary-condition -- JSON.stringify returns undefined for undefined, functions and symbols, whatever its type says
}

function redact(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[k] = SECRET_KEYS.test(k) ? '[redacted]' : v instanceof Error ? v.message : v;
  }
  return out;
}

/** A logger that prints nothing (tests, library use). */
export const silentLogger = new Logger({ level: 'error', format: 'json', write: () => {} });
