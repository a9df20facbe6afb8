/**
 * The benchmark's origin server, run as its own process (`node dist/bench/origin.js`). It
 * listens on 127.0.0.1, a free port, and prints `{"port": N}` when ready. Routes, matched on
 * the end of the path so any proxy prefix works:
 *   .../small          200, a 100-byte text body
 *   .../1m             200, a 1 MiB body (one preallocated buffer)
 *   .../bytes/<n>      200, n bytes streamed in 64 KiB writes with back-pressure
 *   .../delay/<ms>     200, the small body after <ms> milliseconds
 */
import http from 'node:http';
import { serveAndReport } from './procs.js';

const SMALL_BODY = Buffer.from('west benchmark origin: a small body'.padEnd(99, '.') + '\n');
const MIB = 1024 * 1024;
const ONE_MIB = Buffer.alloc(MIB, 'x');
const BLOCK = Buffer.alloc(64 * 1024, 'y');

function sendSmall(res: http.ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': SMALL_BODY.length });
  res.end(SMALL_BODY);
}

function sendStream(res: http.ServerResponse, n: number): void {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
  let sent = 0;
  const pump = (): void => {
    while (sent < n) {
      const take = Math.min(n - sent, BLOCK.length);
      sent += take;
      if (!res.write(take === BLOCK.length ? BLOCK : BLOCK.subarray(0, take))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

function route(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  const [path = '/'] = (req.url ?? '/').split('?');
  if (path.endsWith('/small')) {
    sendSmall(res);
    return;
  }
  if (path.endsWith('/1m')) {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': MIB });
    res.end(ONE_MIB);
    return;
  }
  const bytes = /\/bytes\/(\d+)$/.exec(path);
  if (bytes) {
    sendStream(res, Number(bytes[1]));
    return;
  }
  const wait = /\/delay\/(\d+)$/.exec(path);
  if (wait) {
    const timer = setTimeout(() => sendSmall(res), Number(wait[1]));
    res.on('close', () => clearTimeout(timer));
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('no such route\n');
}

serveAndReport(http.createServer(route));
