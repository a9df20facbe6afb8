/**
 * What the benchmark measures, each started as real processes on free ports: the origin,
 * node-http-proxy in front of it, and west chains run by the real CLI on configs written to a
 * temporary directory (one hop as sample/case1, three nodes as sample/case4). Each node's
 * `west.egress` allows exactly what it performs, as a deployment should (and the check is
 * part of the measured path).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { MeteredProc } from './cpu.js';
import { isInspectorNoise } from './inspector.js';
import { freePort, waitFor200 } from './net.js';
import { benchScript, ROOT, spawnNode, type Child } from './procs.js';

export const WEST_CLI = path.join(ROOT, 'dist', 'src', 'cli.js');

/** A running west node: its role in the chain, its process, its control port. */
export interface WestProc {
  role: string;
  child: Child;
  controlPort: number;
}

export const LABEL = {
  direct: 'direct',
  httpProxy: 'node-http-proxy',
  nginx: 'nginx',
  oneHop: 'west, one hop',
  threeHops: 'west, three nodes (G → L → L2)',
  mesh: 'west, three nodes routed by name (G ⇒ L ⇒ L2)',
} as const;

/** Something to send load to: `${base}/small`, `${base}/1m`, ... reach the origin's routes. */
export interface Target {
  label: string;
  base: string;
  /** Proxy hops a request crosses: node-http-proxy is one, each west tunnel one. */
  hops: number;
  /** The west processes of this target (none for direct, nginx and node-http-proxy). */
  west: WestProc[];
  /** The proxy processes whose CPU is counted (west nodes by role: "L", "G"...). */
  proxies: MeteredProc[];
}

export interface StartOptions {
  /** Where configs are written. */
  dir: string;
  /** Node flags for every west process (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Extra `west` keys (tuning) for every node. */
  tuning?: Record<string, unknown>;
  /** The west CLI to run (another build's, for an A/B); default: this build's. */
  cli?: string;
  /** The nodes' log level (default warn). */
  logLevel?: string;
  /**
   * One hop only: given G's tunnel port, the port L should dial instead (a delay relay in
   * front of G's tunnel server).
   */
  dialVia?: (tunnelPort: number) => Promise<number>;
}

/** The name a west process's CPU is shown under: its node's role ("hop1-G" -> "G"). */
function metered(procs: WestProc[]): MeteredProc[] {
  return procs.map((w) => ({ name: w.role.replace(/^[^-]*-/, ''), pid: w.child.pid }));
}

/** Starts the origin process; resolves with it and its port. */
export async function startOrigin(): Promise<{ child: Child; port: number }> {
  const child = spawnNode(benchScript('origin'), [], { name: 'origin' });
  const { port } = await child.readyLine<{ port: number }>();
  return { child, port };
}

/** node-http-proxy (with a keep-alive agent) in front of the origin. */
export async function startHttpProxy(originPort: number): Promise<Target> {
  const child = spawnNode(benchScript('http-proxy'), [`http://127.0.0.1:${originPort}`], { name: 'node-http-proxy' });
  const { port } = await child.readyLine<{ port: number }>();
  const base = `http://127.0.0.1:${port}/hp`;
  await waitFor200(`${base}/small`);
  return { label: LABEL.httpProxy, base, hops: 1, west: [], proxies: [{ name: 'node-http-proxy', pid: child.pid }] };
}

export function directTarget(originPort: number): Target {
  return { label: LABEL.direct, base: `http://127.0.0.1:${originPort}/d`, hops: 0, west: [], proxies: [] };
}

export async function startWest(opts: StartOptions, role: string, config: Record<string, unknown>): Promise<WestProc> {
  const controlPort = await freePort();
  const west = config.west as Record<string, unknown>;
  config.west = { ...west, cp: `127.0.0.1:${controlPort}`, ...opts.tuning };
  const file = path.join(opts.dir, `${role}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  const child = spawnNode(opts.cli ?? WEST_CLI, ['-c', file, '--log-level', opts.logLevel ?? 'warn', '--log-format', 'json'], {
    name: `west ${role}`,
    nodeArgs: opts.nodeArgs ?? [],
  });
  // The control port listens last, so its answer means the node's servers are all up; the
  // next node then dials a server that is there (no redial noise in the logs).
  await Promise.race([
    waitFor200(`http://127.0.0.1:${controlPort}/healthz`),
    child.exited.then((code) => { throw new Error(`west ${role} exited with ${code ?? child.signal} at start-up:\n${child.stderr.slice(-3000)}`); }),
  ]);
  return { role, child, controlPort };
}

/**
 * One hop, as sample/case1: the client talks to L's listener, L carries the request through
 * its tunnel to G (`ea`), G performs it against the origin.
 */
export async function startOneHop(originPort: number, opts: StartOptions): Promise<Target> {
  const [tunnelG, listenL] = [await freePort(), await freePort()];
  const g = await startWest(opts, 'hop1-G', {
    west: { nm: 'bench.G', egress: { 'bench.L': [`http://127.0.0.1:${originPort}/x`] } },
    wsts: { sp: `ws://127.0.0.1:${tunnelG}` },
  });
  const dialPort = opts.dialVia ? await opts.dialVia(tunnelG) : tunnelG;
  const l = await startWest(opts, 'hop1-L', {
    west: { nm: 'bench.L', egress: {} },
    proxy: {
      [`http://127.0.0.1:${listenL}`]: {
        ea: `ws://127.0.0.1:${dialPort}`,
        '/px': { ou: `http://127.0.0.1:${originPort}/x` },
      },
    },
  });
  const target: Target = { label: LABEL.oneHop, base: `http://127.0.0.1:${listenL}/px`, hops: 1, west: [l, g], proxies: metered([l, g]) };
  await waitFor200(`${target.base}/small`);
  return target;
}

