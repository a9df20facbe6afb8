/**
 * The three-hop chain of sample/case4 (G <- L <- L2, L both tunnel server and client) with
 * every port rewritten to a free one, the origin behind L2 pointed at a test origin, and extra
 * `west.*` keys (short heartbeats and redial delays) added to each node, so fault-injection
 * tests can kill, pause and restart nodes and see the chain heal in seconds.
 *
 *   client -> G:/baz ==G<-L==> L performs L:/ba ==L<-L2==> L2 performs origin /a
 *
 * Also here: a two-node Pair (a tunnel server and one client, a listener each way), a Link
 * (a TCP relay a test cuts and restores like a network link), and watchExchange, which follows
 * one request to its end and says whether the response arrived complete.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { at, entry } from './at.js';
import { fetchText, freePort, waitFor, type FetchResult } from './net.js';
import { startRequest, type StreamOptions } from './stream.js';
import { portedSamples, retryIfPortTaken, WestProcess } from './west.js';

export type ChainNode = 'G' | 'L' | 'L2';
export const CHAIN_NODES: readonly ChainNode[] = ['G', 'L', 'L2'];

/** `west.*` keys, e.g. `{ heartbeat: 0.5, reconnectMin: 0.1 }`. */
export type WestKeys = Record<string, number>;

/**
 * Short timers: a dead peer is dropped within two seconds, a lost tunnel redialled within one.
 * (A heartbeat much below a second drops live peers on a machine busy enough to starve a
 * process that long; tests that measure dead-peer detection use CHAIN_TIMERS.)
 */
export const SHORT_TIMERS: WestKeys = { heartbeat: 1, reconnectMin: 0.1, reconnectMax: 1, connectTimeout: 2, drainTimeout: 1 };
/** The chain's default: SHORT_TIMERS with a 0.5 s heartbeat, so a paused node is dropped within a second. */
export const CHAIN_TIMERS: WestKeys = { ...SHORT_TIMERS, heartbeat: 0.5 };

export interface ChainOptions {
  /** Directory the configs are written to. */
  dir: string;
  /** Port of the origin L2 performs requests against (its `/a` prefix is kept). */
  originPort: number;
  /** Keys added to every node's `west` section (default CHAIN_TIMERS). */
  west?: WestKeys;
  /** Keys added to one node's `west` section, after `west`. */
  perNode?: Partial<Record<ChainNode, WestKeys>>;
}

export interface RawNodeConfig {
  west: Record<string, unknown>;
  wsts?: Record<string, unknown>;
  wstc?: Record<string, unknown>;
  proxy?: Record<string, Record<string, unknown>>;
}

export class Chain {
  /** Config file of each node. */
  readonly files: Record<ChainNode, string>;
  /** `west.nm` of each node, as written in the sample. */
  readonly names: Record<ChainNode, string>;
  /** Control port base URL of each node. */
  readonly control: Record<ChainNode, string>;
  /** G's listener with its mapping: `${url}/x` is performed by L2 as origin `/a/x`. */
  readonly url: string;
  /** L's listener with its mapping (the second hop alone). */
  readonly lUrl: string;
  /** The running process of each node, while it runs. */
  readonly procs: Partial<Record<ChainNode, WestProcess>> = {};

  private constructor(files: Record<ChainNode, string>, names: Record<ChainNode, string>, control: Record<ChainNode, string>, url: string, lUrl: string) {
    this.files = files;
    this.names = names;
    this.control = control;
    this.url = url;
    this.lUrl = lUrl;
  }

  /** Writes the three configs into `opts.dir` (nothing is started). */
  static async create(opts: ChainOptions): Promise<Chain> {
    const samples = ['case4/G.json', 'case4/L.json', 'case4/L2.json'];
    const { paths, ports } = await portedSamples(opts.dir, samples);
    const files = { G: entry(paths, 'case4/G.json'), L: entry(paths, 'case4/L.json'), L2: entry(paths, 'case4/L2.json') };
    const names = {} as Record<ChainNode, string>;
    const control = {} as Record<ChainNode, string>;
    for (const node of CHAIN_NODES) {
      const config = JSON.parse(await readFile(files[node], 'utf8')) as RawNodeConfig;
      Object.assign(config.west, opts.west ?? CHAIN_TIMERS, opts.perNode?.[node]);
      if (node === 'L') {
        // L's listener sends /ba down to L2, which performs it against the test origin.
        const listener = at(Object.values(config.proxy ?? {}), 0, 'listener');
        listener['/ba'] = { ou: `http://127.0.0.1:${opts.originPort}/a` };
      }
      names[node] = String(config.west.nm);
      control[node] = `http://127.0.0.1:${String(config.west.cp).split(':').pop()}`;
      await writeFile(files[node], JSON.stringify(config, null, 2));
    }
    const url = `http://127.0.0.1:${ports.get(9981)}/baz`;
    const lUrl = `http://127.0.0.1:${ports.get(9982)}/ba`;
    return new Chain(files, names, control, url, lUrl);
  }

