/**
 * The control port (`west.cp`): the original's text dump on any path (a status page instead
 * for browsers, which ask for text/html), plus `/state.json`, `/healthz` (alive), `/readyz`
 * (every tunnel it needs is connected) and `/metrics`. Read-only but for `POST /sessions` and
 * `POST /rendezvous`, which issue session keys (sessions.ts) and need `west.cpToken`: every
 * other method gets 405. With `west.cpToken`, every path wants the token, as a bearer token or
 * as the password of HTTP Basic (so a browser can open the status page).
 */
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import type { Socket } from 'node:net';
import { bearerToken, sameSecret } from '../auth.js';
import type { Endpoint } from '../config/types.js';
import type { NodeEvents } from '../events.js';
import { boundPort, closeNow, listenOn } from '../listen.js';
import type { Logger } from '../log.js';
import { renderDump } from './dump.js';
import { NodeMetrics, type MetricsJson } from './metrics.js';
import { PAGE_HEADERS, renderStatusPage } from './page.js';
import { RecentActivity } from './page-recent.js';
import { handleKeyRequest, type KeyIssuer } from './sessions.js';
import type { NodeState } from './state.js';

export interface ControlServerOptions {
  endpoint: Endpoint;
  state: () => NodeState;
  /** The node's live events (requests finished, tunnels up and down). */
  events: EventEmitter<NodeEvents>;
  /** The token every request must carry (`west.cpToken`), read per request so a reload applies. */
  token?: () => string | undefined;
  /** With `west.workers` above 1: the other workers' counters for `/metrics` (src/workers/counters.ts). */
  otherCounts?: () => MetricsJson[];
  /** Issues session keys on POST (west.access); absent = read-only. */
  keys?: KeyIssuer;
  log: Logger;
}

export class ControlServer {
  private readonly opts: ControlServerOptions;
  private readonly server: http.Server;
  private readonly metrics: NodeMetrics;
  private readonly recent: RecentActivity;

  constructor(opts: ControlServerOptions) {
    this.opts = opts;
    // Both start counting now, not at listen(): requests can finish before the port is bound.
    this.metrics = new NodeMetrics(opts.state, opts.events, opts.otherCounts);
    this.recent = new RecentActivity(opts.events);
    this.server = http.createServer({ requestTimeout: 10_000, headersTimeout: 10_000 }, (req, res) => this.onRequest(req, res));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  get port(): number {
    return boundPort(this.server);
  }

  async listen(): Promise<void> {
    await listenOn(this.server, this.opts.endpoint);
    this.opts.log.info('control.listening', { port: this.port });
  }

  async close(): Promise<void> {
    this.metrics.close();
    this.recent.close();
    await closeNow(this.server);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const issuing = req.method === 'POST' && this.opts.keys !== undefined;
    if (!issuing) req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD' && !issuing) {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('the control port is read-only: use GET\n');
      return;
    }
    const token = this.opts.token?.();
    if (issuing && token === undefined) {
      req.resume();
      send(res, 403, 'text/plain', 'issuing session keys needs a control port token (west.cpToken)\n');
      return;
    }
    if (token !== undefined) {
      const given = bearerToken(req.headers.authorization) ?? basicPassword(req.headers.authorization);
      if (given === undefined || !sameSecret(given, token)) {
        req.resume();
        // Both challenges: scripts send the bearer token; a browser, which knows only Basic,
        // passes over Bearer and asks for a user name (any) and a password (the token).
        res.writeHead(401, {
          'WWW-Authenticate': ['Bearer realm="west"', 'Basic realm="west", charset="UTF-8"'],
          'Content-Type': 'text/plain; charset=utf-8',
          'Cache-Control': 'no-store',
        });
        res.end(`${given === undefined ? 'this control port needs' : 'wrong'} token (west.cpToken): a bearer token, or the password of HTTP Basic with any user name\n`);
        return;
      }
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (issuing && this.opts.keys) {
      if (!handleKeyRequest(req, res, path, this.opts.keys)) {
        req.resume();
        send(res, 404, 'text/plain', 'POST goes to /sessions (a remote-access key) or /rendezvous (a rendezvous key)\n');
      }
      return;
    }
    if (path === '/metrics') {
      this.sendMetrics(res);
      return;
    }
    const state = this.opts.state();
    if (path === '/state.json') {
      send(res, 200, 'application/json', JSON.stringify(withoutRaw(state), null, 2) + '\n');
      return;
    }
    if (path === '/healthz') {
      const down = state.tunnels.filter((t) => t.early && !t.connected).map((t) => t.url);
      send(res, 200, 'application/json', JSON.stringify({ status: 'ok', name: state.name, tunnelsDown: down }) + '\n');
      return;
    }
    if (path === '/readyz') {
      const { ready, tunnelsDown, listenersDown } = readiness(state);
      send(res, ready ? 200 : 503, 'application/json', JSON.stringify({ status: ready ? 'ready' : 'not ready', name: state.name, tunnelsDown, listenersDown }) + '\n');
      return;
    }
    if (wantsHtml(req.headers.accept)) {
      const body = renderStatusPage(state, this.recent);
      res.writeHead(200, { ...PAGE_HEADERS, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    // Everything else is the original's dump, answered the way the original did: HTTP/1.0.
    writeHttp10(req.socket, req.method === 'HEAD', renderDump(state));
  }

  private sendMetrics(res: http.ServerResponse): void {
    this.metrics.render().then((body) => {
      res.writeHead(200, { 'Content-Type': this.metrics.contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
      res.end(res.req.method === 'HEAD' ? undefined : body);
    }, (err: unknown) => {
      this.opts.log.error('control.metrics_failed', { error: err instanceof Error ? err.message : String(err) });
      send(res, 500, 'text/plain', 'metrics collection failed; see the node\'s log\n');
    });
  }
}

/**
 * Browsers list text/html in Accept; wget and curl send `*\/*` and must keep getting the dump,
 * so only an explicit text/html (not refused with q=0) selects the page.
 */
export function wantsHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const [type, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    if (type !== 'text/html') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/**
 * Ready: every tunnel dialled at start (`ee: yes`) is connected, and every listener's target
 * (its `ea` tunnel or its `en` peer) is, so a request would not get a 503 for a missing tunnel.
 */
export function readiness(state: NodeState): { ready: boolean; tunnelsDown: string[]; listenersDown: string[] } {
  const tunnelsDown = state.tunnels.filter((t) => t.early && !t.connected).map((t) => t.url);
  const listenersDown = state.listeners.filter((l) => !l.connected).map((l) => l.key);
  return { ready: tunnelsDown.length === 0 && listenersDown.length === 0, tunnelsDown, listenersDown };
}

/** The password of an `Authorization: Basic` header (the user name is not looked at), or undefined. */
export function basicPassword(header: string | undefined): string | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

function withoutRaw(state: NodeState): Omit<NodeState, 'raw'> {
  const { raw: _raw, ...rest } = state;
  return rest;
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': `${type}; charset=utf-8`, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function writeHttp10(socket: Socket, headOnly: boolean, body: string): void {
  const bytes = Buffer.from(body, 'utf8');
  const head = [
    'HTTP/1.0 200 OK',
    'Server: west',
    `Date: ${new Date().toUTCString()}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${bytes.length}`,
    'Cache-Control: no-store',
    '', '',
  ].join('\r\n');
  socket.end(headOnly ? head : Buffer.concat([Buffer.from(head, 'latin1'), bytes]));
}
