/**
 * CPU time per request, per process: on a machine whose cores are shared, req/s says how busy
 * the neighbours were; CPU per request says what each process costs. Starts the bench origin
 * and a west one-hop chain (as bench/topology.ts builds it, at a log level of choice), warms up, then reads utime+stime of every
 * process from /proc/<pid>/stat around a fixed wrk run and divides by the requests wrk made.
 * wrk's own CPU comes from the shell that waits for it (cutime+cstime).
 *
 *   npm run build && node dist/bench/cpu-per-request.js [--line one-hop|one-hop-pool4|one-hop-workers2|one-node|three-hops|mesh-three|direct|all]
 *     [--rounds 3] [--duration 10] [--connections 20] [--path small] [--log-level warn]
 *     [--node-args="--cpu-prof --cpu-prof-dir /tmp/p"] [--headers browser] [--base other/dist/src/cli.js]
 *
 * --base adds another build's nodes, measured in the same run with the rounds interleaved: on a
 * machine shared with other work, only such an A/B says whether a change helped.
 * Prints, per line and process, per request: µs of CPU, the median over the rounds and the least
 * (the other work on the machine only ever adds: the least is the steadiest figure of a busy
 * machine), user and system CPU, read and write syscalls, and sleeps of the main thread
 * (voluntary context switches: wake-ups), as medians.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CLOCK_TICKS } from './cpu.js';
import { freePort, waitFor200 } from './net.js';
import { installCleanup, spawnNode, stopAll, type Child } from './procs.js';
import { startMeshThree, startOrigin, startThreeHops, WEST_CLI } from './topology.js';

/** µs per clock tick of utime/stime. */
const TICK_US = 1e6 / CLOCK_TICKS;

interface Args {
  lines: string[];
  rounds: number;
  durationS: number;
  connections: number;
  route: string;
  logLevel: string;
  nodeArgs: string[];
  threads: number;
  /** Other builds' CLIs to measure in the same run, rounds interleaved (an A/B on a busy machine). */
  base: string[];
  /** Request headers wrk sends besides Host. */
  headers: string[];
}

/** What a browser sends besides Host: what the header passes see from most real clients. */
const BROWSER_HEADERS = [
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'Accept-Language: en-GB,en;q=0.5', 'Accept-Encoding: gzip, deflate, br, zstd', 'Connection: keep-alive',
  'Cookie: session=4f9c2d1e8a7b6c5d; theme=dark', 'Upgrade-Insecure-Requests: 1', 'Sec-Fetch-Dest: document',
  'Sec-Fetch-Mode: navigate', 'Priority: u=0, i',
];

function parse(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv, strict: true,
    options: {
      line: { type: 'string', default: 'one-hop' },
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '20' },
      threads: { type: 'string', default: '1' },
      path: { type: 'string', default: 'small' },
      'log-level': { type: 'string', default: 'warn' },
      'node-args': { type: 'string', default: '' },
      base: { type: 'string', multiple: true, default: [] },
      headers: { type: 'string', default: 'none' },
    },
  });
  if (values.headers !== 'none' && values.headers !== 'browser') throw new Error('--headers is none or browser');
  const lines = values.line === 'all' ? ['direct', 'one-hop', 'one-node'] : values.line.split(',');
  return {
    lines, rounds: Number(values.rounds), durationS: Number(values.duration), connections: Number(values.connections),
    threads: Number(values.threads), route: values.path, logLevel: values['log-level'],
    nodeArgs: values['node-args'].split(/\s+/).filter(Boolean),
    base: values.base, headers: values.headers === 'browser' ? BROWSER_HEADERS : [],
  };
}

/** What a process has used so far: CPU (user, system, µs), read and write syscalls, times it slept. */
interface Usage { user: number; sys: number; reads: number; writes: number; sleeps: number }

/**
 * What a process and its children have used so far: a node of `west.workers` above 1 is a
 * primary whose workers are its children (the children of the moment; a worker that died
 * mid-round would be missed, which no run here does).
 */
async function usageOf(pid: number): Promise<Usage> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean).map(Number);
  const all = await Promise.all([pid, ...children].map(usageOfOne));
  return all.reduce((a, b) => ({ user: a.user + b.user, sys: a.sys + b.sys, reads: a.reads + b.reads, writes: a.writes + b.writes, sleeps: a.sleeps + b.sleeps }));
}

