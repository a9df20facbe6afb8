/**
 * node-http-proxy in front of the origin, as its own process:
 * `node dist/bench/http-proxy.js <target-url>`. Listens on 127.0.0.1, a free port, and prints
 * `{"port": N}` when ready. It gets a keep-alive agent: without one, node-http-proxy opens a
 * new origin connection per request (`Connection: close`), which is not how anyone runs it.
 */
import http from 'node:http';
import { serveAndReport } from './procs.js';
import httpProxy from 'http-proxy';

const target = process.argv[2];
if (!target) {
  process.stderr.write('usage: http-proxy.js <target-url>\n');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true });
proxy.on('error', (err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) {
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`http-proxy: ${err.message}\n`);
  } else {
    res.destroy();
  }
});

serveAndReport(http.createServer((req, res) => proxy.web(req, res)));
