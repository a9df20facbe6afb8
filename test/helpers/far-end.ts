/**
 * A far end in the test's own process, for tests of how it talks to origins: a real pair of
 * TunnelSessions, performRequest on what the server side receives, and `send`, which opens a
 * stream as a near end would and collects what comes back (1xx heads, the answer, its body and
 * trailers, or the RESET). Plus ScriptedOrigin: a raw TCP origin whose every byte the test
 * writes, which counts its connections and reads requests off them.
 */
import net, { type AddressInfo } from 'node:net';
import { silentLogger } from '../../src/log.js';
import type { OutgoingContext } from '../../src/proxy/far/attempt.js';
import { OriginPools } from '../../src/proxy/far/origins.js';
import { performRequest } from '../../src/proxy/far/perform.js';
import type { ResponseHead } from '../../src/tunnel/frame.js';
import { StreamResetError } from '../../src/tunnel/stream.js';
import { pair as sessionPair, within, type Pair } from './session-pair.js';

export interface FarEnd {
  pair: Pair;
  ctx: OutgoingContext;
  close(): Promise<void>;
}

export async function startFarEnd(opts: { responseTimeoutMs?: number; connectTimeoutMs?: number } = {}): Promise<FarEnd> {
  const pair = await sessionPair(256 * 1024);
  const ctx: OutgoingContext = {
    nodeName: 'far', egress: undefined, responseTimeoutMs: opts.responseTimeoutMs ?? 5000, log: silentLogger,
    origins: new OriginPools(opts.connectTimeoutMs ?? 2000),
  };
  pair.server.on('stream', (s) => performRequest(s, 'near', ctx));
  return {
    pair, ctx,
    async close() {
      ctx.origins.close();
      await pair.close();
    },
  };
}

export interface Sent {
  informs: ResponseHead[];
  response: ResponseHead | undefined;
  body: Buffer;
  trailers: string[] | undefined;
  /** The RESET's code and message, when the stream failed. */
  reset: { code: string; message: string } | undefined;
}

export interface SendOptions {
  method?: string;
  headers?: string[];
  /** Body pieces, written in order (then END). */
  body?: (string | Buffer)[];
  /** Called with the stream once the answer's head arrives (to cancel, to stop reading). */
  onResponse?: (stream: import('../../src/tunnel/stream.js').TunnelStream) => void;
  /** End the request body after `body` (default true). */
  end?: boolean;
  /** Read the answer's body (default true). */
  read?: boolean;
  timeoutMs?: number;
}

/** Opens a request stream to `url` through the far end and collects how it ends. */
export function send(far: FarEnd, url: string, opts: SendOptions = {}): Promise<Sent> {
  const stream = far.pair.client.openStream({
    kind: 'http', method: opts.method ?? 'GET', url, headers: opts.headers ?? [], hops: 1, to: '', id: `t-${Math.random()}`,
  });
  const out: Sent = { informs: [], response: undefined, body: Buffer.alloc(0), trailers: undefined, reset: undefined };
  const chunks: Buffer[] = [];
  for (const piece of opts.body ?? []) stream.write(piece);
  if (opts.end !== false) stream.end();
  return within(new Promise<Sent>((resolve) => {
    stream.on('information', (h: ResponseHead) => out.informs.push(h));
    stream.once('response', (h: ResponseHead) => {
      out.response = h;
      opts.onResponse?.(stream);
      if (opts.read !== false) stream.on('data', (c: Buffer) => chunks.push(c));
    });
    stream.on('error', (err) => {
      if (err instanceof StreamResetError) out.reset = { code: err.info.code, message: err.info.message };
    });
    stream.once('close', () => {
      out.body = Buffer.concat(chunks);
      out.trailers = stream.trailers;
      resolve(out);
    });
  }), `the answer to ${opts.method ?? 'GET'} ${url}`, opts.timeoutMs ?? 10_000);
}

/** One request as ScriptedOrigin read it: head text and body bytes. */
export interface OriginRequest {
  head: string;
  body: Buffer;
  /** The connection's number (0 for the first the origin accepted). */
  connection: number;
  socket: net.Socket;
}

/**
 * A TCP origin the test scripts: `answer` gets each request (head and, by Content-Length or
 * chunked, its body) and writes whatever it likes to the socket. `onHead` (optional) sees a
 * request as soon as its head arrives, before any body (for origins that answer early).
 */
export class ScriptedOrigin {
  private server = net.createServer();
  connections = 0;
  readonly sockets: net.Socket[] = [];
  readonly requests: OriginRequest[] = [];
  answer: (req: OriginRequest) => void = (req) => req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  onHead: ((req: OriginRequest) => boolean) | undefined;

  async listen(): Promise<number> {
    this.server.on('connection', (socket) => this.serve(socket));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Sockets still open. */
  get open(): number {
    return this.sockets.filter((s) => !s.destroyed).length;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: net.Socket): void {
    const connection = this.connections++;
    this.sockets.push(socket);
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let pending: { head: string; need: number | 'chunked'; body: Buffer[] } | undefined;
    socket.on('data', (data: Buffer) => {
      buf = Buffer.concat([buf, data]);
      for (;;) {
        if (!pending) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1');
          buf = buf.subarray(end + 4);
          const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
          const need = /\r\ntransfer-encoding: *chunked/i.test(head) ? 'chunked' : cl ? Number(cl[1]) : 0;
          pending = { head, need, body: [] };
          if (this.onHead?.({ head, body: Buffer.alloc(0), connection, socket })) {
            pending = undefined;
            return;
          }
        }
        if (pending.need === 'chunked') {
          const line = buf.indexOf('\r\n');
          if (line < 0) return;
          const size = parseInt(buf.subarray(0, line).toString('latin1'), 16);
          if (buf.length < line + 2 + size + 2) return;
          if (size === 0) {
            buf = buf.subarray(line + 4);
            pending.need = 0;
          } else {
            pending.body.push(buf.subarray(line + 2, line + 2 + size));
            buf = buf.subarray(line + 2 + size + 2);
            continue;
          }
        } else if (pending.need > 0) {
          if (buf.length === 0) return;
          const take = buf.subarray(0, pending.need);
          pending.body.push(take);
          pending.need -= take.length;
          buf = buf.subarray(take.length);
          if (pending.need > 0) return;
        }
        const req: OriginRequest = { head: pending.head, body: Buffer.concat(pending.body), connection, socket };
        pending = undefined;
        this.requests.push(req);
        this.answer(req);
      }
    });
  }
}
