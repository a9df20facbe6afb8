/**
 * `npm run bench`: the benchmark's command line. Which figures to make, for how long, where to
 * write them; the work is in throughput.ts, wan.ts, memory.ts, streams.ts, clients.ts and
 * profile.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runClients } from './clients.js';
import { runMemory } from './memory.js';
import { runMqtt } from './mqtt.js';
import { preferAutocannon } from './load.js';
import { installCleanup, interrupted, ROOT, stopAll } from './procs.js';
import { runProfile } from './profile.js';
import { runContext, writeSections } from './report.js';
import { runStreams } from './streams.js';
import { runThroughput } from './throughput.js';
import { runWan } from './wan.js';

const USAGE = `npm run bench -- [options]

Figures (none given: --throughput):
  --throughput        direct vs nginx vs node-http-proxy vs west one hop vs west three nodes,
                      driven by wrk, with CPU per request of every process (default)
  --wan               west one hop with a delay relay on the tunnel (RTT 0, 20, 100 ms) beside
                      plain TCP through the same relay: downloads and request time
  --memory            peak RSS of each west process: 1 GiB through three nodes to a slow reader
  --streams           1,000 concurrent streams over one tunnel
  --clients           1,000 client nodes connected to one tunnel server
  --profile           west one hop under load with --cpu-prof; top self-time functions
  --mqtt              west one hop over MQTT (mosquitto) beside one hop over a WebSocket:
                      downloads and request time
  --all               all of the above

Options:
  --duration <s>      seconds per measured line (default 10); --wan stops each download
                      at twice this
  --rounds <n>        split each line's time over n passes over all lines (default 2), so
                      that bursts of other work on the machine fall on every line alike
  --quick             2 s per line, a smoke check; does not write the doc unless --out is given
  --connections <n>   connections of the load runs (default 50)
  --threads <n>       wrk threads (default 2)
  --autocannon        drive the load with autocannon even when wrk is installed
  --rtts <list>       RTTs of --wan in ms (default 0,20,100)
  --window <bytes>    streamWindow of --wan's raised-window line (default 16777216)
  --west-json <json>  extra keys for every west node's "west" object, e.g.
                      '{"streamWindow":1048576}', to compare builds or settings
  --size-mib <n>      body of the memory run (default 1024)
  --rate <MiB/s>      the slow reader's pace (default 64)
  --count <n>         streams for --streams, clients for --clients (default 1000)
  --profile-dir <d>   where .cpuprofile files go (default a new directory under /tmp)
  --out <file>        where to write the figures (default doc/benchmarks.md)
  --no-write          print only
  -h, --help`;

const SECTIONS = ['throughput', 'wan', 'memory', 'streams', 'clients', 'profile', 'mqtt'] as const;

interface Args {
  sections: Set<(typeof SECTIONS)[number]>;
  durationS: number;
  /** The throughput section's one-connection download. */
  streamBytes: number;
  warmupS: number;
  rounds: number;
  connections: number;
  threads: number;
  rttsMs: number[];
  window: number;
  tuning: Record<string, unknown> | undefined;
  autocannon: boolean;
  sizeBytes: number;
  rateMiBps: number;
  count: number;
  profileDir: string | undefined;
  out: string | undefined;
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} needs a positive number, not ${JSON.stringify(value)}`);
  return n;
}

function rttList(value: string | undefined): number[] {
  if (value === undefined) return [0, 20, 100];
  const list = value.split(',').map((v) => Number(v.trim()));
  if (list.length === 0 || list.some((n) => !Number.isFinite(n) || n < 0)) throw new Error(`--rtts needs a list of milliseconds like 0,20,100, not ${JSON.stringify(value)}`);
  return list;
}

function westJson(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    throw new Error(`--west-json: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('--west-json needs a JSON object of "west" keys');
  return parsed as Record<string, unknown>;
}

