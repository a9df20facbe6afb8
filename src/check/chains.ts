/**
 * Follows every mapping through the deployment: the node that performs its `ou`, and when that
 * `ou` is another listener, on through that listener's mappings, until an origin. Reports the
 * chains, and the loops, dead ends (404) and hop-limit overruns found on the way.
 */
import { normaliseMappingPath } from '../config/checks.js';
import type { ListenerConfig, MappingConfig } from '../config/types.js';
import type { Chain, ChainEnd, Step } from './chain-types.js';
import { PathMap } from '../proxy/shared/pathmap.js';
import type { Deployment, TopoNode } from './deployment.js';
import { mappingPath, type TopologyFinding } from './findings.js';
import { listenerLabel, renderChain, stepLabel } from './tree.js';

export type { Chain, ChainEnd, Step } from './chain-types.js';

/** Far more than any real deployment; stops a pathological fan-out from running away. */
const MAX_STEPS = 2000;

const listenerId = (node: TopoNode, l: ListenerConfig): string => `${node.index}\u0000${l.key}`;
const stepId = (s: { node: TopoNode; listener: ListenerConfig; mapping: MappingConfig }): string =>
  `${listenerId(s.node, s.listener)}\u0000${s.mapping.path}`;

/** `/a` is under `/` and `/a/b` is under `/a`; `/ab` is not under `/a`. */
function isUnder(mappingPath: string, path: string): boolean {
  const base = path.replace(/\/+$/, '');
  return mappingPath !== base && (base === '' || mappingPath.startsWith(base + '/'));
}

/** The mappings of `listener` that requests for `path` (plus any remainder) can reach. */
function reachable(listener: ListenerConfig, path: string): MappingConfig[] {
  const best = new PathMap(listener.mappings).match(path)?.mapping;
  const below = listener.mappings.filter((m) => m !== best && isUnder(m.path, path)).sort((a, b) => a.path.localeCompare(b.path));
  return best ? [best, ...below] : below;
}

/** A listener's mappings as the file lists them (the resolved config sorts them longest first). */
function inWrittenOrder(node: TopoNode, listener: ListenerConfig): MappingConfig[] {
  const keys = Object.keys(node.config.raw.proxy?.[listener.key] ?? {}).map(normaliseMappingPath);
  const rank = (m: MappingConfig): number => keys.indexOf(m.path);
  return [...listener.mappings].sort((a, b) => rank(a) - rank(b));
}

export interface ChainWalk {
  chains: Chain[];
  findings: TopologyFinding[];
}

/** Walks every chain, starting from mappings no other mapping leads to. */
export function walkChains(d: Deployment): ChainWalk {
  const chains: Chain[] = [];
  const findings: TopologyFinding[] = [];
  const reported = new Set<string>();
  const report = (key: string, finding: TopologyFinding): void => {
    if (reported.has(key)) return;
    reported.add(key);
    findings.push(finding);
  };
  const visited = new Set<string>();
  let budget = MAX_STEPS;

  const walk = (trail: Step[], node: TopoNode, listener: ListenerConfig, mapping: MappingConfig): void => {
    const who = d.performerOf(node, listener);
    const step: Step = { node, listener, mapping, performer: who.node, ...(who.via?.length ? { via: who.via } : {}) };
    const steps = [...trail, step];
    visited.add(stepId(step));
    if (budget-- <= 0) {
      // One marker, then nothing more: the operator sees that the list stops here.
      if (budget === -1) chains.push({ steps, end: { kind: 'truncated' } });
      return;
    }
    const hops = steps.length - 1; // west listeners this request passed before this one
    if (hops >= node.config.tuning.maxHops) {
      const root = trail[0] ?? step;
      report(`hop\u0000${stepId(root)}`, {
        rule: 'hop limit', severity: 'error', file: root.node.file, path: mappingPath(root.node.config, root.listener, root.mapping),
        message: `a request to ${stepLabel(root)} reaches ${listenerLabel(node, listener)} after ${hops} west listener${hops === 1 ? '' : 's'}, ` +
          `but that node allows at most ${node.config.tuning.maxHops} (west.maxHops); it would be refused with 508`,
      });
    }
    if (!who.node) {
      chains.push({ steps, end: { kind: 'unresolved', why: who.why } });
      return;
    }
    const next = d.listenerFor(who.node, mapping.outgoing);
    if (!next) {
      chains.push({ steps, end: { kind: 'origin', url: mapping.outgoing } });
      return;
    }
    const at = mappingPath(node.config, listener, mapping);
    const again = steps.findIndex((s) => s.node === next.node && s.listener === next.listener);
    if (again >= 0) {
      const end: ChainEnd = { kind: 'loop', back: next };
      chains.push({ steps, end });
      const chain: Chain = { steps: steps.slice(again), end };
      const cycle = steps.slice(again).map((s) => listenerId(s.node, s.listener)).sort().join('\u0001');
      report(`loop\u0000${cycle}`, {
        rule: 'loop', severity: 'error', file: node.file, path: at,
        message: `goes back to ${listenerLabel(next.node, next.listener)}, which the request already passed: ${renderChain(chain).replace(/ \[loop\]$/, '')} (west answers 508)`,
      });
      return;
    }
    const path = mapping.outgoing.pathname;
    const targets = reachable(next.listener, path);
    if (targets.length === 0) {
      chains.push({ steps, end: { kind: 'no mapping', at: next, path } });
      report(`404\u0000${stepId(step)}`, {
        rule: 'no mapping', severity: 'error', file: node.file, path: at,
        message: `leads to ${listenerLabel(next.node, next.listener)} (${next.node.file}), which has no mapping for ${path}; requests would get 404 there`,
      });
      return;
    }
    for (const m of targets) walk(steps, next.node, next.listener, m);
  };

  const all = d.nodes.flatMap((node) => node.config.listeners.flatMap((listener) =>
    inWrittenOrder(node, listener).map((mapping) => ({ node, listener, mapping }))));
  const led = new Set<string>();
  for (const s of all) {
    const performer = d.performerOf(s.node, s.listener).node;
    const next = performer && d.listenerFor(performer, s.mapping.outgoing);
    if (next) for (const m of reachable(next.listener, s.mapping.outgoing.pathname)) led.add(stepId({ ...next, mapping: m }));
  }
  // Chains start where no other mapping leads; then whatever only a loop reaches.
  for (const s of all) if (!led.has(stepId(s))) walk([], s.node, s.listener, s.mapping);
  for (const s of all) if (!visited.has(stepId(s))) walk([], s.node, s.listener, s.mapping);
  return { chains, findings };
}
