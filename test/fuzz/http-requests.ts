/**
 * fast-check arbitraries of raw HTTP/1.x request bytes for the listener fuzz harness: request
 * lines with odd methods, targets (dot segments, %2e, %2f, backslashes, absolute-form) and
 * versions; headers with odd bytes, obs-fold and bare LF; every Content-Length /
 * Transfer-Encoding combination; Expect and Upgrade; bodies short, long and cut off; several
 * requests pipelined; then a few byte-level mutations. Each request carries an X-Fuzz-Case
 * marker line that mutations never touch, so the origin's records can be traced to it.
 */
import fc from 'fast-check';
import { showBytes } from '../helpers/fuzz.js';
import { mutate, SOME_MUTATIONS, type Mutation, type Part } from './mutate.js';

/** The listener's mappings, as the harness configures them (path -> what the origin sees). */
export const MAPPINGS = ['/f', '/f/deep', '/w', '/d', '/e'] as const;

export interface RequestContext {
  /** host:port of the listener, for Host headers and absolute-form targets. */
  authority: string;
  /** The listener's own Via entry, to provoke loop detection. */
  ownVia: string;
}

/** One request of a case, before serialisation. */
export interface RequestSpec {
  method: string;
  target: string;
  version: string;
  hosts: string[];
  headers: [string, string][];
  framing: Framing;
  body: string;
  /** Bytes of the encoded body actually sent (undefined: all). */
  bodyCut: number | undefined;
  eol: string;
  /** Index of a header to continue on an obs-fold line. */
  fold: number | undefined;
  expect: string | undefined;
  connection: string | undefined;
  upgrade: { protocol: string; connection: string } | undefined;
}

export type Framing =
  | { kind: 'none' }
  | { kind: 'cl'; values: string[] }
  | { kind: 'te'; values: string[]; chunks: ChunkStyle }
  | { kind: 'clte'; cl: string; te: string[]; chunks: ChunkStyle; teFirst: boolean };

export interface ChunkStyle {
  sizes: number[];
  upper: boolean;
  ext: string;
  trailer: string;
  /** Sends the terminating 0-size chunk. */
  last: boolean;
  /** Replaces the first chunk's size line. */
  badSize: string | undefined;
}

/** A whole fuzz case: the bytes the client sends and what they were made from. */
export interface RequestCase {
  /** The bytes, one char per byte (latin1). */
  raw: string;
  requests: RequestSpec[];
  mutations: Mutation[];
  /** How fast-check prints the case: its bytes. */
  [fc.toStringMethod]?: () => string;
}

// ---- pieces ----

/**
 * One dimension of a request: a clean request takes only `clean` values (still with every
 * valid oddity: dot segments, chunk extensions, 100-continue, ...); a wild one takes `odd`
 * values a quarter of the time.
 */
function pick<T>(wild: boolean, clean: fc.Arbitrary<T>, odd: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return wild ? fc.oneof({ weight: 3, arbitrary: clean }, { weight: 1, arbitrary: odd }) : clean;
}

const METHOD = {
  clean: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'),
  odd: fc.oneof(
    fc.constantFrom('TRACE', 'PROPFIND', 'CONNECT', 'get', 'Post', 'G ET', 'GET\t', '\x00GET', 'GÉT', 'M-SEARCH', 'PRI', ''),
    fc.string({ unit: fc.constantFrom('A', 'Z', '-', '_', '!', '~', '(', '\x7f', '\x80', ':'), minLength: 1, maxLength: 8 }),
  ),
};

