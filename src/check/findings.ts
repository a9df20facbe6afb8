/** What the topology check reports: a problem (or warning) at a file and JSON path. */
import { normaliseMappingPath } from '../config/checks.js';
import { formatPath } from '../config/messages.js';
import type { ListenerConfig, MappingConfig, NodeConfig } from '../config/types.js';

/** Errors make `west check` exit 1; warnings are printed and do not change the exit status. */
export type Severity = 'error' | 'warning';

export type TopologyRule =
  | 'unknown name'
  | 'missing server'
  | 'loop'
  | 'port clash'
  | 'open relay'
  | 'duplicate name'
  | 'name claimed twice'
  | 'dials late'
  | 'no mapping'
  | 'hop limit'
  | 'ambiguous server'
  | 'readable secret'
  | 'open control port'
  | 'no ca'
  | 'tcp egress';

export interface TopologyFinding {
  rule: TopologyRule;
  severity: Severity;
  file: string;
  /** JSON path inside the file, e.g. `proxy["http://127.0.0.1:9911"].en`. */
  path: string;
  message: string;
}

/** `error: G.json: proxy["http://:9911"].en: unknown name: ...` */
export function formatFinding(f: TopologyFinding): string {
  return `${f.severity}: ${f.file}: ${f.path}: ${f.rule}: ${f.message}`;
}

/** Errors first, then warnings; each in the order found. */
export function bySeverity(findings: readonly TopologyFinding[]): TopologyFinding[] {
  return [...findings.filter((f) => f.severity === 'error'), ...findings.filter((f) => f.severity === 'warning')];
}

/** JSON path of a listener, or of one key inside it. */
export function listenerPath(listener: ListenerConfig, key?: string): string {
  return formatPath(key === undefined ? ['proxy', listener.key] : ['proxy', listener.key, key]);
}

/** JSON path of a mapping's `ou`, with the mapping key as written (trailing "/" and all). */
export function mappingPath(config: NodeConfig, listener: ListenerConfig, mapping: MappingConfig): string {
  const written = Object.keys(config.raw.proxy?.[listener.key] ?? {})
    .find((k) => k.startsWith('/') && normaliseMappingPath(k) === mapping.path) ?? mapping.path;
  return formatPath(['proxy', listener.key, written, 'ou']);
}