/**
 * Three nodes, as sample/case4: G's listener sends requests down to L by name; L performs them
 * against its own listener, which sends them down to L2; L2 performs them against the origin.
 */
export async function startThreeHops(originPort: number, opts: StartOptions): Promise<Target> {
  const [tunnelG, tunnelL, listenG, listenL] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const g = await startWest(opts, 'hop3-G', {
    west: { nm: 'bench.G', egress: {} },
    wsts: { sp: `ws://127.0.0.1:${tunnelG}` },
    proxy: {
      [`http://127.0.0.1:${listenG}`]: {
        en: 'bench.L',
        '/baz': { ou: `http://127.0.0.1:${listenL}/ba` },
      },
    },
  });
  const l = await startWest(opts, 'hop3-L', {
    west: { nm: 'bench.L', egress: { 'bench.G': [`http://127.0.0.1:${listenL}/ba`] } },
    wsts: { sp: `ws://127.0.0.1:${tunnelL}` },
    wstc: { [`ws://127.0.0.1:${tunnelG}`]: {} },
    proxy: {
      [`http://127.0.0.1:${listenL}`]: {
        en: 'bench.L2',
        '/ba': { ou: `http://127.0.0.1:${originPort}/a` },
      },
    },
  });
  const l2 = await startWest(opts, 'hop3-L2', {
    west: { nm: 'bench.L2', egress: { 'bench.L': [`http://127.0.0.1:${originPort}/a`] } },
    wstc: { [`ws://127.0.0.1:${tunnelL}`]: {} },
  });
  const target: Target = { label: LABEL.threeHops, base: `http://127.0.0.1:${listenG}/baz`, hops: 2, west: [g, l, l2], proxies: metered([g, l, l2]) };
  await waitFor200(`${target.base}/small`);
  return target;
}

/**
 * Three nodes of the mesh: the same tunnels as startThreeHops, but G's listener names L2 and L
 * relays the stream frame by frame (no HTTP at L); L2 performs it against the origin. G learns
 * the route from L (a client of its server: west.learn), L lets G's streams through to L2
 * (west.transit), L2 believes L about where they started (west.relays).
 */
export async function startMeshThree(originPort: number, opts: StartOptions): Promise<Target> {
  const [tunnelG, tunnelL, listenG] = [await freePort(), await freePort(), await freePort()];
  const g = await startWest(opts, 'mesh-G', {
    west: { nm: 'bench.G', egress: {}, learn: { 'bench.L': ['bench.L2'] } },
    wsts: { sp: `ws://127.0.0.1:${tunnelG}` },
    proxy: {
      [`http://127.0.0.1:${listenG}`]: {
        en: 'bench.L2',
        '/baz': { ou: `http://127.0.0.1:${originPort}/a` },
      },
    },
  });
  const l = await startWest(opts, 'mesh-L', {
    west: { nm: 'bench.L', egress: {}, transit: { 'bench.G': ['bench.L2'] } },
    wsts: { sp: `ws://127.0.0.1:${tunnelL}` },
    wstc: { [`ws://127.0.0.1:${tunnelG}`]: {} },
  });
  const l2 = await startWest(opts, 'mesh-L2', {
    west: { nm: 'bench.L2', egress: { 'bench.G': [`http://127.0.0.1:${originPort}/a`] }, relays: ['bench.L'] },
    wstc: { [`ws://127.0.0.1:${tunnelL}`]: {} },
  });
  const target: Target = { label: LABEL.mesh, base: `http://127.0.0.1:${listenG}/baz`, hops: 2, west: [g, l, l2], proxies: metered([g, l, l2]) };
  // G answers 503 until the route to L2 has reached it: polled, like every chain's readiness.
  await waitFor200(`${target.base}/small`);
  return target;
}

/** A lone tunnel server (for the many-clients figure): G with `wsts.sp` and nothing else. */
export async function startTunnelServer(opts: StartOptions): Promise<{ west: WestProc; url: string }> {
  const port = await freePort();
  const west = await startWest(opts, 'server-G', {
    west: { nm: 'bench.G', egress: {} },
    wsts: { sp: `ws://127.0.0.1:${port}` },
  });
  return { west, url: `ws://127.0.0.1:${port}` };
}

/** Stops a target's west processes gracefully (SIGTERM lets --cpu-prof write its profile). */
export async function stopWest(target: { west: WestProc[] }, graceMs = 15_000): Promise<void> {
  await Promise.all(target.west.map((w) => w.child.stop(graceMs)));
}

export interface WestIncident {
  role: string;
  line: string;
}

/** Log lines at warn or error level from west processes, and anything that is not a log line. */
export function westIncidents(procs: WestProc[]): WestIncident[] {
  const out: WestIncident[] = [];
  for (const p of procs) {
    for (const line of p.child.stderr.split('\n')) {
      if (line.trim() && !isInspectorNoise(line)) out.push({ role: p.role, line: line.length > 400 ? `${line.slice(0, 400)}…` : line });
    }
    if (p.child.exitCode !== null && p.child.exitCode !== 0) {
      out.push({ role: p.role, line: `process exited with code ${p.child.exitCode}` });
    } else if (p.child.signal && p.child.signal !== 'SIGTERM') {
      out.push({ role: p.role, line: `process ended by ${p.child.signal}` });
    }
  }
  return out;
}
