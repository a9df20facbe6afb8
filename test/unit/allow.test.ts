import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressAllowlist } from '../../src/net/allow.js';

const CASES: { name: string; list: string[]; address: string | undefined; allowed: boolean }[] = [
  { name: 'IPv4 address listed', list: ['127.0.0.1'], address: '127.0.0.1', allowed: true },
  { name: 'IPv4 address not listed', list: ['127.0.0.1'], address: '127.0.0.2', allowed: false },
  { name: 'one of several entries', list: ['10.0.0.1', '192.0.2.7'], address: '192.0.2.7', allowed: true },
  { name: 'IPv4 inside a CIDR', list: ['10.0.0.0/8'], address: '10.200.3.4', allowed: true },
  { name: 'IPv4 at the end of a CIDR', list: ['192.168.1.0/24'], address: '192.168.1.255', allowed: true },
  { name: 'IPv4 just outside a CIDR', list: ['192.168.1.0/24'], address: '192.168.2.0', allowed: false },
  { name: 'IPv4 /32', list: ['198.51.100.9/32'], address: '198.51.100.9', allowed: true },
  { name: 'IPv4 /0 allows every IPv4', list: ['0.0.0.0/0'], address: '203.0.113.1', allowed: true },
  { name: 'IPv6 address listed', list: ['::1'], address: '::1', allowed: true },
  { name: 'IPv6 address written differently', list: ['2001:db8:0:0:0:0:0:1'], address: '2001:db8::1', allowed: true },
  { name: 'IPv6 address not listed', list: ['::1'], address: '::2', allowed: false },
  { name: 'IPv6 inside a CIDR', list: ['2001:db8::/32'], address: '2001:db8:abcd::5', allowed: true },
  { name: 'IPv6 outside a CIDR', list: ['2001:db8::/32'], address: '2001:db9::5', allowed: false },
  { name: '::ffff:-mapped IPv4 listed', list: ['127.0.0.1'], address: '::ffff:127.0.0.1', allowed: true },
  { name: '::FFFF:-mapped IPv4 in a CIDR', list: ['10.0.0.0/8'], address: '::FFFF:10.1.2.3', allowed: true },
  { name: '::ffff:-mapped IPv4 not listed', list: ['127.0.0.1'], address: '::ffff:127.0.0.2', allowed: false },
  { name: 'IPv6 loopback is not IPv4 loopback', list: ['127.0.0.1'], address: '::1', allowed: false },
  { name: 'IPv4 client against an IPv6 list', list: ['::1'], address: '127.0.0.1', allowed: false },
  { name: 'empty list allows an address', list: [], address: '203.0.113.1', allowed: true },
  { name: 'empty list allows an unknown address', list: [], address: undefined, allowed: true },
  { name: 'undefined address denied by a non-empty list', list: ['127.0.0.1'], address: undefined, allowed: false },
  { name: 'empty-string address denied by a non-empty list', list: ['0.0.0.0/0'], address: '', allowed: false },
];

for (const c of CASES) {
  test(`AddressAllowlist: ${c.name} (${JSON.stringify(c.list)} ${c.address ?? 'undefined'})`, () => {
    assert.equal(new AddressAllowlist(c.list).allows(c.address), c.allowed);
  });
}

const EMPTY: { list: string[]; empty: boolean }[] = [
  { list: [], empty: true },
  { list: ['127.0.0.1'], empty: false },
];

for (const c of EMPTY) {
  test(`AddressAllowlist.empty is ${c.empty} for ${JSON.stringify(c.list)}`, () => {
    assert.equal(new AddressAllowlist(c.list).empty, c.empty);
  });
}
