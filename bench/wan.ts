/**
 * `--wan`: west over a long link. The delay relay sits on the tunnel's WebSocket only (L's
 * tunnel client dials G's tunnel server through it; client, L, G and origin are local), and
 * each figure is set beside a plain TCP connection through the same relay (client → relay →
 * origin, HTTP). For each RTT: one 64 MiB download, eight concurrent 16 MiB downloads and the
 * time of a 100 B request on a kept-alive connection; once with west's default stream window
 * and once with a raised one, which shows whether the window is the limit.
 */
import { DEFAULT_TUNING } from '../src/config/types.js';
import { benchScript, spawnNode, withProcesses, type Child } from './procs.js';
import { contextLines, incidentsText, type RunContext } from './report.js';
import { markdownTable, mib, mibps, ms, ratio } from './table.js';
import { download, downloadAll, EACH, keptAliveTimes, MANY, median, ONE, rate, type Download, type TransferFigures as Figures } from './transfer.js';
import { startOneHop, startOrigin, stopWest, westIncidents, type WestIncident } from './topology.js';

export interface WanOptions {
  dir: string;
  rttsMs: number[];
  /** Each download stops here and reports the rate so far. */
  capS: number;
  /** Kept-alive 100 B requests timed per line (the median is reported). */
  requests: number;
  /** streamWindow of the raised-window line, bytes. */
  window: number;
  /** Extra `west` keys for every west node. */
  tuning?: Record<string, unknown>;
}


interface Row {
  rttMs: number;
  label: string;
  /** The stream window west ran with (none for plain TCP). */
  window?: number;
  figures: WanFigures;
}

/** Starts the delay relay process in front of `targetPort`. */
async function startRelay(targetPort: number, rttMs: number): Promise<{ child: Child; port: number }> {
  const child = spawnNode(benchScript('relay-worker'), [String(targetPort), String(rttMs)], { name: `relay ${rttMs} ms` });
  return { child, port: (await child.readyLine<{ port: number }>()).port };
}

/**
 * A transfer once, or three times when it took under a quarter of the cap (the one with the
 * median rate is kept): short transfers are the ones a burst of other work swings most, and
 * repeating long ones would not fit the run's time.
 */
async function medianRun<T extends { bytes: number; elapsedMs: number }>(capMs: number, run: () => Promise<T>): Promise<{ kept: T; first: T }> {
  const first = await run();
  if (first.elapsedMs >= capMs / 4) return { kept: first, first };
  const runs = [first, await run(), await run()].sort((a, b) => rate(a.bytes, a.elapsedMs) - rate(b.bytes, b.elapsedMs));
  return { kept: runs[1] ?? first, first };
}

interface WanFigures extends Figures {
  /** The first 64 MiB download on the fresh chain: before its tunnel learned what windows its streams need. */
  firstSingle: Download;
}

async function measureBase(base: string, opts: WanOptions): Promise<WanFigures> {
  const capMs = opts.capS * 1000;
  const single = await medianRun(capMs, () => download(`${base}/bytes/${ONE}`, capMs));
  const many = await medianRun(capMs, () => downloadAll(Array.from({ length: MANY }, () => `${base}/bytes/${EACH}`), capMs));
  const requestMs = median(await keptAliveTimes(`${base}/small`, opts.requests));
  return { single: single.kept, firstSingle: single.first, many: many.kept, requestMs };
}

/** The rate of some downloads together, and whether any stopped at the cap or failed. */
function downloadText(parts: Download[], bytes: number, elapsedMs: number, full: number): string {
  const failed = parts.find((p) => !p.complete && !p.capped);
  const text = mibps(rate(bytes, elapsedMs));
  if (failed) return `${text} (failed: ${failed.error ?? `status ${failed.status}`})`;
  return parts.some((p) => p.capped) ? `${text} (stopped at ${(elapsedMs / 1000).toFixed(0)} s: ${mib(bytes)} of ${mib(full)} MiB)` : text;
}

