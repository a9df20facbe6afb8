import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TUNING } from '../../src/config/types.js';
import fc from 'fast-check';
import {
  addForwardingHeaders, forwardRequestHeaders, hasRequestBody, headerValues, isTrustedProxy, outgoingHeaders, requestIdOf, scanRequestHead, setHeader, stripHopByHop,
  viaPseudonym, westVias, westViasOf, withoutHeader, type ForwardInfo,
} from '../../src/proxy/shared/passes.js';

// ---- stripHopByHop ----

const STRIP: { name: string; raw: string[]; keepChunked: boolean; want: string[] }[] = [
  {
    name: 'end-to-end headers pass in order with their case',
    raw: ['Host', 'a', 'Content-Type', 'text/plain', 'X-Dup', '1', 'x-dup', '2'],
    keepChunked: false,
    want: ['Host', 'a', 'Content-Type', 'text/plain', 'X-Dup', '1', 'x-dup', '2'],
  },
  {
    name: 'every standard hop-by-hop header is dropped',
    raw: [
      'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'keep-alive',
      'Proxy-Authenticate', 'Basic', 'Proxy-Authorization', 'Basic eDp5', 'TE', 'trailers',
      'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'HTTP2-Settings', 'AAMAAABkAAQAAP__',
      'Accept', '*/*',
    ],
    keepChunked: false,
    want: ['Accept', '*/*'],
  },
  // RFC 9110 §6.6.2: Trailer announces end-to-end fields; it travels with them.
  { name: 'Trailer is kept (it is end-to-end)', raw: ['Trailer', 'X-Checksum', 'Accept', '*/*'], keepChunked: false, want: ['Trailer', 'X-Checksum', 'Accept', '*/*'] },
  { name: 'names match case-insensitively', raw: ['CONNECTION', 'close', 'keep-ALIVE', 'x', 'Accept', '*/*'], keepChunked: false, want: ['Accept', '*/*'] },
  {
    name: 'headers named in Connection are dropped too',
    raw: ['Connection', 'close, X-Hop-One', 'X-Hop-One', '1', 'X-Keep', 'k'],
    keepChunked: false,
    want: ['X-Keep', 'k'],
  },
  {
    name: 'headers named across several Connection headers, any case, with spaces',
    raw: ['Connection', ' x-a ', 'connection', 'X-B,x-c', 'X-A', '1', 'x-b', '2', 'X-C', '3', 'X-D', '4'],
    keepChunked: false,
    want: ['X-D', '4'],
  },
  { name: 'chunked marker dropped unless asked', raw: ['Transfer-Encoding', 'chunked', 'Host', 'a'], keepChunked: false, want: ['Host', 'a'] },
  { name: 'chunked marker kept when asked', raw: ['Transfer-Encoding', 'chunked', 'Host', 'a'], keepChunked: true, want: ['Host', 'a', 'Transfer-Encoding', 'chunked'] },
  { name: 'chunked marker kept when chunked is the last coding', raw: ['transfer-encoding', 'gzip, chunked'], keepChunked: true, want: ['Transfer-Encoding', 'chunked'] },
  { name: 'chunked marker kept when it is upper-case', raw: ['Transfer-Encoding', 'CHUNKED'], keepChunked: true, want: ['Transfer-Encoding', 'chunked'] },
  { name: 'no chunked marker invented for a body without one', raw: ['Content-Length', '5'], keepChunked: true, want: ['Content-Length', '5'] },
  { name: 'no chunked marker when chunked is not the last coding', raw: ['Transfer-Encoding', 'chunked, gzip'], keepChunked: true, want: [] },
  { name: 'no headers', raw: [], keepChunked: true, want: [] },
];

for (const c of STRIP) {
  test(`stripHopByHop: ${c.name}`, () => {
    assert.deepEqual(stripHopByHop(c.raw, c.keepChunked), c.want);
  });
}

// ---- small header helpers ----

const RAW = ['Host', 'a', 'X-Dup', '1', 'Accept', '*/*', 'x-dup', '2'];

test('headerValues: all values of a header, case-insensitive, in order', () => {
  assert.deepEqual(headerValues(RAW, 'X-DUP'), ['1', '2']);
});

test('withoutHeader: removes every copy', () => {
  assert.deepEqual(withoutHeader(RAW, 'x-dup'), ['Host', 'a', 'Accept', '*/*']);
});

test('setHeader: replaces every copy with one at the end', () => {
  assert.deepEqual(setHeader(RAW, 'X-Dup', '3'), ['Host', 'a', 'Accept', '*/*', 'X-Dup', '3']);
});

