/**
 * `west session new <node> <host:port>` and `west session pair`: asks a node's control port for
 * a remote-access key (`POST /sessions`) or a rendezvous key (`POST /rendezvous`) and prints
 * the WebSocket URL to open (doc/remote-access.md). The control port and its token come from
 * `--cp` and WEST_CP_TOKEN, or from the node's own config (`-c`: west.cp and west.cpToken).
 */
import http from 'node:http';
import type { Writable } from 'node:stream';
import { loadConfigFile } from './config/load.js';
import { formatAddress } from './format.js';
import { isRecord } from './json.js';
import { stateUrl } from './state-cli.js';

export interface SessionOptions {
  action: string;
  args: string[];
  /** The control port: http://host:port, host:port or :port. */
  cp?: string;
  /** A node's config to take west.cp and west.cpToken from. */
  config?: string;
  token?: string;
  /** Which listener's URL to print (a key of west.access.remoteAccess / rendezvous). */
  listener?: string;
  json: boolean;
  timeoutMs: number;
}

/** Issues a key and prints its URL; returns the exit status. */
export async function issueSession(opts: SessionOptions, out: Writable, err: Writable): Promise<number> {
  const fail = (why: string, code = 1): number => {
    err.write(`west session: ${why}\n`);
    return code;
  };
  let body: Record<string, string>;
  let path: string;
  if (opts.action === 'new') {
    const [node, target, ...rest] = opts.args;
    if (node === undefined || target === undefined || rest.length > 0) return fail('usage: west session new <node> <host:port>', 2);
    body = { node, target };
    path = '/sessions';
  } else if (opts.action === 'pair') {
    if (opts.args.length > 0) return fail('usage: west session pair', 2);
    body = {};
    path = '/rendezvous';
  } else {
    return fail(`unknown action ${JSON.stringify(opts.action)}: "new" (a remote-access key) or "pair" (a rendezvous key)`, 2);
  }
  if (opts.listener !== undefined) body.listener = opts.listener;

  let cp = opts.cp;
  let token = opts.token;
  if (opts.config !== undefined) {
    try {
      const config = await loadConfigFile(opts.config);
      if (cp === undefined && config.control) {
        // Bound on every interface: asked on loopback. An IPv6 address goes in brackets.
        const { host, port } = config.control;
        cp = formatAddress(host === '' || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port);
      }
      token ??= config.controlToken;
    } catch (e) {
      return fail((e as Error).message);
    }
  }
  if (cp === undefined) return fail('name the control port with --cp http://host:port (or the node\'s config with -c)', 2);
  const base = stateUrl(cp);
  if (typeof base === 'string') return fail(base, 2);
  const url = new URL(path, base);
  try {
    const answer = await post(url, JSON.stringify(body), token, opts.timeoutMs);
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      parsed = undefined;
    }
    if (answer.status === 401) return fail(`${url.href} answered 401: it wants the control token (west.cpToken) in WEST_CP_TOKEN`);
    if (answer.status !== 201 || !isRecord(parsed) || typeof parsed.url !== 'string') {
      const why = isRecord(parsed) && typeof parsed.error === 'string' ? parsed.error : answer.body.trim().slice(0, 200);
      return fail(`${url.href} answered ${answer.status}: ${why}`);
    }
    out.write(opts.json ? `${JSON.stringify(parsed)}\n` : `${parsed.url}\n`);
    if (!opts.json && typeof parsed.expires === 'string') err.write(`west session: usable once, until ${parsed.expires}\n`);
    return 0;
  } catch (e) {
    return fail((e as Error).message);
  }
}

function post(url: URL, body: string, token: string | undefined, timeoutMs: number): Promise<{ status: number; body: string }> {
  const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot reach ${url.href}: ${e.code ?? e.message}`)));
    req.end(body);
  });
}
