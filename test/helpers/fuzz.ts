/**
 * What the fuzz harnesses (test/fuzz/) share: the seed and run counts from the environment, a
 * recording origin, raw socket exchanges, and bounded waits on a node's open streams.
 *
 *   WEST_FUZZ_SEED   fast-check seed (default FUZZ_DEFAULT_SEED): the same seed replays the same cases
 *   WEST_FUZZ_RUNS   cases per property (default 100: the brief run inside `npm test`)
 *   WEST_FUZZ_PATH   fast-check's replay path of a failure (with its seed), to rerun just that case
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import fc from 'fast-check';
import { stateOf, type NodeStateView } from './chain.js';
import { waitFor } from './net.js';

export const FUZZ_DEFAULT_SEED = 20_240_601;
export const FUZZ_SEED = envInt('WEST_FUZZ_SEED', FUZZ_DEFAULT_SEED);
export const FUZZ_RUNS = envInt('WEST_FUZZ_RUNS', 100);
const FUZZ_PATH = process.env.WEST_FUZZ_PATH || undefined;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name}=${raw} is not an integer`);
  return n;
}

/**
 * fast-check parameters for one property: the shared seed, `share` of WEST_FUZZ_RUNS cases (at
 * least one). A property that runs under a known bug (`todo`) stops at its first failure instead
 * of shrinking it: every failing case of a leak waits out a deadline, and the suite must stay
 * quick while the bug is open. Remove the todo and shrinking comes back.
 */
export function fuzzParameters<T>(share: number, todo?: string): fc.Parameters<T> {
  return {
    seed: FUZZ_SEED,
    numRuns: Math.max(1, Math.round(FUZZ_RUNS * share)),
    ...(FUZZ_PATH ? { path: FUZZ_PATH } : {}),
    endOnFailure: todo !== undefined,
    includeErrorInReport: true,
  };
}

/** A node:test timeout for a property of `runs` cases that take up to `perCaseMs` each. */
export function fuzzTimeout(runs: number, perCaseMs: number): number {
  return 60_000 + Math.round(runs * perCaseMs);
}

/**
 * A string of bytes (one char per byte, latin1) quoted for a report, JSON-escaped, with every
 * run of more than 16 equal bytes written `«c×n»` (n copies of c) so long bodies stay readable.
 */
export function showBytes(raw: string): string {
  return JSON.stringify(raw).replace(/(.)\1{16,}/g, (run, c: string) => `«${c}×${run.length}»`);
}

// ---- the recording origin ----

/** The header every fuzz request carries: `<case>.<index in the case>`, or `good.<n>`. */
export const MARKER = 'x-fuzz-case';

export interface OriginRecord {
  /** The X-Fuzz-Case value (undefined when it did not arrive). */
  marker: string | undefined;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  upgrade: boolean;
  /** The whole request body arrived. */
  complete: boolean;
  /** The exchange is over (answered, or the connection went away). */
  done: boolean;
}

/**
 * An origin that records every request at the moment its head arrives, then answers 200 once
 * the body has been read (a tenth of a second later when the path has a `slow` segment, so a
 * request pipelined behind it is answered first). Upgrade requests whose path starts with `acceptUpgradesUnder` are
 * switched (101, then the socket echoes); every other upgrade request is declined with a 200.
 */