// ---- addForwardingHeaders ----

const INFO: ForwardInfo = { clientAddress: '192.0.2.10', proto: 'http', host: 'front.example:9911', via: 'site-L:9911', requestId: 'rid-new', trusted: true };

const FORWARD: { name: string; raw: string[]; info?: Partial<ForwardInfo>; header: string; want: string[] }[] = [
  { name: 'Via added with the (west) comment', raw: [], header: 'via', want: ['1.1 site-L:9911 (west)'] },
  { name: 'Via appended to an existing one', raw: ['Via', '1.0 fred'], header: 'via', want: ['1.0 fred, 1.1 site-L:9911 (west)'] },
  { name: 'Via copies folded in order, then ours', raw: ['Via', '1.0 fred', 'via', '1.1 p.example (squid)'], header: 'via', want: ['1.0 fred, 1.1 p.example (squid), 1.1 site-L:9911 (west)'] },
  { name: 'X-Forwarded-For set to the client', raw: [], header: 'x-forwarded-for', want: ['192.0.2.10'] },
  { name: 'X-Forwarded-For appended', raw: ['X-Forwarded-For', '203.0.113.1'], header: 'x-forwarded-for', want: ['203.0.113.1, 192.0.2.10'] },
  { name: 'X-Forwarded-For copies folded, then ours', raw: ['X-Forwarded-For', '203.0.113.1', 'x-forwarded-for', '203.0.113.2'], header: 'x-forwarded-for', want: ['203.0.113.1, 203.0.113.2, 192.0.2.10'] },
  { name: 'X-Forwarded-For unmaps ::ffff: IPv4', raw: [], info: { clientAddress: '::ffff:127.0.0.1' }, header: 'x-forwarded-for', want: ['127.0.0.1'] },
  { name: 'X-Forwarded-For keeps plain IPv6', raw: [], info: { clientAddress: '::1' }, header: 'x-forwarded-for', want: ['::1'] },
  { name: 'X-Forwarded-Proto set when absent', raw: [], header: 'x-forwarded-proto', want: ['http'] },
  { name: 'X-Forwarded-Proto kept when present', raw: ['X-Forwarded-Proto', 'https'], header: 'x-forwarded-proto', want: ['https'] },
  { name: 'X-Forwarded-Proto https from a TLS listener', raw: [], info: { proto: 'https' }, header: 'x-forwarded-proto', want: ['https'] },
  { name: 'X-Forwarded-Host set from the client Host when absent', raw: [], header: 'x-forwarded-host', want: ['front.example:9911'] },
  { name: 'X-Forwarded-Host kept when present', raw: ['x-forwarded-host', 'first.example'], header: 'x-forwarded-host', want: ['first.example'] },
  { name: 'X-Forwarded-Host not invented without a Host', raw: [], info: { host: undefined }, header: 'x-forwarded-host', want: [] },
  { name: 'Forwarded added for this hop', raw: [], header: 'forwarded', want: ['for=192.0.2.10;proto=http;host="front.example:9911"'] },
  { name: 'Forwarded appended from a trusted proxy', raw: ['Forwarded', 'for=203.0.113.1'], header: 'forwarded', want: ['for=203.0.113.1, for=192.0.2.10;proto=http;host="front.example:9911"'] },
  { name: 'Forwarded: IPv6 bracketed and quoted', raw: [], info: { clientAddress: '2001:db8::1', proto: 'https', host: 'h' }, header: 'forwarded', want: ['for="[2001:db8::1]";proto=https;host=h'] },
  { name: 'Forwarded: ::ffff: IPv4 unmapped', raw: [], info: { clientAddress: '::ffff:10.0.0.1', host: undefined }, header: 'forwarded', want: ['for=10.0.0.1;proto=http'] },
  { name: 'Forwarded: quotes and backslashes in Host escaped', raw: [], info: { host: 'a"b\\c' }, header: 'forwarded', want: ['for=192.0.2.10;proto=http;host="a\\"b\\\\c"'] },
  { name: 'X-Real-IP kept from a trusted proxy', raw: ['X-Real-IP', '203.0.113.1'], header: 'x-real-ip', want: ['203.0.113.1'] },
  { name: 'X-Real-IP not invented for a trusted proxy', raw: [], header: 'x-real-ip', want: [] },
  // From a client this node does not trust, every forwarding header it sent is replaced.
  { name: 'untrusted: X-Forwarded-For replaced', raw: ['X-Forwarded-For', '6.6.6.6', 'x-forwarded-for', '7.7.7.7'], info: { trusted: false }, header: 'x-forwarded-for', want: ['192.0.2.10'] },
  { name: 'untrusted: X-Forwarded-Proto replaced', raw: ['X-Forwarded-Proto', 'https'], info: { trusted: false }, header: 'x-forwarded-proto', want: ['http'] },
  { name: 'untrusted: X-Forwarded-Host replaced', raw: ['X-Forwarded-Host', 'bank.example'], info: { trusted: false }, header: 'x-forwarded-host', want: ['front.example:9911'] },
  { name: 'untrusted: X-Forwarded-Host dropped without a Host', raw: ['X-Forwarded-Host', 'bank.example'], info: { trusted: false, host: undefined }, header: 'x-forwarded-host', want: [] },
  { name: 'untrusted: other X-Forwarded-* dropped', raw: ['X-Forwarded-Port', '443', 'X-FORWARDED-PREFIX', '/admin'], info: { trusted: false }, header: 'x-forwarded-port', want: [] },
  { name: 'untrusted: Forwarded replaced', raw: ['Forwarded', 'for=6.6.6.6;proto=https'], info: { trusted: false }, header: 'forwarded', want: ['for=192.0.2.10;proto=http;host="front.example:9911"'] },
  { name: 'untrusted: X-Real-IP replaced', raw: ['X-Real-IP', '6.6.6.6'], info: { trusted: false }, header: 'x-real-ip', want: ['192.0.2.10'] },
  { name: 'untrusted: Via still appended', raw: ['Via', '1.0 fred'], info: { trusted: false }, header: 'via', want: ['1.0 fred, 1.1 site-L:9911 (west)'] },
  { name: 'untrusted: the request id still kept', raw: ['X-Request-Id', 'rid-old'], info: { trusted: false }, header: 'x-request-id', want: ['rid-old'] },
  { name: 'request id added when absent', raw: [], header: 'x-request-id', want: ['rid-new'] },
  { name: 'request id kept when given', raw: ['X-Request-Id', 'rid-old'], header: 'x-request-id', want: ['rid-old'] },
  { name: 'other headers untouched', raw: ['Host', 'origin:80', 'Accept', '*/*'], header: 'accept', want: ['*/*'] },
];

