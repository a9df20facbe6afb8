/**
 * Top self-time functions of a V8 CPU profile (`node --cpu-prof` output), and where the busy
 * time goes by kind of code (west, ws, Node internals, GC...).
 *
 *   node dist/bench/profile-top.js /tmp/x/CPU.*.cpuprofile [--top 25] [--from-ms 1500]
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { markdownTable } from './table.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  location: string;
  category: string;
  selfMs: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Sampled time that was not (idle). */
  busyMs: number;
  functions: SelfTime[];
  categories: { category: string; selfMs: number }[];
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function shortUrl(url: string): string {
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const inModules = file.lastIndexOf('/node_modules/');
  if (inModules >= 0) return file.slice(inModules + 1);
  return file.startsWith(ROOT + path.sep) ? path.relative(ROOT, file) : file;
}

/** What kind of code a frame belongs to. */
function categoryOf(frame: CallFrame, where: string): string {
  if (!frame.url) {
    if (frame.functionName === '(garbage collector)') return 'GC';
    if (frame.functionName === '(idle)') return 'idle';
    if (frame.functionName === '(program)') return 'V8/native (program)';
    return 'native (C++ bindings: socket writes, ...)';
  }
  if (where.startsWith('node:')) return 'Node internals';
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where);
  if (mod) return `node_modules/${mod[1]}`;
  if (where.startsWith('dist/src/')) return 'west (dist/src)';
  return 'other';
}

/**
 * Self time per function (name + location), the biggest first. Samples in the first `fromMs`
 * milliseconds of the profile (start-up: module loading, config compilation) are left out.
 */
export function summarise(profile: CpuProfile, fromMs = 0): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const from = profile.startTime + fromMs * 1000;
  let t = profile.startTime;
  // timeDeltas[i] is the time before sample i, so sample i ran until sample i + 1.
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < from) continue;
    const id = profile.samples[i];
    if (id === undefined) break;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    self.set(id, (self.get(id) ?? 0) + Math.max(0, dt));
  }
  const functions = new Map<string, SelfTime>();
  const categories = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) throw new Error(`profile sample names node ${id}, which the profile does not have`);
    const frame = node.callFrame;
    const where = shortUrl(frame.url);
    const location = frame.url ? `${where}:${frame.lineNumber + 1}` : '';
    const name = frame.functionName || '(anonymous)';
    const category = categoryOf(frame, where);
    totalUs += us;
    if (category === 'idle') { idleUs += us; continue; }
    const key = `${name}\u0000${location}`;
    const entry = functions.get(key) ?? { name, location, category, selfMs: 0 };
    entry.selfMs += us / 1000;
    functions.set(key, entry);
    categories.set(category, (categories.get(category) ?? 0) + us / 1000);
  }
  return {
    totalMs: totalUs / 1000,
    busyMs: (totalUs - idleUs) / 1000,
    functions: [...functions.values()].sort((a, b) => b.selfMs - a.selfMs),
    categories: [...categories].map(([category, selfMs]) => ({ category, selfMs })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

export async function readProfile(file: string): Promise<CpuProfile> {
  return JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
}

const pct = (part: number, whole: number): string => `${((100 * part) / Math.max(whole, 1e-9)).toFixed(1)}%`;

/** The summary as markdown: busy share by category, then the top `top` functions. */
export function summaryMarkdown(s: ProfileSummary, top = 20): string {
  const cats = markdownTable(
    ['kind of code', 'self ms', '% of busy'],
    s.categories.map((c) => [c.category, c.selfMs.toFixed(0), pct(c.selfMs, s.busyMs)]),
  );
  const fns = markdownTable(
    ['function', 'where', 'self ms', '% of busy'],
    s.functions.slice(0, top).map((f) => [f.name, f.location || f.category, f.selfMs.toFixed(0), pct(f.selfMs, s.busyMs)]),
    ['left', 'left', 'right', 'right'],
  );
  return `Sampled ${(s.totalMs / 1000).toFixed(1)} s, busy ${(s.busyMs / 1000).toFixed(1)} s (${pct(s.busyMs, s.totalMs)}).\n\n${cats}\n\n${fns}`;
}

async function main(argv: string[]): Promise<void> {
  let top = 25;
  let fromMs = 0;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--top') top = Number(argv[++i]);
    else if (arg === '--from-ms') fromMs = Number(argv[++i]);
    else files.push(arg);
  }
  if (files.length === 0 || !Number.isFinite(top) || !Number.isFinite(fromMs)) {
    process.stderr.write('usage: node dist/bench/profile-top.js <file.cpuprofile>... [--top N] [--from-ms MS]\n');
    process.exit(2);
  }
  for (const file of files) {
    process.stdout.write(`### ${file}\n\n${summaryMarkdown(summarise(await readProfile(file), fromMs), top)}\n\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
