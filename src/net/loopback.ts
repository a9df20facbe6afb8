/**
 * Which host names mean this machine, in one place: the middle-node shortcut (a far end whose
 * URL is its own listener) and the address such a request is said to come from.
 */

/** Host names (URL.hostname spelling) that always mean this machine. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** True when `hostname` (URL.hostname spelling) names this machine over loopback. */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname);
}

/** The host a loopback URL's hostname names, as a socket address (`[::1]` -> `::1`). */
export function loopbackAddress(hostname: string): string {
  return hostname === '[::1]' ? '::1' : hostname === 'localhost' ? '127.0.0.1' : hostname;
}

/**
 * Whether a listener bound to `bound` ('' or a wildcard: every interface) accepts a
 * connection to loopback host `hostname` (URL.hostname spelling).
 */
export function boundAcceptsLoopback(bound: string, hostname: string): boolean {
  if (bound === '' || bound === '0.0.0.0' || bound === '::') return true;
  const host = loopbackAddress(hostname);
  if (hostname === 'localhost') return bound === '127.0.0.1' || bound === '::1';
  return bound === host;
}