for (const c of FORWARD) {
  test(`addForwardingHeaders: ${c.name}`, () => {
    assert.deepEqual(headerValues(addForwardingHeaders(c.raw, { ...INFO, ...c.info }), c.header), c.want);
  });
}

test('addForwardingHeaders: the input list is not modified', () => {
  const raw = ['Via', '1.0 fred', 'X-Forwarded-For', '203.0.113.1'];
  addForwardingHeaders(raw, INFO);
  assert.deepEqual(raw, ['Via', '1.0 fred', 'X-Forwarded-For', '203.0.113.1']);
});

test('addForwardingHeaders: a second hop adds itself after the first', () => {
  const first = addForwardingHeaders(['Host', 'a'], INFO);
  const second = addForwardingHeaders(first, { ...INFO, clientAddress: '10.0.0.2', via: 'site-G:9912', requestId: 'other' });
  assert.deepEqual(
    { via: headerValues(second, 'via'), xff: headerValues(second, 'x-forwarded-for'), id: headerValues(second, 'x-request-id') },
    { via: ['1.1 site-L:9911 (west), 1.1 site-G:9912 (west)'], xff: ['192.0.2.10, 10.0.0.2'], id: ['rid-new'] },
  );
});

// ---- westVias ----

const VIAS: { name: string; raw: string[]; want: string[] }[] = [
  { name: 'no Via', raw: ['Host', 'a'], want: [] },
  { name: 'only foreign proxies', raw: ['Via', '1.1 nginx, 1.0 fred (squid)'], want: [] },
  {
    name: 'a mixed list across headers, oldest first',
    raw: ['Via', '1.0 fred, 1.1 site-L:9911 (west)', 'via', '1.1 site-G:9912 (west) , 1.1 cdn (other)', 'VIA', 'HTTP/1.1 site-X:1 (west)'],
    want: ['site-L:9911', 'site-G:9912', 'site-X:1'],
  },
  { name: 'another comment is not west', raw: ['Via', '1.1 a:1 (westish), 1.1 b:2 (not west)'], want: [] },
  { name: 'extra spaces between parts', raw: ['Via', '1.1   a:1    (west)'], want: ['a:1'] },
  { name: 'no comment at all', raw: ['Via', '1.1 a:1'], want: [] },
];

for (const c of VIAS) {
  test(`westVias: ${c.name}`, () => {
    assert.deepEqual(westVias(c.raw), c.want);
  });
}

