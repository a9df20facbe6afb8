/**
 * Fuzzes the tunnel server's upgrade path over raw TCP (security issue): random upgrade
 * requests (subprotocol, X-West-Node, Authorization, Sec-WebSocket-Key variants), random
 * WebSocket frames after a successful upgrade, and clients that hang up or reset at any point.
 * The node under test tunnels to its own tunnel server (as the demo does) and guards it with
 * tokens: its own name has a token the fuzzer does not know, every other name the shared one.
 *
 * The oracle, for every case:
 *  - the node still runs;
 *  - once the client is gone, its session is gone too, and /state.json shows no more streams
 *    open than before the case;
 *  - a good client (the ws package, a valid name and token) is accepted;
 *  - the node's own tunnel still carries a good request to the origin;
 *  - the origin receives nothing but those good requests (west.egress lets no fuzz peer
 *    reach it, whatever its frames ask for).
 */
import { after, before, describe, test } from 'node:test';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import WebSocket from 'ws';
import { SUBPROTOCOL } from '../../src/tunnel/frame.js';
import { stateOf } from '../helpers/chain.js';
import {
  connectRaw, fuzzParameters, fuzzTimeout, MARKER, openStreams, RecordingOrigin, showBytes, streamsDrained, writeRaw,
} from '../helpers/fuzz.js';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';
import { bearerToken } from '../../src/auth.js';
import { canonicalName } from '../../src/config/types.js';
import { validNodeName } from '../../src/tunnel/handshake.js';
import { MirrorParser, type MirrorParse } from './mirror.js';
import { closeFrame, handshake, tunnelCase, type ServerContext, type TunnelCase } from './ws-upgrades.js';

const OWN_NAME = 'fuzz-ts';
const OWN_TOKEN = 'own-secret-the-fuzzer-never-sends';
const SHARED_TOKEN = 'shared-token';
/** Bounds: the server's answer to an upgrade request, its close after the client's end, cleanup. */
const ANSWER_MS = 5000;
const CLOSE_MS = 5000;
const DRAIN_MS = 2000;
/** The drain bound while a property runs under a known bug (see listener.fuzz.test.ts). */
const TODO_DRAIN_MS = 500;
let drainMs = DRAIN_MS;

let origin: RecordingOrigin;
let mirror: MirrorParser;
let node: WestProcess;
let configFile: string;
let cleanup: () => Promise<void>;
let serverPort: number;
let listenerPort: number;
let control: string;
let ctx: ServerContext;
let caseSeq = 0;

const tally = { cases: 0, answers: new Map<string, number>() };

before(async () => {
  origin = new RecordingOrigin();
  const o = `http://127.0.0.1:${await origin.listen()}`;
  // The tunnel server's HTTP server has Node's default options.
  mirror = new MirrorParser(16 * 1024);
  await mirror.listen();
  let dir: string;
  ({ dir, cleanup } = await tempDir('west-fuzz-tunnel-'));
  for (let attempt = 1; ; attempt++) {
    const [sp, lp, cp] = [await freePort(), await freePort(), await freePort()];
    const server = `ws://127.0.0.1:${sp}`;
    configFile = await writeConfig(dir, 'fuzz-ts.json', {
      west: { nm: OWN_NAME, cp: `127.0.0.1:${cp}`, drainTimeout: 1, egress: { [OWN_NAME]: [`${o}/o`] } },
      wsts: { sp: server, tokens: { [OWN_NAME]: OWN_TOKEN, '*': SHARED_TOKEN } },
      wstc: { [server]: { token: OWN_TOKEN } },
      proxy: { [`http://127.0.0.1:${lp}`]: { ea: server, '/f': { ou: `${o}/o` } } },
    });
    serverPort = sp;
    listenerPort = lp;
    control = `http://127.0.0.1:${cp}`;
    try {
      await startNode();
      break;
    } catch (err) {
      if (!(err instanceof Error && err.message.includes('EADDRINUSE')) || attempt >= 3) throw err;
    }
  }
  ctx = { authority: `127.0.0.1:${serverPort}`, sharedToken: SHARED_TOKEN, ownName: OWN_NAME, originUrl: `${o}/o` };
  await goodRequest('warm');
});

after(async () => {
  await stopAll();
  await mirror?.close();
  await origin?.close();
  await cleanup?.();
});