  /**
   * Creates a chain and starts its nodes in `order` (default G, L, L2); on EADDRINUSE it starts
   * over with fresh ports. (Every port is named in a config before start, and nodes restart on
   * their ports, so the chain keeps `freePort` ports.)
   */
  static async launch(opts: ChainOptions, order: readonly ChainNode[] = CHAIN_NODES): Promise<Chain> {
    return retryIfPortTaken(async () => {
      const chain = await Chain.create(opts);
      try {
        await chain.startAll(order);
        return chain;
      } catch (err) {
        await chain.stopAll();
        throw err;
      }
    });
  }

  /** Starts one node (waits for node.started, not for its tunnels). */
  async start(node: ChainNode): Promise<WestProcess> {
    const p = await WestProcess.start(this.files[node]);
    this.procs[node] = p;
    return p;
  }

  /** Resumes paused nodes and starts those that are not running (a test that failed half-way may leave some). */
  async ensureRunning(): Promise<void> {
    for (const node of CHAIN_NODES) {
      if (this.procs[node]?.exitCode === null) this.procs[node].kill('SIGCONT');
      else await this.start(node);
    }
  }

  /** Starts the nodes in the given order (default G, L, L2). */
  async startAll(order: readonly ChainNode[] = CHAIN_NODES): Promise<void> {
    for (const node of order) await this.start(node);
  }

  /** The running process of a node (throws when it is not running). */
  proc(node: ChainNode): WestProcess {
    const p = this.procs[node];
    if (!p) throw new Error(`${node} is not running`);
    return p;
  }

  /** SIGKILLs a node and waits for it to exit. */
  async kill(node: ChainNode): Promise<void> {
    const p = this.proc(node);
    p.kill('SIGKILL');
    await p.exited;
    await p.stop();
    delete this.procs[node];
  }

  /** SIGTERMs a node (it drains) and waits for it to exit. */
  async stop(node: ChainNode): Promise<void> {
    const p = this.procs[node];
    if (!p) return;
    p.kill('SIGCONT'); // a paused node cannot drain
    await p.stop(5000);
    delete this.procs[node];
  }

  async stopAll(): Promise<void> {
    await Promise.all(CHAIN_NODES.map((n) => this.stop(n)));
  }

  /** GETs `${url}${path}` until it answers 200 (bounded); returns that answer. */
  until200(path = '/echo', timeoutMs = 10_000, url = this.url): Promise<FetchResult> {
    return until200(`${url}${path}`, timeoutMs);
  }

  /** The node's /state.json. */
  state(node: ChainNode): Promise<NodeStateView> {
    return stateOf(this.control[node]);
  }
}

/** GETs `url` until it answers 200 (bounded); returns that answer. */
export function until200(url: string, timeoutMs = 10_000): Promise<FetchResult> {
  return waitFor(`200 from ${url}`, async () => {
    const r = await fetchText(url, { timeoutMs: 5000 });
    return r.status === 200 ? r : undefined;
  }, timeoutMs, 50);
}

/** A node's /state.json, from its control port base URL. */
export async function stateOf(control: string): Promise<NodeStateView> {
  const r = await fetchText(`${control}/state.json`, { timeoutMs: 5000 });
  if (r.status !== 200) throw new Error(`${control}/state.json answered ${r.status}`);
  return JSON.parse(r.text) as NodeStateView;
}

/** Rejects when `promise` has not settled within `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** How one HTTP exchange ended: a complete response (body hashed), or broken off. */
export type Ending =
  | { kind: 'complete'; status: number; headers: http.IncomingHttpHeaders; bytes: number; sha256: string; text: string }
  | { kind: 'broken'; status: number | undefined; headers: http.IncomingHttpHeaders | undefined; bytes: number; error: string };