/** Path prefixes: mapped ones, and ways to walk from one mapping into another or out of all. */
const PREFIX = {
  clean: fc.constantFrom('/f', '/f/', '/f/deep', '/f/deep/', '/f/x/..', '/x/../f', '/f/./a', '/f/%2e%2e/d', '/f/.%2e/e', '/f/deep/../../d', '/d', '/e', '/w', '/fx', '/nope', '/'),
  odd: fc.constantFrom(
    '', '/F', '/%66', '//f', '/x/..%2ff', '/f/..%2fd', '/f%2f..%2fd', '/f\\..\\d', '\\f', '/f/..;/d', '/f/%2e/x',
    '*', 'f', '/f?', '/f#x', '/f%00', '/f/%zz', '/f/\x7f', '/f/é', '/f/ /x', '/f/\t',
  ),
};
const SEGMENT = {
  clean: fc.constantFrom('a', 'echo', '..', '.', '%2e', '%2e%2e', '.%2e', '%2f', '..%2f', '%5c', ';x', '~', 'deep', 'd', '%C3%A9', '%00'),
  odd: fc.constantFrom('\\', '%', 'x y', '\t', 'é', '\x00', '#', '?'),
};
const QUERY = {
  clean: fc.constantFrom('', '', '', '?a=1', '?a=..%2f..&b', '?', '?q=/../d', '?x=%0d%0a'),
  odd: fc.constantFrom('#frag', '?a b', '?\x7f', '#\x00'),
};

function targetOf(ctx: RequestContext, wild: boolean): fc.Arbitrary<string> {
  const path = fc.tuple(pick(wild, PREFIX.clean, PREFIX.odd), fc.array(pick(wild, SEGMENT.clean, SEGMENT.odd), { maxLength: 3 }), pick(wild, QUERY.clean, QUERY.odd))
    .map(([p, segs, q]) => [p, ...segs].join('/').replace(/^\/\//, '/') + q);
  const absolute = pick(wild,
    fc.constantFrom(`http://${ctx.authority}`, 'http://evil.example', 'HTTP://127.0.0.1'),
    fc.constantFrom('https://evil.example:443', 'http://user:pw@127.0.0.1', 'ftp://x', 'http://', 'http://[::1'));
  return fc.oneof(
    { weight: 8, arbitrary: path },
    { weight: 2, arbitrary: fc.tuple(absolute, path).map(([origin, p]) => origin + (p.startsWith('/') ? p : `/${p}`)) },
  );
}

const VERSION = {
  clean: fc.oneof({ weight: 8, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constant('HTTP/1.0') }),
  odd: fc.constantFrom('HTTP/2.0', 'HTTP/1.2', 'http/1.1', 'HTTP/1.1 ', 'HTTP/0.9', 'HTTP/11', ''),
};

const HEADER_NAME = {
  clean: fc.constantFrom('X-A', 'Accept', 'Cookie', 'User-Agent', 'Content-Type', 'X-Forwarded-For', 'Forwarded', 'X-Request-Id', 'Via', 'Keep-Alive', 'TE', 'Trailer', 'Proxy-Connection', 'Proxy-Authorization', 'Max-Forwards', 'Range', 'X-Forwarded-Host'),
  odd: fc.string({ unit: fc.constantFrom('X', '-', 'a', ' ', '\t', ':', '\x00', '\x7f', '\x80', '(', '@', '"', 'é'), minLength: 1, maxLength: 6 }),
};
/** Bytes a header value may hold (obs-text, tabs, quotes) and may not (NUL, CR, DEL, controls). */
const HEADER_VALUE = {
  clean: fc.string({ unit: fc.constantFrom('a', 'b', '1', '-', '/', '=', ' ', '\t', '"', ',', ';', '\\', 'é', '\xff', '\x80'), maxLength: 12 }).map((v) => v.trim()),
  odd: fc.string({ unit: fc.constantFrom('a', '\x00', '\x01', '\x7f', '\r', '\x1b', '\n'), minLength: 1, maxLength: 6 }),
};

function hostsOf(ctx: RequestContext, wild: boolean): fc.Arbitrary<string[]> {
  return pick(wild,
    fc.oneof({ weight: 8, arbitrary: fc.constant<string[]>([ctx.authority]) }, { weight: 1, arbitrary: fc.constantFrom<string[]>(['evil.example'], ['[::1]:80']) }),
    fc.constantFrom<string[]>([], [ctx.authority, 'evil.example'], [''], ['a b'], ['127.0.0.1:99999'], ['x\x00y']));
}

/** Content-Length values: `=` is the encoded body's length, `=+n` / `=-n` off by n (a cut-off or a spilling body). */
const CL_VALUE = {
  clean: fc.oneof({ weight: 8, arbitrary: fc.constant('=') }, { weight: 1, arbitrary: fc.constantFrom('=+1', '=+100', '=-1', '0', '=,=', '=, =') }),
  odd: fc.constantFrom('-1', '+5', '0x5', ' 5', '5 ', '5,6', '05', '', '99999999999999999999', '1e1', '=, 0', '=\t'),
};
/** Transfer-Encoding values: those ending in `chunked` frame a body; the others must be refused. */
export const TE_CHUNKED = ['chunked', 'Chunked', 'CHUNKED', 'gzip, chunked', 'identity, chunked', 'chunked , chunked', ' chunked', 'chunked ', 'gzip,chunked'] as const;
export const TE_NOT_CHUNKED = ['xchunked', 'gzip', 'chunked, gzip', 'identity', 'chunkedx', 'chunked;q=1', '', 'deflate', 'gzip,', 'chunked, identity'] as const;

function chunksOf(wild: boolean): fc.Arbitrary<ChunkStyle> {
  return fc.record({
    sizes: fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 3 }),
    upper: fc.boolean(),
    ext: fc.oneof({ weight: 6, arbitrary: fc.constant('') }, { weight: 1, arbitrary: pick(wild, fc.constantFrom(';a=b', ';x', ';a="q"'), fc.constantFrom('; ', ';\x00', ';a=b c')) }),
    trailer: fc.oneof({ weight: 6, arbitrary: fc.constant('') }, { weight: 1, arbitrary: pick(wild, fc.constantFrom('X-T: 1\r\n', 'Content-Length: 5\r\n'), fc.constantFrom('bad\r\n', 'X-T: \x00\r\n')) }),
    last: wild ? fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }) : fc.constant(true),
    badSize: wild ? fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('zz', '-1', 'ffffffffffffffffff', '0x5', ' 5', '5 ', '') }) : fc.constant(undefined),
  });
}