async function startNode(): Promise<void> {
  node = await WestProcess.start(configFile);
  await node.waitForEvent('tunnel.connected');
}

/** A node that a case killed is started again before the next case, so shrinking sees a live node. */
async function ensureNode(): Promise<void> {
  if (node.child.exitCode === null && node.child.signalCode === null) return;
  await node.stop();
  await startNode();
}

/** A good request through the node's own listener and tunnel. */
async function goodRequest(tag: string | number): Promise<void> {
  const r = await fetchText(`http://127.0.0.1:${listenerPort}/f/good`, { headers: { [MARKER]: `good.${tag}` }, timeoutMs: 10_000 });
  if (r.status !== 200) throw new Error(`a good request through the node's own tunnel answered ${r.status}: ${r.text.slice(0, 300)}`);
}

/** A good tunnel client (the ws package) must be accepted, then it leaves. */
async function goodClient(): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${serverPort}`, SUBPROTOCOL, {
    headers: { 'X-West-Node': 'good-client', Authorization: `Bearer ${SHARED_TOKEN}` },
    handshakeTimeout: ANSWER_MS,
  });
  try {
    await Promise.race([
      once(ws, 'open'),
      once(ws, 'unexpected-response').then(([, res]) => { throw new Error(`a good client was answered ${(res as { statusCode?: number }).statusCode}`); }),
    ]);
  } finally {
    ws.close();
    if (ws.readyState !== WebSocket.CLOSED) await once(ws, 'close');
  }
}

/** The other peers connected to the tunnel server (everything but the node's own tunnel). */
async function strangers(): Promise<string[]> {
  const state = await stateOf(control);
  return (state.server?.peers ?? []).filter((p) => p.name !== OWN_NAME).map((p) => `${p.name} (${p.streams} streams)`);
}

/** Would the tunnel server itself refuse this upgrade (src/tunnel/server.ts: subprotocol, name, token)? */
function refusedByServer(h: IncomingHttpHeaders): boolean {
  const protocols = (h['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const name = h['x-west-node'];
  if (!protocols.includes(SUBPROTOCOL) || !validNodeName(name)) return true;
  return bearerToken(h.authorization) !== (canonicalName(name) === OWN_NAME ? OWN_TOKEN : SHARED_TOKEN);
}

/** Where a case's client resets: after this many bytes (Infinity: it does not, or only after the answer). */
function cutOf(c: TunnelCase): number {
  return c.session.end.kind === 'reset' ? c.session.end.at % (c.handshake.raw.length + c.session.frames.length + 1) : Infinity;
}

/**
 * Known-bug class (tunnel server): an upgrade request the server refuses itself, sent whole,
 * then a reset (right after the request or after the answer).
 */
function refusedThenReset(c: TunnelCase, parse: MirrorParse): boolean {
  const head = parse.requests[0];
  const resets = c.session.end.kind === 'reset-after-answer' || (c.session.end.kind === 'reset' && cutOf(c) >= c.handshake.raw.length);
  return head !== undefined && head.upgrade && refusedByServer(head.headers) && resets;
}

/** Runs one case as a raw client, then checks the oracle. */
async function runCase(c: TunnelCase, admit: (c: TunnelCase, parse: MirrorParse) => boolean): Promise<void> {
  const { raw } = c.handshake;
  const s = c.session;
  const request = Buffer.from(raw, 'latin1');
  // What Node's parser makes of the request: a head it accepted gets an answer (or a close).
  const parse = await mirror.parse(s.eager ? raw + s.frames.toString('latin1') : raw);
  fc.pre(admit(c, parse));
  await ensureNode();
  const id = ++caseSeq;
  const what = (): string => `case ${id}: ${c[fc.toStringMethod]?.() ?? ''}`;
  const before = openStreams(await stateOf(control)).total;
  const from = origin.records.length;
  const answerDue = parse.requests.length > 0 || parse.error !== undefined;
  const conn = await connectRaw(serverPort);
  const cutAt = cutOf(c);
  /** Writes bytes, unless the client resets before them; true while it goes on. */
  let written = 0;
  const send = (bytes: Buffer): boolean => {
    const take = Math.max(0, Math.min(bytes.length, cutAt - written));
    if (take > 0) writeRaw(conn.socket, bytes.subarray(0, take).toString('latin1'));
    written += take;
    if (written >= cutAt) {
      conn.socket.resetAndDestroy();
      return false;
    }
    return true;
  };
  let answer = 'none';
  let unanswered = false;
  if (send(request) && (!s.eager || send(s.frames))) {
    if (answerDue) unanswered = !(await conn.until((text) => text.includes('\r\n\r\n'), ANSWER_MS)) && !conn.isClosed();
    answer = /^HTTP\/1\.[01] (\d{3})/.exec(conn.received())?.[1] ?? (conn.isClosed() ? 'closed' : 'none');
    if (s.end.kind === 'reset-after-answer') conn.socket.resetAndDestroy();
    else if (answer === '101' && !s.eager && send(s.frames) && s.end.kind === 'close-frame') send(closeFrame());
    if (!conn.socket.destroyed) conn.socket.end();
  }
  tally.cases++;
  tally.answers.set(answer, (tally.answers.get(answer) ?? 0) + 1);
  const closed = await conn.until(() => false, CLOSE_MS).then(() => conn.isClosed());
  conn.socket.destroy();
  await conn.closed;

  const exited = node.exited.then(() => 'exited' as const);
  const settled = await Promise.race([(async () => {
    const open = await streamsDrained(control, drainMs, before);
    if (open) return `streams still open ${drainMs} ms after the client went away: ${open}`;
    const left = await waitFor('fuzz peers to leave', async () => ((await strangers()).length === 0 ? true : undefined), drainMs).then(() => [], async () => strangers());
    if (left.length) return `sessions left ${drainMs} ms after the client went away: ${left.join(', ')}`;
    return undefined;
  })(), exited]);
  if (settled === 'exited') throw new Error(`${what()}\n  the node exited (${node.exitCode}):\n${node.stderr.slice(-3000)}`);
  if (settled) throw new Error(`${what()}\n  ${settled}`);
  if (unanswered) throw new Error(`${what()}\n  the server neither answered nor closed within ${ANSWER_MS} ms an upgrade request Node's parser read whole`);
  if (!closed) throw new Error(`${what()}\n  the server kept the connection open ${CLOSE_MS} ms after the client ended it (answer ${answer})`);
  const reached = origin.records.slice(from).filter((r) => !r.marker?.startsWith('good.'));
  if (reached.length) throw new Error(`${what()}\n  the origin received ${reached.map((r) => `${r.method} ${showBytes(r.url)} [${r.marker}]`).join(', ')} from a fuzz peer`);
  await goodClient().catch((err: unknown) => { throw new Error(`${what()}\n  ${(err as Error).message}`); });
  await goodRequest(id).catch((err: unknown) => { throw new Error(`${what()}\n  ${(err as Error).message}`); });
}

