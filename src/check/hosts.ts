/**
 * Host comparisons for a deployment: which bound address accepts which target address, and
 * which two bindings could collide. Only what a config says is known; no name is resolved.
 */
import { BlockList, isIP } from 'node:net';

/** Hosts a socket binds to listen on every interface. */
const WILDCARD = new Set(['', '0.0.0.0', '::']);

/** Lower case, no IPv6 brackets, `localhost` spelled as 127.0.0.1 (the same machine here). */
export function normalHost(host: string): string {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' ? '127.0.0.1' : h;
}

export function isWildcard(host: string): boolean {
  return WILDCARD.has(normalHost(host));
}

/** An address that only ever reaches the machine it is used on. */
export function isLoopback(host: string): boolean {
  const h = normalHost(host);
  return h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Addresses no Internet host can reach: RFC 1918, shared (CGNAT), link-local, IPv6 unique local and link-local. */
const PRIVATE = new BlockList();
for (const [net, bits] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['169.254.0.0', 16]] as const) PRIVATE.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [['fc00::', 7], ['fe80::', 10]] as const) PRIVATE.addSubnet(net, bits, 'ipv6');

/** An IP address of a private network (a management network); false for names, loopback and public addresses. */
export function isPrivate(host: string): boolean {
  const h = normalHost(host);
  const family = isIP(h);
  return family !== 0 && PRIVATE.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

/** Does a socket bound to `bound` take connections addressed to `target`? */
export function accepts(bound: string, target: string): boolean {
  if (isWildcard(bound)) return true;
  return normalHost(bound) === normalHost(target);
}

/** Would binding both hosts on the same port of one machine collide? */
export function overlaps(a: string, b: string): boolean {
  return isWildcard(a) || isWildcard(b) || normalHost(a) === normalHost(b);
}

/** `host:port` for messages, IPv6 in brackets and all interfaces as `*`. */
export function showEndpoint(host: string, port: number): string {
  if (host === '') return `*:${port}`;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