function table(rows: Row[]): string {
  const plain = (rtt: number): WanFigures | undefined => rows.find((r) => r.rttMs === rtt && r.window === undefined)?.figures;
  const body = rows.map(({ rttMs, label, window, figures: f }) => {
    const tcp = plain(rttMs);
    const singleRate = rate(f.single.bytes, f.single.elapsedMs);
    const manyRate = rate(f.many.bytes, f.many.elapsedMs);
    return [
      String(rttMs),
      label,
      downloadText([f.single], f.single.bytes, f.single.elapsedMs, ONE),
      tcp ? ratio(singleRate / rate(tcp.single.bytes, tcp.single.elapsedMs)) : '–',
      downloadText([f.firstSingle], f.firstSingle.bytes, f.firstSingle.elapsedMs, ONE),
      tcp ? ratio(rate(f.firstSingle.bytes, f.firstSingle.elapsedMs) / rate(tcp.firstSingle.bytes, tcp.firstSingle.elapsedMs)) : '–',
      window !== undefined && rttMs > 0 ? mibps(window / (rttMs / 1000)) : '–',
      downloadText(f.many.each, f.many.bytes, f.many.elapsedMs, MANY * EACH),
      tcp ? ratio(manyRate / rate(tcp.many.bytes, tcp.many.elapsedMs)) : '–',
      ms(f.requestMs),
    ];
  });
  return markdownTable(
    ['RTT ms', 'line', '64 MiB download MiB/s', '× TCP', 'the first of them MiB/s', '× TCP', 'first window ÷ RTT MiB/s', `${MANY} × 16 MiB at once MiB/s`, '× TCP', '100 B request ms'],
    body,
    ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
}

/** Runs every RTT and returns the section of doc/benchmarks.md. */
export async function runWan(opts: WanOptions, ctx: RunContext): Promise<string> {
  return withProcesses(() => measure(opts, ctx));
}

async function measure(opts: WanOptions, ctx: RunContext): Promise<string> {
  const origin = await startOrigin();
  const defaultWindow = Number(opts.tuning?.streamWindow ?? DEFAULT_TUNING.streamWindow);
  const rows: Row[] = [];
  const incidents: WestIncident[] = [];
  const lines = [
    { label: 'west, one hop', window: defaultWindow, tuning: opts.tuning ?? {} },
    { label: `west, one hop, streamWindow ${mib(opts.window).replace(/\.0$/, '')} MiB`, window: opts.window, tuning: { ...opts.tuning, streamWindow: opts.window } },
  ];
  for (const rttMs of opts.rttsMs) {
    const log = (label: string, f: Figures): void => {
      process.stderr.write(`bench: wan: RTT ${rttMs} ms, ${label}: 64 MiB ${mibps(rate(f.single.bytes, f.single.elapsedMs))} MiB/s` +
        `${f.single.capped ? ' (capped)' : ''}, ${MANY} × 16 MiB ${mibps(rate(f.many.bytes, f.many.elapsedMs))} MiB/s, ` +
        `100 B request ${ms(f.requestMs)} ms\n`);
    };
    const relays: Child[] = [];
    const relay = async (port: number): Promise<number> => {
      const r = await startRelay(port, rttMs);
      relays.push(r.child);
      return r.port;
    };
    const tcp = await measureBase(`http://127.0.0.1:${await relay(origin.port)}/d`, opts);
    log('plain TCP', tcp);
    rows.push({ rttMs, label: 'plain TCP through the relay', figures: tcp });
    for (const line of lines) {
      const target = await startOneHop(origin.port, { dir: opts.dir, tuning: line.tuning, dialVia: relay });
      const figures = await measureBase(target.base, opts);
      log(line.label, figures);
      rows.push({ rttMs, label: line.label, window: line.window, figures });
      await stopWest(target);
      incidents.push(...westIncidents(target.west));
    }
    await Promise.all(relays.map((c) => c.stop()));
  }
  return [
    '## Long link: the tunnel through a delay relay',
    '',
    contextLines(ctx),
    '',
    'A user-space delay relay (test/helpers/delay-relay.ts, a process of its own) holds each chunk for half the RTT in ' +
    'each direction, in order, with back-pressure. For west it sits on the tunnel only: L\'s tunnel client dials G\'s ' +
    'tunnel server through it, while the client, L, G and the origin talk over plain loopback. "plain TCP" is the ' +
    'client fetching from the origin through the same relay. Downloads are each on a connection of their own and stop ' +
    `at ${opts.capS} s (the rate so far is given); a download that took under a quarter of that is made three times and ` +
    'the run with the median rate is shown; "the first of them" is the first download on the fresh chain, made before ' +
    'its tunnel learned what window its streams need (a request opens its stream at the largest window the ' +
    'tunnel\'s streams have had, doc/protocol.md). "first window ÷ RTT" is the most one stream could move if its window ' +
    'stayed at `streamWindow` and each window of data waited a round trip for its update; receive windows now grow ' +
    `(west.maxStreamWindow, doc/protocol.md), so a stream can pass it after a few round trips. "100 B request" is the median of ${opts.requests} requests in a row on one ` +
    'kept-alive client connection (the first request, which opens it, is not counted).' +
    (opts.tuning ? ` Every west node ran with \`${JSON.stringify(opts.tuning)}\` added to its \`west\` object.` : ''),
    '',
    table(rows),
    '',
    incidentsText(incidents),
  ].join('\n');
}