export interface WatchedExchange {
  req: http.ClientRequest;
  /** Resolves with the response head (never rejects: a request that fails before it stays pending). */
  head: Promise<http.IncomingMessage>;
  /** Body bytes received so far. */
  bytes(): number;
  /** Resolves once at least `n` body bytes have arrived (never rejects). */
  received(n: number): Promise<void>;
  /** How the exchange ended; never rejects. A client-side timeout ends it as broken ('timeout'). */
  ending: Promise<Ending>;
}

/**
 * Starts a request and watches it to its end: the body is read as it comes (hashed, the first
 * 64 KiB kept as text), and the ending says whether the response arrived complete.
 */
export function watchExchange(url: string, opts: StreamOptions = {}): WatchedExchange {
  const { req, response } = startRequest(url, opts);
  let got = 0;
  let status: number | undefined;
  let headers: http.IncomingHttpHeaders | undefined;
  const waiters: { n: number; resolve: () => void }[] = [];
  const wake = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w && got >= w.n) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };
  const head = new Promise<http.IncomingMessage>((resolve) => { response.then(resolve, () => { /* see ending */ }); });
  const ending = (async (): Promise<Ending> => {
    let res: http.IncomingMessage;
    try {
      res = await response;
    } catch (err) {
      return { kind: 'broken', status, headers, bytes: got, error: (err as Error).message };
    }
    status = res.statusCode;
    headers = res.headers;
    const hash = createHash('sha256');
    const kept: Buffer[] = [];
    let keptBytes = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        hash.update(chunk);
        got += chunk.length;
        if (keptBytes < 64 * 1024) {
          const piece = chunk.subarray(0, 64 * 1024 - keptBytes);
          kept.push(piece);
          keptBytes += piece.length;
        }
        wake();
      }
    } catch (err) {
      return { kind: 'broken', status, headers, bytes: got, error: (err as Error).message };
    }
    if (!res.complete) return { kind: 'broken', status, headers, bytes: got, error: 'response incomplete' };
    return { kind: 'complete', status: res.statusCode ?? 0, headers: res.headers, bytes: got, sha256: hash.digest('hex'), text: Buffer.concat(kept).toString('utf8') };
  })();
  return {
    req,
    head,
    bytes: () => got,
    received: (n) => new Promise<void>((resolve) => {
      waiters.push({ n, resolve });
      wake();
    }),
    ending,
  };
}

/** The parts of /state.json the resilience tests read. */
export interface NodeStateView {
  name: string;
  server?: { peers: { name: string; address: string; port: number; since: string; streams: number }[] };
  tunnels: { url: string; connected: boolean; since?: string; connects: number; state: string; streams: number; bytesIn: number; bytesOut: number; lastError?: string }[];
  listeners: { key: string; port: number; inFlight: number; requests: number; connected: boolean; statuses: Record<string, number> }[];
}

export interface PairOptions {
  dir: string;
  /** Prefix for the file names and node names (`${tag}-G`, `${tag}-L`). */
  tag: string;
  originPort: number;
  /** Keys added to G's and L's `west` sections (default SHORT_TIMERS). */
  west?: WestKeys;
  gWest?: WestKeys;
  lWest?: WestKeys;
  /** `wsts.claim` of G. */
  claim?: 'replace' | 'refuse';
  /** Port of G's tunnel server (default: a free one). */
  serverPort?: number;
  /** Tunnel server URL L dials instead of G's own (a Link in between, say). */
  lDials?: string;
}

/** Config objects of a pair, as written (tests may change them and write them again). */
export interface PairConfigs {
  G: RawNodeConfig;
  L: RawNodeConfig;
}

/**
 * Two nodes: G runs the tunnel server and an `en` listener down to L; L dials G and has an
 * `ea` listener up to G. `${gUrl}/x` is performed at L as origin `/atL/x`, `${lUrl}/x` at G as
 * origin `/atG/x`. Files are written; nothing is started.
 *
 * The listeners and control ports are written as port 0: the URLs are read from each node's
 * log when it starts (`start`), and change when a node is started again. The tunnel server's
 * port is picked before: L's config names it, and G must bind it again when restarted.
 */