function fuzzTest(name: string, share: number, arb: () => fc.Arbitrary<TunnelCase>, admit: (c: TunnelCase, parse: MirrorParse) => boolean, todo?: string): void {
  const params = fuzzParameters<[TunnelCase]>(share, todo);
  test(name, { timeout: fuzzTimeout(params.numRuns!, 1500), ...(todo ? { todo } : {}) }, async (t) => {
    Object.assign(tally, { cases: 0, answers: new Map() });
    drainMs = todo ? TODO_DRAIN_MS : DRAIN_MS;
    try {
      await fc.assert(fc.asyncProperty(arb(), (c) => runCase(c, admit)), params);
      // A request that reached the origin after its case was checked counts too.
      const late = origin.records.filter((r) => !r.marker?.startsWith('good.'));
      if (late.length) throw new Error(`the origin received ${late.map((r) => `${r.method} ${showBytes(r.url)} [${r.marker}]`).join(', ')} from a fuzz peer`);
    } finally {
      const answers = [...tally.answers].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join(', ');
      t.diagnostic(`seed ${params.seed}, ${tally.cases} cases; upgrade answers ${answers}`);
    }
  });
}

describe('tunnel server fuzz (raw TCP upgrades and frames, one self-tunnelled node)', () => {
  fuzzTest('upgrade requests, frames after them, hang-ups: the node stays up, leaks nothing, accepts a good client', 1,
    () => tunnelCase(ctx, handshake(ctx)),
    (c, parse) => !refusedThenReset(c, parse));

  fuzzTest('found-bug class, an upgrade request the server refuses itself, then a reset: the same oracle', 0.1,
    () => tunnelCase(ctx, handshake(ctx), fc.constant({ kind: 'reset-after-answer' as const })),
    refusedThenReset);
});
