/**
 * A real origin server for end-to-end tests. Routes (under any prefix, matched on the last
 * path segment(s)):
 *   .../echo            200, JSON {method, url, headers, bodyBytes, sha256} of what arrived
 *   .../status/<code>   answers <code> with body "status <code>" and header X-Origin: yes
 *   .../bytes/<n>       200, n deterministic bytes (pattern: byte i = i % 251), streamed
 *   .../stall           sends headers and 1 KiB, then stalls until the client goes away
 *   .../hang            never answers
 * Every request is recorded in `seen` (method, url, headers, aborted flag).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Set when the client side went away before the response finished. */
  aborted: boolean;
  done: boolean;
}

/** The byte at offset i of a /bytes/<n> body. */
export function patternByte(i: number): number {
  return i % 251;
}

export function patternSha256(n: number): string {
  const hash = createHash('sha256');
  const block = Buffer.alloc(251 * 256);
  for (let i = 0; i < block.length; i++) block[i] = patternByte(i);
  let left = n;
  while (left > 0) {
    const take = Math.min(left, block.length);
    hash.update(block.subarray(0, take));
    left -= take;
  }
  return hash.digest('hex');
}

export class Origin {
  readonly seen: SeenRequest[] = [];
  private readonly server: http.Server;

  constructor() {
    this.server = http.createServer((req, res) => this.route(req, res));
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    return this.port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const entry: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, aborted: false, done: false };
    this.seen.push(entry);
    res.on('close', () => {
      if (!res.writableFinished) entry.aborted = true;
      entry.done = true;
    });
    const [path = '/'] = (req.url ?? '/').split('?');
    const status = /\/status\/(\d{3})$/.exec(path);
    const bytes = /\/bytes\/(\d+)$/.exec(path);
    if (status) {
      req.resume();
      const code = Number(status[1]);
      res.writeHead(code, { 'Content-Type': 'text/plain', 'X-Origin': 'yes' });
      res.end(`status ${code}`);
    } else if (bytes) {
      req.resume();
      sendPattern(res, Number(bytes[1]));
    } else if (path.endsWith('/stall')) {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.write(Buffer.alloc(1024, 7));
    } else if (path.endsWith('/hang')) {
      req.resume();
    } else if (path.endsWith('/early413')) {
      // Answers before reading the request body: what a server does with an upload it will not
      // take. (It keeps the connection: closing it with the body unread would reset it, and
      // whether the answer or the reset reaches the client first is a race.)
      res.writeHead(413, { 'Content-Type': 'text/plain' });
      res.end('too large');
    } else {
      const hash = createHash('sha256');
      let size = 0;
      req.on('data', (c: Buffer) => { size += c.length; hash.update(c); });
      req.on('end', () => {
        const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: size, sha256: hash.digest('hex') });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
    }
  }
}

function sendPattern(res: http.ServerResponse, n: number): void {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
  const block = Buffer.alloc(251 * 256);
  for (let i = 0; i < block.length; i++) block[i] = patternByte(i);
  let sent = 0;
  const pump = (): void => {
    while (sent < n) {
      const take = Math.min(n - sent, block.length);
      sent += take;
      if (!res.write(block.subarray(0, take))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}