function parse(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      throughput: { type: 'boolean' },
      wan: { type: 'boolean' },
      memory: { type: 'boolean' },
      streams: { type: 'boolean' },
      clients: { type: 'boolean' },
      profile: { type: 'boolean' },
      mqtt: { type: 'boolean' },
      all: { type: 'boolean' },
      duration: { type: 'string' },
      rounds: { type: 'string' },
      quick: { type: 'boolean' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      autocannon: { type: 'boolean' },
      rtts: { type: 'string' },
      window: { type: 'string' },
      'west-json': { type: 'string' },
      'size-mib': { type: 'string' },
      rate: { type: 'string' },
      count: { type: 'string' },
      'profile-dir': { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const sections: Args['sections'] = new Set();
  for (const s of SECTIONS) if (values[s] || values.all) sections.add(s);
  if (sections.size === 0) sections.add('throughput');
  const durationS = values.quick ? 2 : positive('duration', values.duration, 10);
  const writeDefault = !values.quick && !values['no-write'];
  return {
    sections,
    durationS,
    warmupS: values.quick ? 1 : Math.min(2, durationS / 4),
    rounds: Math.round(positive('rounds', values.rounds, values.quick ? 1 : 2)),
    streamBytes: (values.quick ? 256 : 1024) * 1024 * 1024,
    connections: positive('connections', values.connections, 50),
    threads: Math.round(positive('threads', values.threads, 2)),
    rttsMs: rttList(values.rtts),
    window: Math.round(positive('window', values.window, 16 * 1024 * 1024)),
    tuning: westJson(values['west-json']),
    autocannon: values.autocannon === true,
    sizeBytes: Math.round(positive('size-mib', values['size-mib'], 1024) * 1024 * 1024),
    rateMiBps: positive('rate', values.rate, 64),
    count: Math.round(positive('count', values.count, 1000)),
    profileDir: values['profile-dir'],
    out: values['no-write'] ? undefined : values.out ?? (writeDefault ? path.join(ROOT, 'doc', 'benchmarks.md') : undefined),
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let args: Args;
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (args.autocannon) preferAutocannon();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'west-bench-'));
  installCleanup(() => rm(dir, { recursive: true, force: true }));
  const ctx = runContext(argv);
  const sections = new Map<string, string>();
  const started = Date.now();
  try {
    if (args.sections.has('throughput')) {
      sections.set('throughput', await runThroughput({
        dir, durationS: args.durationS, warmupS: args.warmupS, rounds: args.rounds, connections: args.connections,
        threads: args.threads, streamBytes: args.streamBytes,
        ...(args.tuning ? { tuning: args.tuning } : {}),
      }, ctx));
    }
    if (args.sections.has('wan')) {
      sections.set('wan', await runWan({
        dir, rttsMs: args.rttsMs, capS: 2 * args.durationS, requests: 20, window: args.window,
        ...(args.tuning ? { tuning: args.tuning } : {}),
      }, ctx));
    }
    if (args.sections.has('memory')) {
      sections.set('memory', await runMemory({ dir, sizeBytes: args.sizeBytes, rateMiBps: args.rateMiBps, pauseEveryMiB: 128, pauseMs: 1000 }, ctx));
    }
    if (args.sections.has('streams')) {
      sections.set('streams', await runStreams({ dir, streams: args.count }, ctx));
    }
    if (args.sections.has('clients')) {
      sections.set('clients', await runClients({ dir, clients: args.count, settleMs: 3000 }, ctx));
    }
    if (args.sections.has('mqtt')) {
      sections.set('mqtt', await runMqtt({ dir, capS: 2 * args.durationS, requests: 20, ...(args.tuning ? { tuning: args.tuning } : {}) }, ctx));
    }
    if (args.sections.has('profile')) {
      const profileDir = args.profileDir ?? await mkdtemp(path.join(os.tmpdir(), 'west-bench-profiles-'));
      if (path.resolve(profileDir).startsWith(ROOT + path.sep)) throw new Error(`--profile-dir must be outside the repository (${ROOT})`);
      sections.set('profile', await runProfile({ dir, profileDir, durationS: args.durationS, connections: args.connections, threads: args.threads, top: 15 }, ctx));
    }
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
  const text = [...sections.values()].join('\n\n');
  process.stdout.write(`\n${text}\n\n`);
  if (args.out) {
    await writeSections(args.out, sections);
    process.stderr.write(`bench: wrote ${[...sections.keys()].join(', ')} to ${path.relative(process.cwd(), args.out) || args.out}\n`);
  } else {
    process.stderr.write('bench: not written (--quick or --no-write; --out <file> writes)\n');
  }
  process.stderr.write(`bench: done in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
}

main().catch(async (err: unknown) => {
  if (interrupted()) return; // the signal handler is stopping everything and will exit
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  await stopAll(2000);
  process.exit(1);
});