function framingOf(te: fc.Arbitrary<string>, wild: boolean): fc.Arbitrary<Framing> {
  const cl = pick(wild, CL_VALUE.clean, CL_VALUE.odd);
  const teList = fc.array(te, { minLength: 1, maxLength: wild ? 2 : 1 });
  const framings: fc.WeightedArbitrary<Framing>[] = [
    { weight: 4, arbitrary: fc.constant<Framing>({ kind: 'none' }) },
    { weight: 5, arbitrary: fc.array(cl, { minLength: 1, maxLength: wild ? 2 : 1 }).map((values): Framing => ({ kind: 'cl', values })) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('te' as const), values: teList, chunks: chunksOf(wild) }) },
  ];
  if (wild) framings.push({ weight: 2, arbitrary: fc.record({ kind: fc.constant('clte' as const), cl, te: teList, chunks: chunksOf(wild), teFirst: fc.boolean() }) });
  return fc.oneof(...framings);
}

const BODY = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom('a', 'z', '0', '\r', '\n', '\x00', '\xff', ' '), maxLength: 64 }) },
  { weight: 2, arbitrary: fc.integer({ min: 65, max: 4000 }).map((n) => 'b'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom(70_000, 150_000).map((n) => 'L'.repeat(n)) },
  // A second request hidden in the body: smuggled if the listener and the origin frame it differently.
  { weight: 1, arbitrary: fc.constant('0\r\n\r\nGET /f/smuggled HTTP/1.1\r\nX-Fuzz-Case: #.s\r\nHost: x\r\n\r\n') },
);

const EOL = { clean: fc.constant('\r\n'), odd: fc.constantFrom('\n', '\r', '\r\r\n', '\n\r') };
const EXPECT = { clean: fc.constantFrom(undefined, undefined, undefined, '100-continue', '100-Continue'), odd: fc.constantFrom(' 100-continue ', 'foo', '', '100-continue, x') };
const CONNECTION = {
  clean: fc.constantFrom(undefined, undefined, undefined, 'keep-alive', 'close', 'keep-alive, X-A', 'Via', 'x-request-id, te'),
  odd: fc.constantFrom('Close', 'close, keep-alive', 'upgrade', 'x\x00', ''),
};