async function usageOfOne(pid: number): Promise<Usage> {
  const [stat, io, status] = await Promise.all([
    readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/io`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8'),
  ]);
  // Fields after the command (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const num = (text: string, key: string): number => Number(new RegExp(`^${key}:\\s*(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    user: Number(fields[11]) * TICK_US, sys: Number(fields[12]) * TICK_US, // fields 14 and 15 of the whole line
    reads: num(io, 'syscr'), writes: num(io, 'syscw'),
    // The event loop's thread: each voluntary switch is one sleep in epoll_wait (a wake-up).
    sleeps: num(status, 'voluntary_ctxt_switches'),
  };
}

interface WrkRun {
  requests: number;
  reqPerSec: number;
  wrkCpuUs: number;
  non2xx: number;
  errors: string;
}

/** Runs wrk under a shell that reports wrk's CPU (its children's cutime+cstime) once it has waited. */
function wrk(url: string, args: Args, durationS: number): Promise<WrkRun> {
  const headers = args.headers.map((h) => ` -H '${h}'`).join('');
  const script = `wrk -t${args.threads} -c${args.connections} -d${durationS}s${headers} ${url}; echo; echo "STAT $(cat /proc/$$/stat)"`;
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', script], { maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) { reject(new Error(`wrk failed: ${err.message}`)); return; }
      const requests = /(\d+) requests in/.exec(stdout);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
      const stat = /STAT (.*)/.exec(stdout);
      if (!requests || !rps || !stat) { reject(new Error(`cannot read wrk's output:\n${stdout}`)); return; }
      const fields = (stat[1] ?? '').slice((stat[1] ?? '').lastIndexOf(')') + 2).split(' ');
      resolve({
        requests: Number(requests[1]), reqPerSec: Number(rps[1]),
        wrkCpuUs: (Number(fields[13]) + Number(fields[14])) * TICK_US, // cutime, cstime
        non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
        errors: /Socket errors:.*/.exec(stdout)?.[0] ?? '',
      });
    });
  });
}

interface Proc { name: string; child: Child }

/** Starts one west node on a config written to `dir`; resolves once its control port answers. */
async function startNode(cli: string, dir: string, role: string, config: Record<string, unknown>, args: Args): Promise<Child> {
  const cp = await freePort();
  config.west = { ...(config.west as Record<string, unknown>), cp: `127.0.0.1:${cp}` };
  const file = path.join(dir, `${role}-${cp}.json`);
  await writeFile(file, JSON.stringify(config));
  const child = spawnNode(cli, ['-c', file, '--log-level', args.logLevel, '--log-format', 'json'], { name: `west ${role}`, nodeArgs: args.nodeArgs, keepStderr: 4096 });
  await waitFor200(`http://127.0.0.1:${cp}/healthz`);
  return child;
}

/**
 * One hop as sample/case1 and bench/topology.ts build it (L's listener, `ea` to G, G's egress
 * allowing the origin), or both tunnel ends in one node (its listener's `ea` is its own server).
 * `one-hop-poolN`: one hop with N connections from L to G (`wstc[url].connections`).
 * `one-hop-workersN`: one hop with L run by N workers (`west.workers`), one connection each.
 */
async function startWest(cli: string, line: string, originPort: number, dir: string, args: Args): Promise<{ base: string; procs: Proc[] }> {
  if (line === 'three-hops' || line === 'mesh-three') return startChainOfThree(cli, line, originPort, dir, args);
  const [sp, listen] = [await freePort(), await freePort()];
  const ou = `http://127.0.0.1:${originPort}/x`;
  const proxy = { [`http://127.0.0.1:${listen}`]: { ea: `ws://127.0.0.1:${sp}`, '/px': { ou } } };
  const base = `http://127.0.0.1:${listen}/px`;
  if (line === 'one-node') {
    const one = await startNode(cli, dir, 'one', { west: { nm: 'bench.one', egress: { 'bench.one': [ou] } }, wsts: { sp: `ws://127.0.0.1:${sp}` }, proxy }, args);
    await waitFor200(`${base}/small`);
    return { base, procs: [{ name: 'one node', child: one }] };
  }
  const g = await startNode(cli, dir, 'G', { west: { nm: 'bench.G', egress: { 'bench.L': [ou] } }, wsts: { sp: `ws://127.0.0.1:${sp}` } }, args);
  const pool = /^one-hop-pool([0-9]+)$/.exec(line)?.[1];
  const wstc = pool ? { wstc: { [`ws://127.0.0.1:${sp}`]: { connections: Number(pool) } } } : {};
  const workers = /^one-hop-workers([0-9]+)$/.exec(line)?.[1];
  const l = await startNode(cli, dir, 'L', { west: { nm: 'bench.L', egress: {}, ...(workers ? { workers: Number(workers) } : {}) }, ...wstc, proxy }, args);
  await waitFor200(`${base}/small`);
  return { base, procs: [{ name: 'L (near)', child: l }, { name: 'G (far)', child: g }] };
}

/**
 * Three nodes as bench/topology.ts builds them: `three-hops` (sample case4: the middle node L
 * performs the request against its own listener) or `mesh-three` (routed by name: L relays the
 * stream frame by frame). Processes: G (near, the listener), L (middle), L2 (far).
 */
