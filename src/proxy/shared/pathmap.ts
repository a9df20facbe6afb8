/**
 * Path matching for one listener: exact or segment-prefix (`/px` matches `/px` and `/px/a`,
 * never `/pxy`); the longest mapping wins; the unmatched remainder and the query are carried
 * to the outgoing URL.
 */
import type { MappingConfig } from '../../config/types.js';

export interface PathMatch {
  mapping: MappingConfig;
  /** The URL the far end performs. */
  outgoing: URL;
}

export class PathMap {
  private readonly mappings: MappingConfig[];

  constructor(mappings: MappingConfig[]) {
    this.mappings = [...mappings].sort((a, b) => b.path.length - a.path.length);
  }

  /** Matches a request path (already normalised, without query) and builds the outgoing URL. */
  match(path: string, search = ''): PathMatch | undefined {
    for (const mapping of this.mappings) {
      const p = mapping.path;
      const hit = p === '/' || path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 47 /* / */);
      if (!hit) continue;
      const remainder = p === '/' ? path.slice(1) : path.slice(p.length + 1);
      return new Match(mapping, remainder, search, path === p);
    }
    return undefined;
  }
}

/**
 * A match whose outgoing URL is built only when asked for (west check, tests): the node sends
 * rawOutgoing() instead, and a URL per request is work for nothing. (A class: an object
 * literal with a getter costs a closure and a slow object per request.)
 */
class Match implements PathMatch {
  constructor(readonly mapping: MappingConfig, private readonly remainder: string, private readonly search: string, private readonly exact: boolean) {}

  get outgoing(): URL {
    return joinOutgoing(this.mapping.outgoing, this.remainder, this.search, this.exact);
  }
}

/**
 * Characters a path keeps as they are through WHATWG URL parsing (no percent-encoding added,
 * no backslash turned into a slash), and the query characters of a plain target (URL encodes
 * `'` in an http query, not in a path). `%` stays:
 * URL leaves escapes as written, and unsafePath() refuses the ones that matter.
 */
const PLAIN_TARGET = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*(?:\?[!$&()*+,\-./0-9:;=?@A-Z_a-z~%]*)?$/;

/** `.` or `..`, also written `%2e`, which URL parsing resolves. */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e)(?:\.|%2e)?(?:\/|$)/i;

/**
 * The path and query of a request target as `new URL(target, base)` would give them, without
 * parsing a URL when the target is plain (origin-form, nothing URL would re-encode) and has
 * no dot segment: then both are the target's own. Undefined when the target does not parse.
 */
export function targetParts(target: string): { pathname: string; search: string } | undefined {
  if (PLAIN_TARGET.test(target) && !DOT_SEGMENT.test(target.split('?', 1)[0] ?? '')) {
    const q = target.indexOf('?');
    if (q < 0) return { pathname: target, search: '' };
    return { pathname: target.slice(0, q), search: q === target.length - 1 ? '' : target.slice(q) };
  }
  try {
    const url = new URL(target, 'http://placeholder');
    return { pathname: url.pathname, search: url.search };
  } catch {
    return undefined;
  }
}

/**
 * Appends the unmatched remainder to the outgoing path and merges the queries. An exact match
 * leaves the outgoing path as written; a prefix match adds `/remainder`.
 */
export function joinOutgoing(base: URL, remainder: string, search: string, exact: boolean): URL {
  const url = new URL(base.href);
  if (!exact || remainder) {
    const basePath = url.pathname.endsWith('/') ? url.pathname : url.pathname + '/';
    url.pathname = basePath + remainder;
  }
  const extra = search.startsWith('?') ? search.slice(1) : search;
  if (extra) url.search = url.search ? `${url.search.slice(1)}&${extra}` : extra;
  return url;
}

/**
 * The outgoing URL as the far end is to send it, from the request target *as the client sent
 * it*: the mapping's URL as configured, then the unmatched remainder and the query byte for
 * byte (no percent-encoding added, an empty `?` kept), where `joinOutgoing` would re-serialise
 * them. Undefined when the raw path does not route to `mapping` as the normalised one did:
 * such a target is refused rather than guessed at.
 */
export function rawOutgoing(mapping: MappingConfig, target: string): string | undefined {
  const path = rawPath(target);
  const p = mapping.path;
  const exact = path === p;
  if (!(p === '/' || exact || (path.startsWith(p) && path.charCodeAt(p.length) === 47))) return undefined;
  const remainder = p === '/' ? path.slice(1) : path.slice(p.length + 1);
  const base = mapping.outgoing;
  let out = base.pathname;
  if (!exact || remainder) out = (out.endsWith('/') ? out : out + '/') + remainder;
  const q = target.indexOf('?');
  const query = q < 0 ? undefined : target.slice(q + 1).replace(/#.*$/, '');
  if (base.search) out += query ? `${base.search}&${query}` : base.search;
  else if (query !== undefined) out += `?${query}`;
  return base.origin + out;
}

/**
 * The path part of a request target or an absolute URL, as written: no scheme, authority,
 * query or fragment, nothing decoded or normalised.
 */
export function rawPath(target: string): string {
  const end = target.search(/[?#]/);
  const before = end < 0 ? target : target.slice(0, end);
  // A request target is usually origin-form (starts with /): no scheme to strip.
  return before.charCodeAt(0) === 47 ? before : before.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/\\]*/, '');
}

/**
 * Why a path must not be forwarded, or undefined: a dot segment (`.`, `..`, also written
 * `%2e`, or `..;params` as Tomcat reads it), an encoded slash (`%2F`) or a backslash (`\`,
 * `%5C`). Origins differ in how they decode and resolve these, so a path that matches a
 * mapping or an egress prefix here could name something outside it there
 * (`/x/..%2fsecret` starts with `/x/`; python's http.server serves `/secret`).
 * See doc/security.md, "Paths".
 */
export function unsafePath(target: string): string | undefined {
  const path = rawPath(target);
  // Every request passes here twice (listener, far end): most paths hold none of the
  // characters these rules are about, and need no closer look.
  if (!/[\\.%]/.test(path)) return undefined;
  if (path.includes('\\')) return 'a backslash';
  if (/%5c/i.test(path)) return 'an encoded backslash (%5C)';
  if (/%2f/i.test(path)) return 'an encoded slash (%2F)';
  if (!/(?:^|\/)(?:\.|%2e)/i.test(path)) return undefined;
  for (const segment of path.split('/')) {
    const name = (segment.split(';')[0] ?? '').replace(/%2e/gi, '.');
    if (name === '.' || name === '..') return `a dot segment (${JSON.stringify(segment)})`;
  }
  return undefined;
}