test('westVias reads what addForwardingHeaders writes', () => {
  const raw = addForwardingHeaders(addForwardingHeaders(['Via', '1.0 fred'], INFO), { ...INFO, via: 'site-G:9912' });
  assert.deepEqual(westVias(raw), ['site-L:9911', 'site-G:9912']);
});

// ---- viaPseudonym ----

const PSEUDONYMS: { name: string; node: string; port: number; want: string }[] = [
  { name: 'a bare name', node: 'site-L', port: 9911, want: 'site-L:9911' },
  { name: 'the ws:// prefix dropped, space and slash replaced', node: 'ws://a b/c', port: 9911, want: 'a_b_c:9911' },
  { name: 'the wss:// prefix dropped', node: 'WSS://relay.example', port: 443, want: 'relay.example:443' },
  { name: 'the original\'s URL-style name', node: 'ws://case2.L.fiap.org', port: 9911, want: 'case2.L.fiap.org:9911' },
  { name: 'a slash-mangled name from the original samples', node: 'ws//case1.G.flap.org', port: 1, want: 'ws__case1.G.flap.org:1' },
  { name: 'comment and separator characters replaced', node: 'a(b),c;d"e', port: 1, want: 'a_b__c_d_e:1' },
  { name: 'non-ASCII replaced', node: 'sité', port: 1, want: 'sit_:1' },
  { name: 'token punctuation kept', node: "a.b-c_d~e!f$g&h'i*j+k^l`m|n", port: 1, want: "a.b-c_d~e!f$g&h'i*j+k^l`m|n:1" },
  { name: 'an empty name', node: '', port: 8080, want: 'west:8080' },
  { name: 'only a scheme', node: 'ws://', port: 8080, want: 'west:8080' },
];

for (const c of PSEUDONYMS) {
  test(`viaPseudonym: ${c.name}`, () => {
    assert.equal(viaPseudonym(c.node, c.port), c.want);
  });
}

// ---- requestIdOf ----

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const IDS: { name: string; raw: string[]; kept: string | undefined }[] = [
  { name: 'a sane id is kept', raw: ['X-Request-Id', 'abc-123'], kept: 'abc-123' },
  { name: 'the header name is case-insensitive', raw: ['x-request-id', 'Q_1'], kept: 'Q_1' },
  { name: 'the first of several is kept', raw: ['X-Request-Id', 'one', 'X-Request-Id', 'two'], kept: 'one' },
  { name: '128 characters is kept', raw: ['X-Request-Id', 'a'.repeat(128)], kept: 'a'.repeat(128) },
  { name: 'visible punctuation is kept', raw: ['X-Request-Id', '!#$%&*+.^_`|~:/'], kept: '!#$%&*+.^_`|~:/' },
  { name: 'no header gets a new id', raw: ['Host', 'a'], kept: undefined },
  { name: 'an id with a space is replaced', raw: ['X-Request-Id', 'has space'], kept: undefined },
  { name: 'an id with a tab is replaced', raw: ['X-Request-Id', 'a\tb'], kept: undefined },
  { name: '129 characters is replaced', raw: ['X-Request-Id', 'a'.repeat(129)], kept: undefined },
  { name: 'an empty id is replaced', raw: ['X-Request-Id', ''], kept: undefined },
  { name: 'a non-ASCII id is replaced', raw: ['X-Request-Id', 'idé'], kept: undefined },
  { name: 'a control character is replaced', raw: ['X-Request-Id', 'a\x7fb'], kept: undefined },
];

for (const c of IDS) {
  test(`requestIdOf: ${c.name}`, () => {
    const id = requestIdOf(c.raw);
    if (c.kept !== undefined) assert.equal(id, c.kept);
    else assert.match(id, UUID);
  });
}

test('requestIdOf: two requests without ids get different ids', () => {
  assert.notEqual(requestIdOf([]), requestIdOf([]));
});

// ---- isTrustedProxy ----

const TRUST: { name: string; list: string[]; address: string; want: boolean }[] = [
  { name: 'the default trusts IPv4 loopback', list: DEFAULT_TUNING.trustedProxies, address: '127.0.0.1', want: true },
  { name: 'the default trusts all of 127/8', list: DEFAULT_TUNING.trustedProxies, address: '127.0.0.2', want: true },
  { name: 'the default trusts ::1', list: DEFAULT_TUNING.trustedProxies, address: '::1', want: true },
  { name: 'the default trusts ::ffff:127.0.0.1', list: DEFAULT_TUNING.trustedProxies, address: '::ffff:127.0.0.1', want: true },
  { name: 'the default does not trust other addresses', list: DEFAULT_TUNING.trustedProxies, address: '192.0.2.10', want: false },
  { name: 'an empty list trusts nobody', list: [], address: '127.0.0.1', want: false },
  { name: 'a CIDR', list: ['10.0.0.0/8'], address: '10.1.2.3', want: true },
  { name: 'outside the CIDR', list: ['10.0.0.0/8'], address: '11.0.0.1', want: false },
  { name: 'an IPv6 CIDR', list: ['2001:db8::/32'], address: '2001:db8::5', want: true },
  { name: 'an explicit list replaces the default', list: ['10.0.0.5'], address: '127.0.0.1', want: false },
  { name: 'no address', list: ['10.0.0.5'], address: '', want: false },
];

