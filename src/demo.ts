/** The demo's origin: a tiny HTTP server that echoes what reached it, so a user sees the proxying. */
import http from 'node:http';
import { listenOn } from './listen.js';

export async function startEchoOrigin(port: number, host = '127.0.0.1'): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; });
    req.on('end', () => {
      const body = JSON.stringify({
        message: 'hello from the demo origin, reached through a west tunnel',
        method: req.method,
        url: req.url,
        headers: req.headers,
        bodyBytes: size,
      }, null, 2) + '\n';
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(body);
    });
  });
  await listenOn(server, { host, port });
  return server;
}