async function startChainOfThree(cli: string, line: string, originPort: number, dir: string, args: Args): Promise<{ base: string; procs: Proc[] }> {
  const own = path.join(dir, `${line}-${(await freePort()).toString()}`);
  await mkdir(own);
  const opts = { dir: own, cli, logLevel: args.logLevel, nodeArgs: args.nodeArgs };
  const target = line === 'three-hops' ? await startThreeHops(originPort, opts) : await startMeshThree(originPort, opts);
  const names = ['G (near)', 'L (middle)', 'L2 (far)'];
  return { base: target.base, procs: target.west.map((w, i) => ({ name: names[i] ?? w.role, child: w.child })) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** One thing measured: a line (direct, one-hop, one-node) of one build. */
interface Setup {
  label: string;
  url: string;
  procs: Proc[];
  usage: Map<string, Usage[]>;
  west: number[];
  wrkUs: number[];
  rates: number[];
}

async function measureRound(s: Setup, args: Args): Promise<void> {
  const before = await Promise.all(s.procs.map((p) => usageOf(p.child.pid)));
  const run = await wrk(s.url, args, args.durationS);
  const after = await Promise.all(s.procs.map((p) => usageOf(p.child.pid)));
  if (run.non2xx || run.errors) process.stderr.write(`cpu: ${s.label}: ${run.non2xx} non-2xx, ${run.errors}\n`);
  let westSum = 0;
  s.procs.forEach((p, i) => {
    const a = after[i];
    const b = before[i];
    if (!a || !b) return;
    const per = (k: keyof Usage): number => (a[k] - b[k]) / run.requests;
    const u: Usage = { user: per('user'), sys: per('sys'), reads: per('reads'), writes: per('writes'), sleeps: per('sleeps') };
    s.usage.get(p.name)?.push(u);
    if (p.name !== 'origin') westSum += u.user + u.sys;
  });
  s.west.push(westSum);
  s.wrkUs.push(run.wrkCpuUs / run.requests);
  s.rates.push(run.reqPerSec);
}

function report(s: Setup): string[] {
  const rows = [...s.usage].map(([name, us]) => {
    const m = (k: keyof Usage): number => median(us.map((u) => u[k]));
    const totals = us.map((u) => u.user + u.sys);
    return `  ${name.padEnd(10)} ${median(totals).toFixed(1).padStart(6)} µs, least ${Math.min(...totals).toFixed(1).padStart(6)}` +
      ` (user ${m('user').toFixed(1)}, sys ${m('sys').toFixed(1)})` +
      `  reads ${m('reads').toFixed(2)}  writes ${m('writes').toFixed(2)}  sleeps ${m('sleeps').toFixed(2)}`;
  });
  const direct = s.procs.length === 1;
  return [
    `${s.label}: ${Math.round(median(s.rates))} req/s, wrk ${median(s.wrkUs).toFixed(1)} µs` +
      (direct ? '' : `, west total ${median(s.west).toFixed(1)} µs, least ${Math.min(...s.west).toFixed(1)} (rounds: ${s.west.map((x) => x.toFixed(1)).join(' ')})`),
    ...rows,
  ];
}

/** Starts every line of every build (one origin for all), then measures them round by round, in turn. */
async function measure(args: Args, dir: string): Promise<string[]> {
  const origin = await startOrigin();
  const originProc: Proc = { name: 'origin', child: origin.child };
  const builds = [{ name: 'this', cli: WEST_CLI }, ...args.base.map((cli, i) => ({ name: `base${args.base.length > 1 ? i + 1 : ''}`, cli }))];
  const setups: Setup[] = [];
  const setup = (label: string, url: string, procs: Proc[]): Setup => ({
    label, url, procs, usage: new Map(procs.map((p) => [p.name, []])), west: [], wrkUs: [], rates: [],
  });
  for (const line of args.lines) {
    if (line === 'direct') {
      setups.push(setup('direct', `http://127.0.0.1:${origin.port}/d/${args.route}`, [originProc]));
      continue;
    }
    for (const build of builds) {
      const west = await startWest(build.cli, line, origin.port, dir, args);
      setups.push(setup(builds.length > 1 ? `${line} (${build.name})` : line, `${west.base}/${args.route}`, [originProc, ...west.procs]));
    }
  }
  for (const s of setups) await wrk(s.url, args, 2); // warm-up: JIT, pools, connections
  for (let r = 0; r < args.rounds; r++) {
    // Each round in another order: a burst of the neighbours' work falls on every setup alike.
    for (let i = 0; i < setups.length; i++) {
      const s = setups[(i + r) % setups.length];
      if (s) await measureRound(s, args);
    }
  }
  await stopAll();
  return setups.flatMap(report);
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  installCleanup();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'west-cpu-'));
  try {
    const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
    process.stdout.write(`# ${new Date().toISOString()} load ${load()}; wrk -t${args.threads} -c${args.connections} -d${args.durationS}s .../${args.route}` +
      `${args.headers.length ? ` with ${args.headers.length} browser headers` : ''}, log level ${args.logLevel}, ${args.rounds} rounds, medians; µs CPU per request\n`);
    process.stdout.write(`${(await measure(args, dir)).join('\n')}\n`);
    process.stdout.write(`# load after: ${load()}\n`);
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
