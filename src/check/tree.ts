/**
 * How `west check` draws a deployment: the tunnels as a tree (each client under the server it
 * dials) and each chain on one line, e.g.
 * `case4.G.fiap.org:9981/baz -> case4.L.fiap.org:9982/ba -> case4.L2.fiap.org -> http://127.0.0.1:9983/a`.
 */
import type { ListenerConfig, MappingConfig } from '../config/types.js';
import type { Chain } from './chain-types.js';
import type { Deployment, TopoNode, Tunnel } from './deployment.js';

/** A node's short name; one with a colon in it goes in brackets, so `name:port` stays readable. */
export function nodeLabel(node: TopoNode): string {
  return node.name.includes(':') ? `[${node.name}]` : node.name;
}

/** `G:9981`: a listener by node and port. */
export function listenerLabel(node: TopoNode, listener: ListenerConfig): string {
  return `${nodeLabel(node)}:${listener.port}`;
}

/** `G:9981/baz`: a listener mapping. */
export function stepLabel(s: { node: TopoNode; listener: ListenerConfig; mapping: MappingConfig }): string {
  return `${listenerLabel(s.node, s.listener)}${s.mapping.path}`;
}

/**
 * One chain on one line: each listener mapping passed, the node that performs the last `ou`
 * (or a middle one, when it is not the next listener's node), and where it ends.
 */
export function renderChain(chain: Chain): string {
  const { steps, end } = chain;
  const parts: string[] = [];
  const endNode = end.kind === 'loop' ? end.back.node : end.kind === 'no mapping' ? end.at.node : undefined;
  steps.forEach((s, i) => {
    parts.push(stepLabel(s));
    const nextNode = steps[i + 1]?.node ?? endNode;
    const via = s.via ? ` (via ${s.via.map((n) => n.name).join(', ')})` : '';
    if (s.performer && s.performer !== nextNode) parts.push(nodeLabel(s.performer) + via);
  });
  const last = steps[steps.length - 1];
  switch (end.kind) {
    case 'origin':
      parts.push(end.url.href);
      break;
    case 'unresolved':
      parts.push(`? (${end.why})`);
      break;
    case 'loop':
      parts.push(`${listenerLabel(end.back.node, end.back.listener)}${last?.mapping.outgoing.pathname ?? ''} [loop]`);
      break;
    case 'no mapping':
      parts.push(`${listenerLabel(end.at.node, end.at.listener)}${end.path} [no mapping: 404]`);
      break;
    case 'truncated':
      parts.push('... [too many chains to follow]');
      break;
  }
  return parts.join(' -> ');
}

function nodeText(node: TopoNode): string {
  return node.config.server ? `${nodeLabel(node)}  (tunnel server ${node.config.server.url})` : nodeLabel(node);
}

/** How a client dials, when it is not plain: another name, or only on first use. */
function edgeText(t: Tunnel): string {
  const notes: string[] = [];
  if (t.presents !== t.client.name) notes.push(`as ${JSON.stringify(t.presents)}`);
  if (!t.config.early) notes.push('dials on first use');
  return notes.length > 0 ? ` [${notes.join(', ')}]` : '';
}

/**
 * The tunnels as a tree: servers at the top, each client under the server it dials. A node
 * that dials two servers appears under both; the second time its own clients are not repeated.
 * Clients of a server no config runs hang under a "?" line, so the gap shows.
 */
export function renderTunnelTree(d: Deployment): string[] {
  const lines: string[] = [];
  const expanded = new Set<TopoNode>();

  const drawClients = (tunnels: Tunnel[], prefix: string, ancestors: Set<TopoNode>): void => {
    tunnels.forEach((t, i) => {
      const last = i === tunnels.length - 1;
      const client = t.client;
      const again = expanded.has(client) || ancestors.has(client);
      const more = again && d.tunnels.some((k) => k.server === client) ? '  (see above)' : '';
      lines.push(`${prefix}${last ? '└─ ' : '├─ '}${nodeText(client)}${edgeText(t)}${more}`);
      if (!again) drawNode(client, prefix + (last ? '   ' : '│  '), ancestors);
    });
  };
  const drawNode = (node: TopoNode, prefix: string, ancestors: Set<TopoNode>): void => {
    expanded.add(node);
    drawClients(d.tunnels.filter((t) => t.server === node), prefix, new Set([...ancestors, node]));
  };
  const root = (node: TopoNode): void => {
    lines.push(nodeText(node));
    drawNode(node, '', new Set());
  };

  // Roots: nodes that dial nothing.
  for (const node of d.nodes) if (!d.tunnels.some((t) => t.client === node)) root(node);
  const missing = d.tunnels.filter((t) => !t.server);
  for (const url of [...new Set(missing.map((t) => t.config.url))]) {
    lines.push(`? ${url}  (no config serves it)`);
    drawClients(missing.filter((t) => t.config.url === url), '', new Set());
  }
  // Whatever is left dials servers in a ring, or only servers drawn below it: start from it.
  for (const node of d.nodes) if (!expanded.has(node)) root(node);
  return lines;
}
