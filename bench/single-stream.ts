/**
 * One big download on one connection through each line: how fast a single stream moves, and
 * what it costs each process per GiB. The client is curl (C, writing to /dev/null), which is
 * faster than any line it measures; the origin streams the body in 64 KiB writes.
 */
import { execFile } from 'node:child_process';
import { cpuSnapshot, cpuSpent, type MeteredProc } from './cpu.js';
import { markdownTable, mibps, ratio } from './table.js';
import { LABEL, type Target } from './topology.js';

export interface StreamRun {
  bytes: number;
  seconds: number;
  /** CPU seconds of each process of the line (the origin and the proxies) over the download. */
  cpuS: Map<string, number>;
  error?: string;
}

export interface StreamLine {
  target: Target;
  /** The fastest of the runs (the machine is shared: other work only ever slows a run). */
  best: StreamRun | undefined;
  errors: string[];
}

/** Whether curl is on the PATH (the section is left out, with a warning, without it). */
export function haveCurl(): Promise<boolean> {
  return new Promise((resolve) => execFile('curl', ['--version'], (err) => resolve(!err)));
}

function curlDownload(url: string, timeoutS: number): Promise<{ bytes: number; seconds: number; error?: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '-o', '/dev/null', '--max-time', String(timeoutS), '-w', '%{http_code} %{size_download} %{time_total}', url],
      (err, stdout) => {
        const [code, size, total] = stdout.trim().split(' ');
        const bytes = Number(size ?? 0);
        const seconds = Number(total ?? 0);
        if (err || code !== '200') resolve({ bytes, seconds, error: err ? `curl: ${err.message.split('\n')[0] ?? ''}` : `status ${code ?? '?'}` });
        else resolve({ bytes, seconds });
      });
  });
}

/**
 * Downloads `size` bytes through every target, `rounds` passes over all of them in turn,
 * each download on a fresh connection; keeps each line's fastest complete run.
 */
export async function measureSingleStream(targets: Target[], origin: MeteredProc, size: number, rounds: number, timeoutS: number): Promise<StreamLine[]> {
  const lines: StreamLine[] = targets.map((target) => ({ target, best: undefined, errors: [] }));
  for (let round = 0; round < rounds; round++) {
    for (const line of lines) {
      const procs = [origin, ...line.target.proxies];
      const before = cpuSnapshot(procs);
      const got = await curlDownload(`${line.target.base}/bytes/${size}`, timeoutS);
      const cpuS = cpuSpent(before, cpuSnapshot(procs));
      if (got.error || got.bytes !== size) {
        line.errors.push(got.error ?? `${got.bytes} of ${size} bytes`);
        continue;
      }
      if (!line.best || got.seconds < line.best.seconds) line.best = { ...got, cpuS };
    }
  }
  return lines;
}

/** The section's table: MiB/s, × direct, and CPU per GiB of the proxies and the origin. */
export function singleStreamTable(lines: StreamLine[]): string {
  const rate = (l: StreamLine | undefined): number => (l?.best ? l.best.bytes / l.best.seconds : NaN);
  const direct = rate(lines.find((l) => l.target.label === LABEL.direct));
  const rows = lines.map((line) => {
    const run = line.best;
    if (!run) return [line.target.label, '–', '–', '–', '–', line.errors.join('; ') || 'no run'];
    const gib = run.bytes / 2 ** 30;
    const perGib = (name: string): string => ((run.cpuS.get(name) ?? NaN) / gib).toFixed(2);
    const proxies = line.target.proxies.map((p) => `${p.name} ${perGib(p.name)}`).join(' · ');
    return [line.target.label, mibps(rate(line)), ratio(rate(line) / direct), perGib('origin'), proxies || '–', line.errors.length ? `${line.errors.length} failed` : ''];
  });
  return markdownTable(['line', 'MiB/s', '× direct', 'origin CPU s/GiB', 'proxy CPU s/GiB, each process', 'failures'], rows,
    ['left', 'right', 'right', 'right', 'left', 'left']);
}

/** The single-stream ratio of west one hop to direct, for the targets table. */
export function oneHopStreamRatio(lines: StreamLine[]): number | undefined {
  const r = (label: string): number | undefined => {
    const run = lines.find((l) => l.target.label === label)?.best;
    return run ? run.bytes / run.seconds : undefined;
  };
  const w = r(LABEL.oneHop);
  const d = r(LABEL.direct);
  return w !== undefined && d !== undefined ? w / d : undefined;
}
