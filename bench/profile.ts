/**
 * West one hop under load with `node --cpu-prof` on each west process, once with small bodies
 * and once with 1 MiB bodies; the profiles are written outside the repository and summarised
 * (top self-time functions per process).
 */
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { loadGenerator, runLoad } from './load.js';
import { stopAll } from './procs.js';
import { readProfile, summarise, summaryMarkdown } from './profile-top.js';
import { contextLines, incidentsText, type RunContext } from './report.js';
import { count, mibps, ms } from './table.js';
import { startOneHop, startOrigin, stopWest, westIncidents, type WestIncident } from './topology.js';

export interface ProfileOptions {
  dir: string;
  /** Where the .cpuprofile files go (never inside the repository). */
  profileDir: string;
  durationS: number;
  connections: number;
  threads: number;
  top: number;
}

async function profileOnce(opts: ProfileOptions, route: string, label: string): Promise<{ text: string; incidents: WestIncident[] }> {
  const outDir = path.join(opts.profileDir, route);
  await mkdir(outDir, { recursive: true });
  const origin = await startOrigin();
  const target = await startOneHop(origin.port, { dir: opts.dir, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', outDir] });
  try {
    process.stderr.write(`bench: profile: ${label} through west one hop, ${opts.connections} connections, ${opts.durationS} s\n`);
    const loadStarted = Date.now();
    const r = await runLoad({ url: `${target.base}/${route}`, connections: opts.connections, threads: opts.threads, durationS: opts.durationS, warmupS: 1, timeoutS: 10 });
    // SIGTERM: the node drains and exits by itself, which is when V8 writes the profile.
    await stopWest(target);
    const files = await readdir(outDir);
    const parts = [
      `### ${label}`,
      '',
      `Under profiling: ${count(r.reqPerSec)} req/s, ${mibps(r.bytesPerSec)} MiB/s, p50 ${ms(r.p50Ms)} ms, ` +
      `p99 ${ms(r.p99Ms)} ms, ${r.errors + r.non2xx} failures. Profiles in \`${outDir}\`.`,
    ];
    for (const w of target.west) {
      const file = files.find((f) => f.endsWith('.cpuprofile') && f.split('.').includes(String(w.child.pid)));
      if (!file) {
        parts.push('', `No profile from ${w.role} (pid ${w.child.pid}): did it exit cleanly?`);
        continue;
      }
      // Only the load: start-up (module loading, schema compilation) is left out.
      const fromMs = loadStarted - w.child.spawnedAt;
      const summary = summarise(await readProfile(path.join(outDir, file)), fromMs);
      const role = w.role === 'hop1-L' ? 'L (listener: client side of the tunnel)' : 'G (tunnel server: performs to the origin)';
      parts.push('', `#### ${role} — \`${file}\``, '', summaryMarkdown(summary, opts.top));
    }
    return { text: parts.join('\n'), incidents: westIncidents(target.west) };
  } finally {
    await stopAll();
  }
}

export async function runProfile(opts: ProfileOptions, ctx: RunContext): Promise<string> {
  const small = await profileOnce(opts, 'small', '100 B bodies');
  const big = await profileOnce(opts, '1m', '1 MiB bodies');
  return [
    '## CPU profile: west one hop under load',
    '',
    contextLines(ctx),
    '',
    `Each west process of the one-hop chain runs with \`--cpu-prof\`; ${loadGenerator().name} drives ${opts.connections} connections for ` +
    `${opts.durationS} s after a 1 s warm-up run; samples from before the load started are left out. Self time is the time a function itself was on the CPU (not its callees); ` +
    '"busy" excludes idle. Read a profile yourself with `node dist/bench/profile-top.js <file> --top 40`, or load it in ' +
    'Chrome DevTools (Performance tab) for a flame graph.',
    '',
    small.text,
    '',
    big.text,
    '',
    incidentsText([...small.incidents, ...big.incidents]),
  ].join('\n');
}
