/**
 * Issuing session keys on the control port (behind `west.cpToken`, checked by server.ts):
 * `POST /sessions` with `{ "node": "L2", "target": "10.0.0.67:5900" }` issues a remote-access
 * key bound to that node and endpoint; `POST /rendezvous` issues a rendezvous key. Both answer
 * 201 with the key, the WebSocket URL to open and when the key expires (doc/remote-access.md).
 */
import type http from 'node:http';
import { parseEndpoint, parseListenerKey } from '../config/endpoint.js';
import type { AccessConfig } from '../config/types.js';
import { isRecord } from '../json.js';

/** What the control port needs to issue keys: the node's `west.access` and its key store. */
export interface KeyIssuer {
  /** This node's name: a remote-access key names another node. */
  nodeName(): string;
  config(): AccessConfig | undefined;
  issueRemoteAccess(to: string, target: string): { key: string; expires: Date } | undefined;
  issueRendezvous(): { key: string; expires: Date } | undefined;
  /** The port a listener is bound to (its key may say 0). */
  listenerPort(listenerKey: string): number | undefined;
}

const MAX_BODY = 4096;

/** Handles `POST /sessions` and `POST /rendezvous`; false for any other path. */
export function handleKeyRequest(req: http.IncomingMessage, res: http.ServerResponse, path: string, issuer: KeyIssuer): boolean {
  if (path !== '/sessions' && path !== '/rendezvous') return false;
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= MAX_BODY) chunks.push(c);
  });
  req.once('end', () => {
    if (size > MAX_BODY) { reply(res, 413, { error: `the body is larger than ${MAX_BODY} bytes` }); return; }
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = {};
    if (text.trim() !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        reply(res, 400, { error: 'the body must be JSON' });
        return;
      }
    }
    const answer = path === '/sessions' ? remoteAccess(body, issuer, req) : rendezvous(body, issuer, req);
    reply(res, answer.status, answer.body);
  });
  return true;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

function remoteAccess(body: unknown, issuer: KeyIssuer, req: http.IncomingMessage): Answer {
  const config = issuer.config();
  if (!config || config.remoteAccess.length === 0) return { status: 404, body: { error: 'no listener of this node serves remote access (west.access.remoteAccess)' } };
  if (!isRecord(body) || typeof body.node !== 'string' || body.node === '' || typeof body.target !== 'string') {
    return { status: 400, body: { error: 'expected { "node": "<node name>", "target": "<host>:<port>" }' } };
  }
  try {
    const { host, port } = parseEndpoint(body.target);
    if (host === '' || port === 0) throw new Error('a host and a port other than 0 are needed');
  } catch (err) {
    return { status: 400, body: { error: `target: ${(err as Error).message}` } };
  }
  if (body.node === issuer.nodeName()) {
    return { status: 400, body: { error: `node: the endpoint must be reached through another node of the mesh, not ${body.node} itself` } };
  }
  const listener = pickListener(body, config.remoteAccess);
  if (listener === undefined) return { status: 400, body: { error: 'listener: not one of west.access.remoteAccess' } };
  const issued = issuer.issueRemoteAccess(body.node, body.target);
  if (!issued) return { status: 503, body: { error: 'too many keys are outstanding' } };
  return {
    status: 201,
    body: { key: issued.key, url: webSocketUrl(listener, issuer.listenerPort(listener), req, `/remoteaccess/${issued.key}`), expires: issued.expires.toISOString(), node: body.node, target: body.target },
  };
}

function rendezvous(body: unknown, issuer: KeyIssuer, req: http.IncomingMessage): Answer {
  const config = issuer.config();
  if (!config || config.rendezvous.length === 0) return { status: 404, body: { error: 'no listener of this node serves rendezvous (west.access.rendezvous)' } };
  const listener = pickListener(isRecord(body) ? body : {}, config.rendezvous);
  if (listener === undefined) return { status: 400, body: { error: 'listener: not one of west.access.rendezvous' } };
  const issued = issuer.issueRendezvous();
  if (!issued) return { status: 503, body: { error: 'too many keys are outstanding' } };
  return { status: 201, body: { key: issued.key, url: webSocketUrl(listener, issuer.listenerPort(listener), req, `/rendezvous/${issued.key}`), expires: issued.expires.toISOString() } };
}

/** The listener the body names (`"listener"`), else the first configured. */
function pickListener(body: Record<string, unknown>, listeners: string[]): string | undefined {
  if (typeof body.listener === 'string') return listeners.includes(body.listener) ? body.listener : undefined;
  return listeners[0];
}

/**
 * The ws:// (or wss://) URL of a listener; a listener on every interface is named by the host
 * the control port was reached at, the best guess of an address the caller can reach.
 */
function webSocketUrl(listenerKey: string, bound: number | undefined, req: http.IncomingMessage, path: string): string {
  const l = parseListenerKey(listenerKey);
  const scheme = l?.tls ? 'wss' : 'ws';
  let host = l?.host ?? '';
  if (host === '' || host === '0.0.0.0' || host === '::') {
    const reached = req.headers.host ?? '127.0.0.1';
    host = reached.startsWith('[') ? reached.slice(0, reached.indexOf(']') + 1) : reached.split(':')[0] ?? '127.0.0.1';
  } else if (host.includes(':')) {
    host = `[${host}]`;
  }
  return `${scheme}://${host}:${bound ?? l?.port ?? 0}${path}`;
}

function reply(res: http.ServerResponse, status: number, body: Record<string, unknown>): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}