export class RecordingOrigin {
  readonly records: OriginRecord[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<Duplex>();

  constructor(private readonly acceptUpgradesUnder = '/ws-accept') {
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_err, socket: Duplex) => socket.destroy());
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this.port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Requests whose exchange is not over yet. */
  busy(): number {
    return this.records.filter((r) => !r.done).length;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private record(req: http.IncomingMessage, upgrade: boolean): OriginRecord {
    const marker = req.headers[MARKER];
    const entry: OriginRecord = {
      marker: typeof marker === 'string' ? marker : undefined,
      method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade, complete: upgrade, done: false,
    };
    this.records.push(entry);
    return entry;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const entry = this.record(req, false);
    res.on('close', () => { entry.done = true; });
    req.on('end', () => {
      entry.complete = true;
      const body = 'fuzz origin\n';
      const answer = (): void => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (/\/slow(\/|\?|$)/.test(req.url ?? '')) {
        const timer = setTimeout(answer, 100);
        res.on('close', () => clearTimeout(timer));
      } else {
        answer();
      }
    });
    req.resume();
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const entry = this.record(req, true);
    this.sockets.add(socket);
    socket.on('close', () => {
      entry.done = true;
      this.sockets.delete(socket);
    });
    socket.on('error', () => socket.destroy());
    if (!(req.url ?? '').startsWith(this.acceptUpgradesUnder)) {
      const body = 'fuzz origin\n';
      socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade ?? 'websocket'}\r\nConnection: Upgrade\r\n\r\n`);
    if (head.length) socket.write(head);
    socket.pipe(socket);
  }
}

// ---- raw exchanges ----

export interface RawConnection {
  socket: net.Socket;
  /** Everything received so far, one char per byte. */
  received(): string;
  /** Resolves when the socket has closed (never rejects). */
  closed: Promise<void>;
  isClosed(): boolean;
  /** Resolves when `check(received)` holds or the socket closes; false when `timeoutMs` passed first. */
  until(check: (received: string) => boolean, timeoutMs: number): Promise<boolean>;
}

/** Opens a TCP connection to 127.0.0.1:port that collects every byte it receives. */
export async function connectRaw(port: number): Promise<RawConnection> {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  const waiters = new Set<() => void>();
  const wake = (): void => { for (const w of [...waiters]) w(); };
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => {
    text += c;
    wake();
  });
  socket.on('error', () => { /* a reset is a close too */ });
  const closedPromise = new Promise<void>((resolve) => socket.once('close', () => {
    closed = true;
    wake();
    resolve();
  }));
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', resolve);
  });
  return {
    socket,
    received: () => text,
    closed: closedPromise,
    isClosed: () => closed,
    until: (check, timeoutMs) => new Promise<boolean>((resolve) => {
      const done = (result: boolean): void => {
        clearTimeout(timer);
        waiters.delete(poke);
        resolve(result);
      };
      const poke = (): void => {
        if (check(text)) done(true);
        else if (closed) done(false);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      waiters.add(poke);
      poke();
    }),
  };
}

/** Writes a latin1 string to a socket (ignoring a socket that is already gone). */
export function writeRaw(socket: net.Socket, raw: string): void {
  if (!socket.destroyed && socket.writable) socket.write(Buffer.from(raw, 'latin1'));
}

/** Half-closes a connection and waits (bounded) for the other side to close it; true when it did. */
export async function finishRaw(conn: RawConnection, timeoutMs: number): Promise<boolean> {
  if (!conn.isClosed()) conn.socket.end();
  const closed = await conn.until(() => false, timeoutMs).then(() => conn.isClosed());
  conn.socket.destroy();
  await conn.closed;
  return closed;
}

// ---- a node's open streams ----

/** Every count of open streams and requests in flight that /state.json shows. */
export function openStreams(state: NodeStateView): { total: number; detail: string } {
  const parts: [string, number][] = [
    ...(state.server?.peers ?? []).map((p): [string, number] => [`server peer ${p.name}`, p.streams]),
    ...state.tunnels.map((t): [string, number] => [`tunnel ${t.url}`, t.streams]),
    ...state.listeners.map((l): [string, number] => [`listener ${l.key} in flight`, l.inFlight]),
  ];
  return { total: parts.reduce((n, [, v]) => n + v, 0), detail: parts.map(([k, v]) => `${k}: ${v}`).join('; ') };
}

/**
 * Polls the node's /state.json until no more streams are open and requests in flight than
 * `baseline` (0: none at all), bounded. Returns undefined when it got there, or what was still
 * open at the deadline. (A case is measured against the count before it, so a leak is pinned
 * on the case that caused it, and shrinking is not misled by an earlier one.)
 */
export async function streamsDrained(control: string, timeoutMs: number, baseline = 0): Promise<string | undefined> {
  let last = '';
  try {
    await waitFor('streams to close', async () => {
      const open = openStreams(await stateOf(control));
      last = `${open.detail} (${baseline} before the case)`;
      return open.total <= baseline;
    }, timeoutMs, 10);
    return undefined;
  } catch {
    return last || 'the control port did not answer';
  }
}
