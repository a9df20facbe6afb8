import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../helpers/at.js';
import fc from 'fast-check';
import { joinOutgoing, PathMap, rawPath, targetParts, unsafePath } from '../../src/proxy/shared/pathmap.js';
import type { MappingConfig } from '../../src/config/types.js';

function mappings(table: Record<string, string>): MappingConfig[] {
  return Object.entries(table).map(([path, ou]) => ({ path, outgoing: new URL(ou), allow: [] }));
}

const STANDARD = mappings({
  '/px': 'http://127.0.0.1:9921/x',
  '/px/deep': 'http://127.0.0.1:9922/d',
  '/q': 'http://127.0.0.1:9923/search?k=1',
  '/slash': 'http://127.0.0.1:9924/s/',
  '/root': 'http://127.0.0.1:9925',
});

const WITH_CATCH_ALL = mappings({
  '/': 'http://127.0.0.1:9930/base',
  '/px': 'http://127.0.0.1:9921/x',
});

interface Case {
  name: string;
  map: MappingConfig[];
  path: string;
  search?: string;
  /** The outgoing URL, or undefined for no match. */
  want: string | undefined;
}

const CASES: Case[] = [
  { name: 'exact match', map: STANDARD, path: '/px', want: 'http://127.0.0.1:9921/x' },
  { name: 'prefix match carries the remainder', map: STANDARD, path: '/px/a/b', want: 'http://127.0.0.1:9921/x/a/b' },
  { name: 'prefix match with a trailing slash', map: STANDARD, path: '/px/', want: 'http://127.0.0.1:9921/x/' },
  { name: 'never /pxy for /px', map: STANDARD, path: '/pxy', want: undefined },
  { name: 'never /pxy/a for /px', map: STANDARD, path: '/pxy/a', want: undefined },
  { name: 'never a shorter path', map: STANDARD, path: '/p', want: undefined },
  { name: 'unmapped path', map: STANDARD, path: '/other', want: undefined },
  { name: 'root without a catch-all', map: STANDARD, path: '/', want: undefined },
  { name: 'longest wins (exact)', map: STANDARD, path: '/px/deep', want: 'http://127.0.0.1:9922/d' },
  { name: 'longest wins (prefix)', map: STANDARD, path: '/px/deep/er', want: 'http://127.0.0.1:9922/d/er' },
  { name: 'longest wins only on a segment boundary', map: STANDARD, path: '/px/deeper', want: 'http://127.0.0.1:9921/x/deeper' },
  { name: 'longest wins whatever the declaration order', map: [...STANDARD].reverse(), path: '/px/deep/er', want: 'http://127.0.0.1:9922/d/er' },
  { name: '"/" catches everything else', map: WITH_CATCH_ALL, path: '/any/thing', want: 'http://127.0.0.1:9930/base/any/thing' },
  { name: '"/" exact', map: WITH_CATCH_ALL, path: '/', want: 'http://127.0.0.1:9930/base' },
  { name: '"/" catches /pxy too', map: WITH_CATCH_ALL, path: '/pxy', want: 'http://127.0.0.1:9930/base/pxy' },
  { name: 'a longer mapping beats "/"', map: WITH_CATCH_ALL, path: '/px/a', want: 'http://127.0.0.1:9921/x/a' },
  { name: 'ou with a trailing slash, exact', map: STANDARD, path: '/slash', want: 'http://127.0.0.1:9924/s/' },
  { name: 'ou with a trailing slash, prefix (no double slash)', map: STANDARD, path: '/slash/a', want: 'http://127.0.0.1:9924/s/a' },
  { name: 'ou without a path, exact', map: STANDARD, path: '/root', want: 'http://127.0.0.1:9925/' },
  { name: 'ou without a path, prefix', map: STANDARD, path: '/root/a', want: 'http://127.0.0.1:9925/a' },
  { name: 'query carried (exact)', map: STANDARD, path: '/px', search: '?a=1&b=2', want: 'http://127.0.0.1:9921/x?a=1&b=2' },
  { name: 'query carried (prefix)', map: STANDARD, path: '/px/a', search: '?a=1', want: 'http://127.0.0.1:9921/x/a?a=1' },
  { name: 'query given without "?"', map: STANDARD, path: '/px', search: 'a=1', want: 'http://127.0.0.1:9921/x?a=1' },
  { name: 'empty query "?" adds nothing', map: STANDARD, path: '/px', search: '?', want: 'http://127.0.0.1:9921/x' },
  { name: 'ou query kept', map: STANDARD, path: '/q', want: 'http://127.0.0.1:9923/search?k=1' },
  { name: 'ou query merged with the request query', map: STANDARD, path: '/q', search: '?w=2', want: 'http://127.0.0.1:9923/search?k=1&w=2' },
  { name: 'ou query merged on a prefix match', map: STANDARD, path: '/q/more', search: '?w=2', want: 'http://127.0.0.1:9923/search/more?k=1&w=2' },
  { name: 'percent-encoding kept in the remainder', map: STANDARD, path: '/px/a%20b%2Fc', want: 'http://127.0.0.1:9921/x/a%20b%2Fc' },
  { name: 'percent-encoded UTF-8 kept', map: STANDARD, path: '/px/%C3%BC', want: 'http://127.0.0.1:9921/x/%C3%BC' },
  { name: 'percent-encoding kept in the query', map: STANDARD, path: '/px', search: '?q=a%26b%3Dc', want: 'http://127.0.0.1:9921/x?q=a%26b%3Dc' },
  { name: 'path matching is case-sensitive', map: STANDARD, path: '/PX', want: undefined },
];

