/**
 * Client side of the long-link figures: whole downloads timed to the last byte (stopped at a
 * cap, reporting the rate so far), and the time of small requests on one kept-alive connection.
 * Bodies are counted, never kept.
 */
import http from 'node:http';

export interface Download {
  status: number;
  bytes: number;
  /** From the request to the last byte (or to the cap). */
  elapsedMs: number;
  /** The body arrived in full. */
  complete: boolean;
  /** Stopped at the cap before the end. */
  capped: boolean;
  error?: string;
}

/** GETs `url` on a connection of its own and reads the body to the end or until `capMs`. */
export function download(url: string, capMs: number): Promise<Download> {
  const started = performance.now();
  return new Promise((resolve) => {
    let status = 0;
    let bytes = 0;
    let settled = false;
    const finish = (complete: boolean, capped: boolean, error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(cap);
      req.destroy();
      resolve({ status, bytes, elapsedMs: performance.now() - started, complete, capped, ...(error ? { error } : {}) });
    };
    const req = http.get(url, { agent: false }, (res) => {
      status = res.statusCode ?? 0;
      const expected = Number(res.headers['content-length'] ?? -1);
      res.on('data', (c: Buffer) => { bytes += c.length; });
      res.on('end', () => finish(res.complete && (expected < 0 || bytes === expected), false, res.complete ? undefined : 'body cut off'));
      res.on('error', (err) => finish(false, false, err.message));
    });
    const cap = setTimeout(() => finish(false, true), capMs);
    req.on('error', (err) => finish(false, false, err.message));
  });
}

/** Several downloads at once, each on its own connection; the aggregate rate is bytes over the longest. */
export async function downloadAll(urls: string[], capMs: number): Promise<{ each: Download[]; bytes: number; elapsedMs: number }> {
  const each = await Promise.all(urls.map((u) => download(u, capMs)));
  return {
    each,
    bytes: each.reduce((s, d) => s + d.bytes, 0),
    elapsedMs: Math.max(...each.map((d) => d.elapsedMs)),
  };
}

function timedGet(url: string, agent: http.Agent, timeoutMs: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`status ${res.statusCode ?? 0}`))));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Times `n` GETs of `url` one after another on one kept-alive connection, after one that opens
 * it (not counted); resolves with each time in ms.
 */
export async function keptAliveTimes(url: string, n: number, timeoutMs = 10_000): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await timedGet(url, agent, timeoutMs);
    const times: number[] = [];
    for (let i = 0; i < n; i++) times.push(await timedGet(url, agent, timeoutMs));
    return times;
  } finally {
    agent.destroy();
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

const MIB = 1024 * 1024;
/** The long-link and MQTT modes' transfers: one 64 MiB download, and eight of 16 MiB at once. */
export const ONE = 64 * MIB;
export const MANY = 8;
export const EACH = 16 * MIB;

/** What one line of those modes measured. */
export interface TransferFigures {
  single: Download;
  many: { bytes: number; elapsedMs: number; each: Download[] };
  requestMs: number;
}

/** Bytes per second. */
export function rate(bytes: number, elapsedMs: number): number {
  return bytes / (elapsedMs / 1000);
}