export interface SpecOptions {
  te?: fc.Arbitrary<string>;
  /** Upgrade requests (protocol and Connection value); none by default. */
  upgrade?: fc.Arbitrary<{ protocol: string; connection: string } | undefined>;
  target?: fc.Arbitrary<string>;
}

/** Two requests in three are clean, the third wild. */
const WILDNESS = fc.oneof({ weight: 2, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });

/** One request; a wild one takes odd values in about a quarter of its dimensions. */
export function requestSpec(ctx: RequestContext, opts: SpecOptions = {}, wildness: fc.Arbitrary<boolean> = WILDNESS): fc.Arbitrary<RequestSpec> {
  const te = opts.te ?? fc.constantFrom(...TE_CHUNKED);
  return wildness.chain((wild) => fc.record({
    method: pick(wild, METHOD.clean, METHOD.odd),
    target: opts.target ?? targetOf(ctx, wild),
    version: pick(wild, VERSION.clean, VERSION.odd),
    hosts: hostsOf(ctx, wild),
    headers: fc.array(fc.tuple(pick(wild, HEADER_NAME.clean, HEADER_NAME.odd), pick(wild, HEADER_VALUE.clean, HEADER_VALUE.odd)), { maxLength: 4 }).chain((hs) => fc.oneof(
      { weight: 8, arbitrary: fc.constant(hs) },
      { weight: 1, arbitrary: fc.constant<[string, string][]>([...hs, ['Via', `1.1 ${ctx.ownVia} (west)`]]) },
    )),
    framing: framingOf(te, wild),
    body: BODY,
    bodyCut: wild ? fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat() }) : fc.constant(undefined),
    eol: pick(wild, EOL.clean, EOL.odd),
    fold: wild ? fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat(4) }) : fc.constant(undefined),
    expect: pick(wild, EXPECT.clean, EXPECT.odd),
    connection: pick(wild, CONNECTION.clean, CONNECTION.odd),
    upgrade: opts.upgrade ?? fc.constant(undefined),
  }));
}

export interface CaseOptions extends SpecOptions {
  /** Most requests in one case (pipelined on one connection). */
  maxRequests?: number;
  /** Byte-level mutations (default on). */
  mutate?: boolean;
  /** Mutations never touch request lines (the upgrade harness classifies cases by target). */
  fixedRequestLine?: boolean;
}

/** A case: one to `maxRequests` requests back to back, serialised, then mutated. */
export function requestCase(ctx: RequestContext, opts: CaseOptions = {}): fc.Arbitrary<RequestCase> {
  const mutations = opts.mutate === false ? fc.constant<Mutation[]>([]) : SOME_MUTATIONS;
  const one = requestSpec(ctx, opts).map((r) => [r]);
  const requests = (opts.maxRequests ?? 3) < 2 ? one : fc.oneof(
    { weight: 4, arbitrary: one },
    { weight: 1, arbitrary: fc.array(requestSpec(ctx, opts), { minLength: 2, maxLength: opts.maxRequests ?? 3 }) },
  );
  return fc.tuple(requests, mutations).map(([reqs, muts]) => serialiseCase(reqs, muts, opts.fixedRequestLine ?? false));
}

/** Serialises requests back to back (markers `#.0`, `#.1`, ...) and applies the mutations. */
export function serialiseCase(requests: RequestSpec[], mutations: Mutation[] = [], fixedRequestLine = false): RequestCase {
  const parts = requests.flatMap((r, i) => serialise(r, `#.${i}`, fixedRequestLine));
  const raw = mutate(parts, mutations);
  // fast-check prints a counterexample with this: the bytes, not the specs they came from.
  return { raw, requests, mutations, [fc.toStringMethod]: () => `bytes ${showBytes(raw)}` };
}

