/**
 * Streaming helpers for tests that move big bodies: bodies generated on the fly and hashed as
 * they are read, so a test never holds a whole body in memory.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { patternByte } from './origin.js';

/** One block of the origin's /bytes/ pattern; its length is a multiple of 251, so blocks chain. */
const PATTERN_BLOCK = (() => {
  const block = Buffer.alloc(251 * 256);
  for (let i = 0; i < block.length; i++) block[i] = patternByte(i);
  return block;
})();

/**
 * `n` bytes of the origin's /bytes/ pattern (byte i = i % 251), yielded block by block, so
 * `patternSha256(n)` is the hash of the whole. Each block is a fresh copy: a consumer may keep it.
 */
export function* patternBody(n: number): Generator<Buffer> {
  let left = n;
  while (left > 0) {
    const take = Math.min(left, PATTERN_BLOCK.length);
    yield Buffer.from(PATTERN_BLOCK.subarray(0, take));
    left -= take;
  }
}

export interface StreamedResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Body bytes read. */
  bytes: number;
  sha256: string;
  /** The body as text, kept only while it is small (the first `keepBytes` bytes). */
  text: string;
}

export interface StreamOptions {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  /** A request body streamed from an iterable (a generator, say); none when absent. */
  body?: Iterable<Buffer> | AsyncIterable<Buffer>;
  timeoutMs?: number;
  /** How much of the response body to keep as `text` (default 64 KiB). */
  keepBytes?: number;
}

/**
 * Starts a request and returns it at once, with a promise of its response head (the body left
 * unread, paused). A caller that destroys the request need not await `response`.
 */
export function startRequest(url: string, opts: StreamOptions = {}): { req: http.ClientRequest; response: Promise<http.IncomingMessage> } {
  const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false });
  req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`request to ${url} timed out`)));
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', (res) => {
      res.pause();
      resolve(res);
    });
    req.on('error', reject);
  });
  response.catch(() => { /* the caller may abandon the request on purpose */ });
  if (opts.body) {
    pipeline(Readable.from(opts.body, { objectMode: false }), req).catch((err: unknown) => req.destroy(err as Error));
  } else {
    req.end();
  }
  return { req, response };
}

/** Opens a request and resolves with its response head; the body is left unread (paused). */
/**
 * POSTs half of a declared `bytes`-long body and never the rest; resolves with the status of
 * the answer (which must come early, before the body is done) and closes the connection.
 */
export function halfUpload(url: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'Content-Length': String(bytes) }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        req.destroy();
        resolve(res.statusCode ?? 0);
      });
    });
    req.on('error', reject);
    req.write(Buffer.alloc(Math.floor(bytes / 2), 0x61));
  });
}

export async function openRequest(url: string, opts: StreamOptions = {}): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  const { req, response } = startRequest(url, opts);
  return { req, res: await response };
}

/** Reads a response body to its end, hashing it on the way. */
export async function hashBody(res: http.IncomingMessage, keepBytes = 64 * 1024): Promise<{ bytes: number; sha256: string; text: string }> {
  const hash = createHash('sha256');
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    if (keptBytes < keepBytes) {
      const part = chunk.subarray(0, keepBytes - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
  }
  return { bytes, sha256: hash.digest('hex'), text: Buffer.concat(kept).toString('utf8') };
}

/** One request with a streamed body both ways; the response is hashed, never held whole. */
export async function streamRequest(url: string, opts: StreamOptions = {}): Promise<StreamedResult> {
  const { req, res } = await openRequest(url, opts);
  try {
    const body = await hashBody(res, opts.keepBytes);
    return { status: res.statusCode ?? 0, headers: res.headers, ...body };
  } finally {
    req.destroy();
  }
}
