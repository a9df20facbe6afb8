/**
 * `west check` for `tcp://` listeners (doc/tcp.md): where each one's connections end up (the
 * node its target names, through the mesh), and whether that node's `west.egress` lets the
 * origin connect to `to` (only a `tcp://host:port` entry does; no `west.egress` allows no TCP).
 */
import { formatPath } from '../config/messages.js';
import { formatTcpTarget } from '../config/endpoint.js';
import type { TcpListenerConfig } from '../config/types.js';
import { EgressPolicy } from '../proxy/far/egress.js';
import type { Deployment, TopoNode } from './deployment.js';
import type { TopologyFinding } from './findings.js';

/** One tcp:// listener's way, as a line of the report, and what is wrong with it. */
export interface TcpChain {
  line: string;
  findings: TopologyFinding[];
}

export function tcpChains(d: Deployment): TcpChain[] {
  const out: TcpChain[] = [];
  for (const node of d.nodes) for (const l of node.config.tcpListeners) out.push(chainOf(d, node, l));
  return out;
}

function chainOf(d: Deployment, node: TopoNode, l: TcpListenerConfig): TcpChain {
  const to = formatTcpTarget(l.to);
  const head = `tcp ${l.host || '*'}:${l.port} (${node.name})`;
  const at = formatPath(['proxy', l.key, l.target.kind]);
  const who = d.performerOf(node, l);
  const far = who.node;
  if (!far) {
    return {
      line: `${head} -> ? (${who.why})`,
      findings: [{ rule: 'unknown name', severity: 'error', file: node.file, path: at, message: `its connections reach no node: ${who.why}` }],
    };
  }
  const path = [node.name, ...(who.via ?? []).map((n) => n.name), far.name].join(' -> ');
  const origin = originName(d, node, l);
  const egress = far.config.egress;
  const allowed = egress !== undefined && new EgressPolicy(egress).allowsTcp(origin, l.to.host, l.to.port);
  if (allowed) return { line: `${head}: ${path} -> ${to}`, findings: [] };
  const why = egress === undefined
    ? `${far.name} has no west.egress, so it opens no TCP connection`
    : `${far.name}'s west.egress does not list "tcp://${to}" for ${origin} (or "*")`;
  return {
    line: `${head}: ${path} -> ${to} (refused there)`,
    findings: [{ rule: 'tcp egress', severity: 'warning', file: node.file, path: formatPath(['proxy', l.key, 'to']), message: `every connection would be refused: ${why}` }],
  };
}

/** The name the far end judges egress by: the name this node presents on an `ea` tunnel, else its own. */
function originName(d: Deployment, node: TopoNode, l: TcpListenerConfig): string {
  return l.target.kind === 'ea' ? d.tunnelOf(node, l.target.url)?.presents ?? node.name : node.name;
}