/** Replaces the `#` placeholder of every marker with the case's number. */
export function withCaseId(raw: string, id: number): string {
  return raw.replace(/(\r?\nX-Fuzz-Case: )#\./g, `$1${id}.`);
}

// ---- serialisation ----

function encodeChunked(body: string, c: ChunkStyle): string {
  let out = '';
  let at = 0;
  let i = 0;
  while (at < body.length) {
    const size = Math.min(c.sizes[i % c.sizes.length] ?? 1, body.length - at);
    let hex = size.toString(16);
    if (c.upper) hex = hex.toUpperCase();
    const line = i === 0 && c.badSize !== undefined ? c.badSize : hex + c.ext;
    out += `${line}\r\n${body.slice(at, at + size)}\r\n`;
    at += size;
    i++;
  }
  if (c.last) out += `0\r\n${c.trailer}\r\n`;
  return out;
}

function clValue(v: string, bodyLength: number): string {
  return v.replace(/=([+-]\d+)?/g, (_m, d: string | undefined) => String(Math.max(0, bodyLength + Number(d ?? 0))));
}

/** A request as bytes: request line, marker, headers, framing, body. */
function serialise(r: RequestSpec, marker: string, fixedRequestLine: boolean): Part[] {
  const eol = r.eol;
  const chunked = r.framing.kind === 'te' || r.framing.kind === 'clte';
  let body = chunked ? encodeChunked(r.body, (r.framing as { chunks: ChunkStyle }).chunks) : r.body;
  const headers: [string, string][] = [];
  for (const h of r.hosts) headers.push(['Host', h]);
  headers.push(...r.headers);
  if (r.expect !== undefined) headers.push(['Expect', r.expect]);
  if (r.upgrade) headers.push(['Connection', r.upgrade.connection], ['Upgrade', r.upgrade.protocol]);
  if (r.connection !== undefined) headers.push(['Connection', r.connection]);
  const f = r.framing;
  if (f.kind === 'cl') for (const v of f.values) headers.push(['Content-Length', clValue(v, body.length)]);
  if (f.kind === 'te') for (const v of f.values) headers.push(['Transfer-Encoding', v]);
  if (f.kind === 'clte') {
    const cl: [string, string] = ['Content-Length', clValue(f.cl, body.length)];
    const te = f.te.map((v): [string, string] => ['Transfer-Encoding', v]);
    headers.push(...(f.teFirst ? [...te, cl] : [cl, ...te]));
  }
  if (r.bodyCut !== undefined) body = body.slice(0, r.bodyCut % (body.length + 1));
  const lines = headers.map(([n, v], i) => (r.fold === i ? `${n}: ${v.slice(0, 1)}${eol} ${v.slice(1) || 'folded'}` : `${n}: ${v}`));
  return [
    { text: `${r.method} ${r.target} ${r.version}`, fixed: fixedRequestLine },
    // The marker line, CRLF and all, is never mutated: an origin record always names its case.
    { text: `\r\nX-Fuzz-Case: ${marker}\r\n`, fixed: true },
    { text: lines.map((l) => l + eol).join('') + eol + body, fixed: false },
  ];
}

// ---- input classes ----

/**
 * Known-bug class: a Transfer-Encoding header line whose last coding is not `chunked`
 * (xchunked, gzip alone, chunked then gzip, ...). Read off the bytes, conservatively: any
 * such line anywhere counts.
 */
export function hasTransferEncodingNotChunked(raw: string): boolean {
  for (const [, value = ''] of raw.matchAll(/(?:^|\n)transfer-encoding[ \t]*:([^\r\n]*)/gi)) {
    if ((value.split(',').at(-1) ?? '').trim().toLowerCase() !== 'chunked') return true;
  }
  return false;
}

/** The mapping a request target routes to, as the listener matches it (WHATWG URL, longest prefix). */
export function routeOf(target: string): string | undefined {
  let path: string;
  try {
    path = new URL(target, 'http://placeholder').pathname;
  } catch {
    return undefined;
  }
  return [...MAPPINGS].sort((a, b) => b.length - a.length).find((p) => path === p || path.startsWith(`${p}/`));
}
