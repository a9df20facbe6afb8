/**
 * Resident memory of other processes, read from /proc/<pid>/status (Linux): VmRSS now and
 * VmHWM, the peak since the process started. A sampler polls VmRSS to find the peak within a
 * window of time (VmHWM also counts start-up).
 */
import { readFileSync } from 'node:fs';

export interface Memory {
  /** Resident set now, bytes. */
  rss: number;
  /** Peak resident set since the process started, bytes. */
  hwm: number;
}

/** VmRSS and VmHWM of `pid`, in bytes; undefined once the process is gone. */
export function readMemory(pid: number): Memory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** Polls the RSS of some processes and keeps the peak of each. */
export class RssSampler {
  readonly peaks = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: number[], everyMs = 50) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  peak(pid: number): number {
    return this.peaks.get(pid) ?? 0;
  }

  private sample(): void {
    for (const pid of this.pids) {
      const m = readMemory(pid);
      if (m && m.rss > (this.peaks.get(pid) ?? 0)) this.peaks.set(pid, m.rss);
    }
  }
}

/** Median RSS of `pid` over `forMs` (sampled every 100 ms): a figure that one GC does not swing. */
export async function settledRss(pid: number, forMs: number): Promise<number> {
  const values: number[] = [];
  const until = Date.now() + forMs;
  while (Date.now() < until) {
    const m = readMemory(pid);
    if (m) values.push(m.rss);
    await new Promise((r) => setTimeout(r, 100));
  }
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] ?? 0;
}