for (const c of CASES) {
  test(`PathMap.match: ${c.name} (${c.path}${c.search ?? ''})`, () => {
    assert.equal(new PathMap(c.map).match(c.path, c.search)?.outgoing.href, c.want);
  });
}

test('PathMap.match returns the mapping that matched', () => {
  assert.equal(new PathMap(STANDARD).match('/px/deep/x')?.mapping.path, '/px/deep');
});

test('PathMap.match does not change the mapping\'s outgoing URL', () => {
  const map = mappings({ '/px': 'http://127.0.0.1:9921/x?k=1' });
  new PathMap(map).match('/px/a/b', '?z=1');
  assert.equal(at(map, 0).outgoing.href, 'http://127.0.0.1:9921/x?k=1');
});

test('PathMap with no mappings matches nothing', () => {
  assert.equal(new PathMap([]).match('/'), undefined);
});

const JOINS: { name: string; base: string; remainder: string; search: string; exact: boolean; want: string }[] = [
  { name: 'exact keeps the base path', base: 'http://h/x', remainder: '', search: '', exact: true, want: 'http://h/x' },
  { name: 'prefix with empty remainder adds a slash', base: 'http://h/x', remainder: '', search: '', exact: false, want: 'http://h/x/' },
  { name: 'remainder appended', base: 'http://h/x', remainder: 'a/b', search: '', exact: false, want: 'http://h/x/a/b' },
  { name: 'queries merged', base: 'http://h/x?a=1', remainder: 'r', search: '?b=2', exact: false, want: 'http://h/x/r?a=1&b=2' },
];

for (const c of JOINS) {
  test(`joinOutgoing: ${c.name}`, () => {
    assert.equal(joinOutgoing(new URL(c.base), c.remainder, c.search, c.exact).href, c.want);
  });
}

// ---- unsafePath: refused at the listener and at the far end (doc/security.md, "Paths") ----

const UNSAFE: { target: string; why: RegExp | undefined }[] = [
  { target: '/px/a/b', why: undefined },
  { target: '/px/a%20b/%C3%BC', why: undefined },
  { target: '/px/..a/b..', why: undefined },
  { target: '/px/...', why: undefined },
  { target: '/px/.well-known/x', why: undefined },
  { target: '/px//a', why: undefined },
  { target: '/px/a;b=1', why: undefined },
  { target: '/px/%252f', why: undefined },
  { target: '/px/a?next=../..%2f%5c\\', why: undefined },
  { target: '/px/a#../b', why: undefined },
  { target: '*', why: undefined },
  { target: 'http://h:1/x/a', why: undefined },
  { target: '/px/..%2fsecret', why: /encoded slash/ },
  { target: '/px/a%2Fb', why: /encoded slash/ },
  { target: '/px/..%5csecret', why: /encoded backslash/ },
  { target: '/px/..\\secret', why: /^a backslash/ },
  { target: '/px/../secret', why: /dot segment/ },
  { target: '/px/./a', why: /dot segment/ },
  { target: '/px/a/..', why: /dot segment/ },
  { target: '/px/a/.', why: /dot segment/ },
  { target: '/px/%2e%2e/secret', why: /dot segment/ },
  { target: '/px/%2E%2E/secret', why: /dot segment/ },
  { target: '/px/.%2E/secret', why: /dot segment/ },
  { target: '/px/%2e/a', why: /dot segment/ },
  { target: '/px/..;jsessionid=1/secret', why: /dot segment/ },
  { target: '/px/..?q=1', why: /dot segment/ },
  { target: 'http://h:1/x/..%2fsecret', why: /encoded slash/ },
  { target: 'http://h:1/x/%2e%2e/secret', why: /dot segment/ },
  { target: 'http://h:1\\..\\secret', why: /backslash/ },
];

for (const c of UNSAFE) {
  test(`unsafePath: ${c.target} ${c.why ? 'refused' : 'forwarded'}`, () => {
    const why = unsafePath(c.target);
    if (c.why) assert.match(why ?? 'forwarded', c.why);
    else assert.equal(why, undefined);
  });
}

test('rawPath: the path as written, without scheme, authority, query or fragment', () => {
  assert.equal(rawPath('/a/%2e%2e/b?c=d#e'), '/a/%2e%2e/b');
  assert.equal(rawPath('http://h:1/a/../b?q'), '/a/../b');
  assert.equal(rawPath('https://h'), '');
});

test('targetParts gives the path and query URL parsing gives, plain targets or not', () => {
  const chars = ['/', '/', 'a', 'B', '0', '.', '..', '-', '_', '~', '%20', '%2e', '%', '?', '?', '#', '&', '=', "'", '"', ' ', '\\', '{', '|', ':', '@', ';', '!', '(', 'é', '//'];
  fc.assert(fc.property(fc.array(fc.constantFrom(...chars), { maxLength: 12 }), (parts) => {
    const target = '/' + parts.join('');
    let want: { pathname: string; search: string } | undefined;
    try {
      const url = new URL(target, 'http://placeholder');
      want = { pathname: url.pathname, search: url.search };
    } catch {
      want = undefined;
    }
    assert.deepEqual(targetParts(target), want, target);
  }), { numRuns: 5000 });
});