export class Pair {
  readonly files: Record<'G' | 'L', string>;
  readonly names: Record<'G' | 'L', string>;
  readonly configs: PairConfigs;
  /** The tunnel server URL (G's wsts.sp). */
  readonly server: string;
  /** Control port base URL of each node, once started. */
  readonly control: Record<'G' | 'L', string> = { G: '', L: '' };
  /** G's `en` listener with its mapping (performed at L), once G is started. */
  gUrl = '';
  /** L's `ea` listener with its mapping (performed at G), once L is started. */
  lUrl = '';

  private constructor(files: Record<'G' | 'L', string>, names: Record<'G' | 'L', string>, configs: PairConfigs, server: string) {
    this.files = files;
    this.names = names;
    this.configs = configs;
    this.server = server;
  }

  static async create(opts: PairOptions): Promise<Pair> {
    const server = `ws://127.0.0.1:${opts.serverPort ?? await freePort()}`;
    const names = { G: `${opts.tag}-G`, L: `${opts.tag}-L` };
    const origin = `http://127.0.0.1:${opts.originPort}`;
    const configs: PairConfigs = {
      G: {
        west: { nm: names.G, cp: '127.0.0.1:0', ...(opts.west ?? SHORT_TIMERS), ...opts.gWest },
        wsts: { sp: server, ...(opts.claim ? { claim: opts.claim } : {}) },
        proxy: { 'http://127.0.0.1:0': { en: names.L, '/px': { ou: `${origin}/atL` } } },
      },
      L: {
        west: { nm: names.L, cp: '127.0.0.1:0', ...(opts.west ?? SHORT_TIMERS), ...opts.lWest },
        proxy: { 'http://127.0.0.1:0': { ea: opts.lDials ?? server, '/px': { ou: `${origin}/atG` } } },
      },
    };
    const files = {
      G: path.join(opts.dir, `${opts.tag}-G.json`),
      L: path.join(opts.dir, `${opts.tag}-L.json`),
    };
    const pair = new Pair(files, names, configs, server);
    await pair.rewrite('G');
    await pair.rewrite('L');
    return pair;
  }

  /**
   * Creates a pair and starts G, then L; on EADDRINUSE it starts over with fresh ports (and
   * fresh options: `makeOptions` runs once per attempt).
   */
  static async launch(makeOptions: () => PairOptions | Promise<PairOptions>): Promise<{ pair: Pair; g: WestProcess; l: WestProcess }> {
    return retryIfPortTaken(async () => {
      const pair = await Pair.create(await makeOptions());
      const g = await pair.start('G');
      try {
        return { pair, g, l: await pair.start('L') };
      } catch (err) {
        await g.stop();
        throw err;
      }
    });
  }

  /** Starts a node from its file and reads its listener and control URLs from its log. */
  async start(node: 'G' | 'L'): Promise<WestProcess> {
    const p = await WestProcess.start(this.files[node]);
    this.control[node] = p.controlUrl();
    if (node === 'G') this.gUrl = `${p.listenerUrl('http://127.0.0.1:0')}/px`;
    else this.lUrl = `${p.listenerUrl('http://127.0.0.1:0')}/px`;
    return p;
  }

  /** Writes a node's config object (as changed by the test) to its file, or `text` instead. */
  async rewrite(node: 'G' | 'L', text?: string): Promise<void> {
    await writeFile(this.files[node], text ?? JSON.stringify(this.configs[node], null, 2));
  }
}

/**
 * A TCP relay in front of a port that the test opens and cuts, like a network link: while cut
 * it refuses new connections (accepts and destroys them) and has dropped the ones it carried.
 * A node that dials through it keeps redialling, so opening the link brings the peer back
 * within one redial delay, however long a process takes to start on a busy machine.
 */
export class Link {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private up = false;

  private constructor(private readonly target: number) {
    this.server = net.createServer((client) => this.onConnection(client));
  }

  /** Listens on a free port of 127.0.0.1, relaying to `target` on 127.0.0.1; starts cut. */
  static async listen(target: number): Promise<Link> {
    const link = new Link(target);
    await new Promise<void>((resolve) => link.server.listen(0, '127.0.0.1', resolve));
    return link;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  open(): void {
    this.up = true;
  }

  /** Cuts the link: existing connections are destroyed, new ones refused. */
  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: net.Socket): void {
    if (!this.up) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => { client.destroy(); upstream.destroy(); });
      s.on('close', () => { this.sockets.delete(s); client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
