/** Small network helpers for tests: free ports, bounded waits, HTTP requests with full bodies. */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * The ephemeral range the kernel takes source ports of outgoing connections from. A port a
 * test picks there (as `listen(0)` does) can be taken by some connection between the pick and
 * the west process binding it, so tests pick below it.
 */
function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low && low > 12_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const PICK_LOW = 10_000;
const PICK_HIGH = ephemeralLow() - 1;
const handedOut = new Set<number>();

function tryBind(port: number, host: string): Promise<'ok' | 'in-use' | 'no-family'> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? 'in-use' : 'no-family'));
    server.listen(port, host, () => server.close(() => resolve('ok')));
  });
}

/**
 * '::' (dual stack) takes the port on every interface, IPv4 included: the strictest test, as
 * west binds ":port" configs on all interfaces. Without IPv6, '0.0.0.0' does the same for IPv4.
 */
async function bindable(port: number): Promise<boolean> {
  const v6 = await tryBind(port, '::');
  if (v6 !== 'no-family') return v6 === 'ok';
  return (await tryBind(port, '0.0.0.0')) === 'ok';
}

/**
 * A port that was free a moment ago, below the ephemeral range and not handed out before by this
 * process. Only for ports a config must name before its node starts (or that a node binds again
 * after a restart); start such nodes with `retryIfPortTaken` (helpers/west.ts), since another
 * process may bind the port first. Everywhere else write port 0 and read the bound port back.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PICK_LOW + Math.floor(Math.random() * (PICK_HIGH - PICK_LOW));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port found in ${PICK_LOW}-${PICK_HIGH}`);
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`); // eslint-disable-line @typescript-eslint/no-base-to-string -- whatever check() threw, as it prints
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface FetchResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface FetchOptions {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  timeoutMs?: number;
  agent?: http.Agent | false;
}

/** One HTTP request, body read in full. Rejects on socket errors and after timeoutMs. */
export function fetchText(url: string, opts: FetchOptions = {}): Promise<FetchResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * A WebSocket upgrade to `url` written by hand (any `Sec-WebSocket-Version`): the first line of
 * the answer, or what was read before the server closed.
 */
export function rawUpgradeLine(url: string, version = '13'): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), u.hostname, () => {
      socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: ${version}\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`);
    });
    let got = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer from ${url}: ${JSON.stringify(got)}`)); }, 5000);
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n')) { clearTimeout(timer); socket.destroy(); resolve(got.split('\r\n')[0] ?? ''); }
    });
    socket.on('error', () => {});
    socket.on('close', () => { clearTimeout(timer); resolve(got); });
  });
}
