/**
 * CPU time of other processes, read from /proc/<pid>/stat (Linux): user + system time of a
 * process (all its threads) and of its descendants alive at the time of reading (nginx's
 * workers are children of the master the benchmark started). Read before and after a measured
 * window and divided by the requests completed in it, it gives CPU per request: a figure that
 * other work on a shared machine moves far less than requests per second.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of utime/stime (`getconf CLK_TCK`; 100 on Linux almost everywhere). */
export const CLOCK_TICKS: number = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

interface Stat {
  ppid: number;
  /** utime + stime, clock ticks. */
  ticks: number;
}

/** Fields of /proc/<pid>/stat; undefined once the process is gone. */
function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: fields count from after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** Every live process's parent, one pass over /proc. */
function parents(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(Number(name));
    children.set(st.ppid, list);
  }
  return children;
}

/** CPU seconds (user + system) used so far by `pid` and its live descendants; 0 when gone. */
export function cpuSeconds(pid: number, children = parents()): number {
  let ticks = 0;
  const todo = [pid];
  for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
    ticks += readStat(p)?.ticks ?? 0;
    todo.push(...(children.get(p) ?? []));
  }
  return ticks / CLOCK_TICKS;
}

/** A process whose CPU is counted, under a short name ("origin", "L", "nginx"...). */
export interface MeteredProc {
  name: string;
  pid: number;
}

/** CPU seconds of each process now, by name. */
export function cpuSnapshot(procs: MeteredProc[]): Map<string, number> {
  const children = parents();
  return new Map(procs.map((p) => [p.name, cpuSeconds(p.pid, children)]));
}

/** CPU seconds each process spent between two snapshots. */
export function cpuSpent(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  return new Map([...after].map(([name, s]) => [name, Math.max(0, s - (before.get(name) ?? s))]));
}
