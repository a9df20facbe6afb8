/**
 * The egress allowlist (`west.egress`): which URLs each peer may make this node fetch. Without
 * one, a node fetches whatever a peer asks (the original's behaviour: an open relay). TCP
 * streams need a `tcp://host:port` entry, always: without `west.egress` there is none.
 */
import { parseEgressEntry } from '../../config/endpoint.js';
import { canonicalName } from '../../config/types.js';

interface Rule {
  origin?: string;
  host?: string;
  port?: string;
  /** Path prefix, matched at a segment boundary; '' = any path. */
  path: string;
  /** A `tcp://host:port` entry: TCP streams to that address only, never HTTP. */
  tcp?: true;
}

function defaultPort(protocol: string): string {
  return protocol === 'https:' ? '443' : '80';
}

/** What the rules read of a URL, read from it once per request rather than once per rule. */
interface Target {
  url: URL;
  origin: string | undefined;
  host: string | undefined;
  pathname: string;
}

function matches(rule: Rule, t: Target): boolean {
  const url = t.url;
  if (rule.origin !== undefined) {
    if ((t.origin ??= url.origin) !== rule.origin) return false;
  } else {
    const host = t.host ??= url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (host !== rule.host) return false;
    if (rule.port !== undefined && (url.port || defaultPort(url.protocol)) !== rule.port) return false;
  }
  return rule.path === '' || t.pathname === rule.path || t.pathname.startsWith(rule.path + '/');
}

export class EgressPolicy {
  private readonly rules = new Map<string, Rule[]>();
  private readonly canonicalNames = new Map<string, string>();

  /** `entries`: canonical peer name or "*" -> URL prefixes / hosts (validated by the schema). */
  constructor(entries: Map<string, string[]>) {
    for (const [peer, list] of entries) {
      this.rules.set(peer, list.map((e) => parseEgressEntry(e)).filter((r): r is Rule => r !== undefined));
    }
  }

  /** May `peer` make this node fetch `url`? Its own rules and the "*" rules both count. */
  allows(peer: string, url: URL): boolean {
    const t: Target = { url, origin: undefined, host: undefined, pathname: url.pathname };
    const own = this.rules.get(this.canonical(peer)) ?? [];
    const any = this.rules.get('*') ?? [];
    return own.some((r) => !r.tcp && matches(r, t)) || any.some((r) => !r.tcp && matches(r, t));
  }

  /**
   * May `peer` open a TCP stream to `host` (lowercase, no brackets) and `port`? Only a
   * `tcp://host:port` entry of its own or of "*" says yes, written exactly so.
   */
  allowsTcp(peer: string, host: string, port: number): boolean {
    const hit = (r: Rule): boolean => r.tcp === true && r.host === host && r.port === String(port);
    return (this.rules.get(this.canonical(peer)) ?? []).some(hit) || (this.rules.get('*') ?? []).some(hit);
  }

  /** canonicalName of a peer's name, remembered: the same few peers ask for every request. */
  private canonical(peer: string): string {
    let name = this.canonicalNames.get(peer);
    if (name === undefined) {
      if (this.canonicalNames.size >= 1024) this.canonicalNames.clear();
      this.canonicalNames.set(peer, name = canonicalName(peer));
    }
    return name;
  }
}
