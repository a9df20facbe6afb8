/**
 * Memory under a big, slow transfer: a 1 GiB body through the three-node chain to a client
 * that reads slowly, with the resident memory of every west process sampled throughout. With
 * flow control working, memory is bounded by the windows, not by the body.
 */
import { withProcesses } from './procs.js';
import { contextLines, incidentsText, type RunContext } from './report.js';
import { readMemory, RssSampler } from './rss.js';
import { slowRead } from './slow-reader.js';
import { markdownTable, mib, mibps, seconds } from './table.js';
import { startOrigin, startThreeHops, westIncidents } from './topology.js';

export interface MemoryOptions {
  dir: string;
  sizeBytes: number;
  rateMiBps: number;
  pauseEveryMiB: number;
  pauseMs: number;
}

const LIMIT = 150 * 1024 * 1024;

/** 1073741824 -> "1 GiB", 67108864 -> "64 MiB". */
function sizeText(bytes: number): string {
  const gib = bytes / 1024 ** 3;
  return Number.isInteger(gib) ? `${gib} GiB` : `${mib(bytes).replace(/\.0$/, '')} MiB`;
}

export async function runMemory(opts: MemoryOptions, ctx: RunContext): Promise<string> {
  return withProcesses(() => measure(opts, ctx));
}

async function measure(opts: MemoryOptions, ctx: RunContext): Promise<string> {
  const origin = await startOrigin();
  const chain = await startThreeHops(origin.port, { dir: opts.dir });
  const procs = chain.west;
  const before = new Map(procs.map((p) => [p.role, readMemory(p.child.pid)?.rss ?? 0]));
  const sampler = new RssSampler(procs.map((p) => p.child.pid));
  process.stderr.write(`bench: memory: ${sizeText(opts.sizeBytes)} through ${chain.label} at ~${opts.rateMiBps} MiB/s ` +
    `with a ${opts.pauseMs} ms stop every ${opts.pauseEveryMiB} MiB\n`);
  let read;
  try {
    read = await slowRead(`${chain.base}/bytes/${opts.sizeBytes}`, { ...opts, timeoutMs: 60_000 });
  } finally {
    sampler.stop();
  }
  const rows = procs.map((p) => {
    const now = readMemory(p.child.pid);
    const peak = sampler.peak(p.child.pid);
    return [
      `${p.role} (pid ${p.child.pid})`,
      mib(before.get(p.role) ?? 0),
      mib(peak),
      mib(now?.hwm ?? 0),
      mib(now?.rss ?? 0),
      peak < LIMIT ? 'yes' : 'no',
    ];
  });
  const ok = read.status === 200 && read.complete && read.bytes === opts.sizeBytes;
  process.stderr.write(`bench: memory: read ${read.bytes} bytes, status ${read.status}, complete ${read.complete}` +
    `${read.error ? `, error: ${read.error}` : ''}\n`);
  const transfer = `The client got status ${read.status}, ${read.bytes.toLocaleString('en-US')} of ` +
    `${opts.sizeBytes.toLocaleString('en-US')} bytes (${ok ? 'complete' : `INCOMPLETE${read.error ? `: ${read.error}` : ''}`}) ` +
    `in ${seconds(read.elapsedMs)} s, ${mibps(read.bytes / (read.elapsedMs / 1000))} MiB/s on average.`;

  return [
    `## Memory: ${sizeText(opts.sizeBytes)} through three nodes to a slow reader`,
    '',
    contextLines(ctx),
    '',
    `The origin streams ${sizeText(opts.sizeBytes)} (64 KiB writes, with back-pressure) through the case-4 chain ` +
    `(G → L → L2, default 256 KiB stream window); the client reads at about ${opts.rateMiBps} MiB/s and stops for ` +
    `${opts.pauseMs} ms after every ${opts.pauseEveryMiB} MiB. RSS is read from /proc/<pid>/status: "before" once the chain ` +
    'is ready, "peak" polling VmRSS every 50 ms during the transfer, VmHWM the peak since the process started.',
    '',
    markdownTable(['west process', 'RSS before MiB', 'peak RSS during MiB', 'VmHWM MiB', 'RSS after MiB', '< 150 MiB'], rows),
    '',
    transfer,
    '',
    incidentsText(westIncidents(procs)),
  ].join('\n');
}