for (const c of TRUST) {
  test(`isTrustedProxy: ${c.name}`, () => {
    assert.equal(isTrustedProxy(c.list, c.address), c.want);
  });
}

// ---- the near end's one-pass versions agree with the passes they fuse ----

const NAMES = [
  'Host', 'host', 'Connection', 'connection', 'Keep-Alive', 'TE', 'Transfer-Encoding', 'transfer-encoding', 'Upgrade',
  'Content-Length', 'Via', 'via', 'X-Forwarded-For', 'x-forwarded-for', 'X-Forwarded-Proto', 'X-Forwarded-Host',
  'X-Forwarded-Port', 'Forwarded', 'X-Real-IP', 'X-Request-Id', 'x-request-id', 'Accept', 'X-Hop', 'x-hop', 'Cookie',
];
const VALUES = [
  '', 'a', 'close', 'close, X-Hop', 'x-request-id', 'via, x-forwarded-for', 'chunked', 'gzip, chunked', 'chunked, gzip',
  '5', '1.1 n:1 (west)', '1.0 proxy', '1.1 a:1 (west), 1.1 b:2 (west)', '10.0.0.1', 'for=1.2.3.4', 'abc-123', ' spaced ',
];
const headerList = fc.array(fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...VALUES)), { maxLength: 12 }).map((pairs) => pairs.flat());
const forwardInfo = fc.record({
  clientAddress: fc.constantFrom('127.0.0.1', '::ffff:10.0.0.2', '::FFFF:10.0.0.3', '::1', '2001:db8::1', ''),
  proto: fc.constantFrom<'http' | 'https'>('http', 'https'),
  host: fc.constantFrom(undefined, 'example.org', 'h:8080', 'a b'),
  via: fc.constantFrom('node:9911', 'x_y:1'),
  requestId: fc.constantFrom('id-1'),
  trusted: fc.boolean(),
});

test('forwardRequestHeaders gives what addForwardingHeaders(stripHopByHop(raw, true)) gives', () => {
  fc.assert(fc.property(headerList, forwardInfo, (raw, info) => {
    assert.deepEqual(forwardRequestHeaders(raw, info), addForwardingHeaders(stripHopByHop(raw, true), info));
  }), { numRuns: 2000 });
});

test('scanRequestHead finds what headerValues finds', () => {
  fc.assert(fc.property(headerList, (raw) => {
    const facts = scanRequestHead(raw);
    assert.deepEqual(facts.transferEncoding, headerValues(raw, 'transfer-encoding'));
    assert.equal(facts.contentLength, headerValues(raw, 'content-length')[0]);
    assert.deepEqual(facts.via, headerValues(raw, 'via'));
    assert.equal(facts.requestId, headerValues(raw, 'x-request-id')[0]);
    assert.deepEqual(westViasOf(facts.via), westVias(raw));
  }), { numRuns: 1000 });
});

test('outgoingHeaders gives setHeader(stripHopByHop(raw, true), Host), and the body and Expect as the far end reads them', () => {
  const far = fc.array(fc.tuple(fc.constantFrom(...NAMES, 'Expect', 'expect'), fc.constantFrom(...VALUES, '100-continue', ' 100-Continue ', '0')), { maxLength: 12 })
    .map((pairs) => pairs.flat());
  fc.assert(fc.property(far, (raw) => {
    const got = outgoingHeaders(raw, 'origin:8080');
    const want = setHeader(stripHopByHop(raw, true), 'Host', 'origin:8080');
    assert.deepEqual(got.headers, want);
    assert.equal(got.hasBody, hasRequestBody(want));
    assert.equal(got.expectsContinue, headerValues(want, 'expect').some((v) => v.trim().toLowerCase() === '100-continue'));
    assert.equal(got.framing, headerValues(want, 'transfer-encoding').length + headerValues(want, 'expect').length > 0);
  }), { numRuns: 2000 });
});
