/**
 * The figures' context (command, Node version, machine, date, source revision) and writing
 * them into doc/benchmarks.md. Each kind of figure owns one marked section of the document
 * (`<!-- bench:NAME -->` ... `<!-- /bench:NAME -->`); a run replaces only the sections it
 * measured, so figures from separate runs and the hand-written text around them stay.
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { ROOT } from './procs.js';
import type { WestIncident } from './topology.js';

export interface RunContext {
  command: string;
  node: string;
  cpu: string;
  cores: number;
  date: string;
  revision: string;
  /** 1-minute load average when the run started: other work on the machine skews figures. */
  load: number;
}

function gitRevision(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${head} + uncommitted changes in src/` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

export function runContext(args: string[]): RunContext {
  const cpus = os.cpus();
  return {
    command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
    node: process.version,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    revision: gitRevision(),
    load: os.loadavg()[0] ?? 0,
  };
}

/** The lines every section starts with: how and where its figures were made. */
export function contextLines(ctx: RunContext): string {
  return [
    `Command: \`${ctx.command}\`  `,
    `Node ${ctx.node} · ${ctx.cpu} · ${ctx.cores} cores · load average ${ctx.load.toFixed(2)} at start · ${ctx.date} · west ${ctx.revision}`,
  ].join('\n');
}

const begin = (name: string): string => `<!-- bench:${name} -->`;
const end = (name: string): string => `<!-- /bench:${name} -->`;

/** Replaces (or appends) the marked section `name` of `doc` with `body`. */
export function replaceSection(doc: string, name: string, body: string): string {
  const block = `${begin(name)}\n${body.trim()}\n${end(name)}`;
  const from = doc.indexOf(begin(name));
  const to = doc.indexOf(end(name));
  if (from >= 0 && to > from) return doc.slice(0, from) + block + doc.slice(to + end(name).length);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

/** Writes each section into `file` (creating it if needed). */
export async function writeSections(file: string, sections: Map<string, string>): Promise<void> {
  let doc: string;
  try {
    doc = await readFile(file, 'utf8');
  } catch {
    doc = '# Benchmarks\n\nMade by `npm run bench` (bench/run.ts).\n';
  }
  for (const [name, body] of sections) doc = replaceSection(doc, name, body);
  await writeFile(file, doc);
}

/** West's own warn/error log lines (and crashes) during a run, as a markdown block. */
export function incidentsText(incidents: WestIncident[], limit = 20): string {
  if (incidents.length === 0) return 'West logged no warnings or errors (run at `--log-level warn`).';
  const shown = incidents.slice(0, limit).map((i) => `${i.role}: ${i.line}`);
  const more = incidents.length > limit ? `\n… and ${incidents.length - limit} more lines` : '';
  return `West logged ${incidents.length} line(s) at warn/error level:\n\n\`\`\`\n${shown.join('\n')}${more}\n\`\`\``;
}
