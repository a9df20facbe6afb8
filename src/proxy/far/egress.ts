/**
 * The egress allowlist (`west.egress`): which URLs each peer may make this node fetch. Without
 * one, a node fetches whatever a peer asks (the original's behaviour: an open relay).
 */
import { parseEgressEntry } from '../../config/endpoint.js';
import { canonicalName } from '../../config/types.js';

interface Rule {
  origin?: string;
  host?: string;
  port?: string;
  /** Path prefix, matched at a segment boundary; '' = any path. */
  path: string;
}

function defaultPort(protocol: string): string {
  return protocol === 'https:' ? '443' : '80';
}

function matches(rule: Rule, url: URL): boolean {
  if (rule.origin !== undefined) {
    if (url.origin !== rule.origin) return false;
  } else {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (host !== rule.host) return false;
    if (rule.port !== undefined && (url.port || defaultPort(url.protocol)) !== rule.port) return false;
  }
  return rule.path === '' || url.pathname === rule.path || url.pathname.startsWith(rule.path + '/');
}

export class EgressPolicy {
  private readonly rules = new Map<string, Rule[]>();

  /** `entries`: canonical peer name or "*" -> URL prefixes / hosts (validated by the schema). */
  constructor(entries: Map<string, string[]>) {
    for (const [peer, list] of entries) {
      this.rules.set(peer, list.map((e) => parseEgressEntry(e)).filter((r): r is Rule => r !== undefined));
    }
  }

  /** May `peer` make this node fetch `url`? Its own rules and the "*" rules both count. */
  allows(peer: string, url: URL): boolean {
    const own = this.rules.get(canonicalName(peer)) ?? [];
    const any = this.rules.get('*') ?? [];
    return own.some((r) => matches(r, url)) || any.some((r) => matches(r, url));
  }
}
