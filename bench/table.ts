/** Markdown tables and the number formats the benchmark prints. */

export type Align = 'left' | 'right';

/** A markdown table; columns after the first are right-aligned unless `align` says otherwise. */
export function markdownTable(headers: string[], rows: string[][], align?: Align[]): string {
  const al = headers.map((_, i) => align?.[i] ?? (i === 0 ? 'left' : 'right'));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length), 3));
  const pad = (s: string, i: number): string => (al[i] === 'right' ? s.padStart(widths[i] ?? 0) : s.padEnd(widths[i] ?? 0));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => pad(c, i)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (al[i] === 'right' ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`;
  return [line(headers), rule, ...rows.map((r) => line(headers.map((_, i) => r[i] ?? '')))].join('\n');
}

/** 12345.6 -> "12,346". */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Bytes per second as MiB/s with one decimal. */
export function mibps(bytesPerSec: number): string {
  return (bytesPerSec / (1024 * 1024)).toFixed(1);
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/** Bytes as KiB with one decimal. */
export function kib(bytes: number): string {
  return (bytes / 1024).toFixed(1);
}

/** Milliseconds: to the microsecond below 1 ms, two decimals below 10 ms, one below 100, none above. */
export function ms(v: number): string {
  return v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

/** Seconds of CPU per request as whole microseconds ("–" when there were no requests). */
export function usPer(cpuS: number, requests: number): string {
  return requests > 0 && Number.isFinite(cpuS) ? String(Math.round((cpuS * 1e6) / requests)) : '–';
}

/** A share of one core as a percentage ("143%": wrk's two threads may use two cores). */
export function percent(v: number): string {
  return Number.isFinite(v) ? `${Math.round(v * 100)}%` : '–';
}

/** A ratio as "0.42". */
export function ratio(v: number): string {
  return Number.isFinite(v) ? v.toFixed(2) : '–';
}

/** Seconds with one decimal. */
export function seconds(msValue: number): string {
  return (msValue / 1000).toFixed(1);
}
