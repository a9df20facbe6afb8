/**
 * The rules that relate one config of a deployment to another: every tunnel has a server,
 * every `en` names a peer that connects, names are unique, ports on one machine do not clash.
 * Chains (`ou` to another listener) are checked in chains.ts.
 */
import { formatPath } from '../config/messages.js';
import { canonicalName, type Endpoint } from '../config/types.js';
import type { Deployment, TopoNode } from './deployment.js';
import { listenerPath, type TopologyFinding } from './findings.js';
import { overlaps, showEndpoint } from './hosts.js';

/** Every rule but the chains, in a stable order. */
export function topologyFindings(d: Deployment): TopologyFinding[] {
  return [
    ...duplicateNames(d),
    ...missingServers(d),
    ...unknownNames(d),
    ...namesClaimedTwice(d),
    ...portClashes(d),
  ];
}

function where(node: TopoNode): string {
  return `${node.name} (${node.file})`;
}

function duplicateNames(d: Deployment): TopologyFinding[] {
  const findings: TopologyFinding[] = [];
  d.nodes.forEach((node, i) => {
    const first = d.nodes.slice(0, i).find((n) => n.name === node.name);
    if (!first) return;
    findings.push({
      rule: 'duplicate name', severity: 'error', file: node.file, path: 'west.nm',
      message: `${first.file} is also named ${JSON.stringify(node.name)}; every node needs its own name (peers and the Via loop check tell nodes apart by it)`,
    });
  });
  return findings;
}

function missingServers(d: Deployment): TopologyFinding[] {
  const findings: TopologyFinding[] = [];
  for (const t of d.tunnels) {
    const url = JSON.stringify(t.config.url);
    if (t.server) {
      if (t.alsoServedBy.length > 0) {
        findings.push({
          rule: 'ambiguous server', severity: 'warning', file: t.client.file, path: t.at,
          message: `${url} could be served by ${[t.server, ...t.alsoServedBy].map(where).join(' or ')}; the check assumes ${t.server.name}`,
        });
      }
      continue;
    }
    const message = t.config.mqtt
      ? `no config in this deployment is named ${JSON.stringify(t.config.mqtt.server)} and serves tunnels over MQTT (wsts.mqtt)`
      : t.otherScheme
      ? `no config serves ${url}: ${where(t.otherScheme)} listens there with wsts.sp ${JSON.stringify(t.otherScheme.config.server?.url)} (ws:// and wss:// do not mix)`
      : `no config in this deployment serves ${url} (no wsts.sp listens on that address and port)`;
    findings.push({ rule: 'missing server', severity: 'error', file: t.client.file, path: t.at, message });
  }
  return findings;
}

function unknownNames(d: Deployment): TopologyFinding[] {
  const findings: TopologyFinding[] = [];
  for (const node of d.nodes) {
    for (const listener of node.config.listeners) {
      if (listener.target.kind !== 'en') continue;
      const name = listener.target.name;
      const peers = d.peersNamed(node, name);
      const path = listenerPath(listener, 'en');
      const peer = peers[0];
      if (!peer) {
        // Not a client of this node: the mesh may still route to it (src/mesh/).
        const routed = d.routeTo(node, name, listener.via);
        if (routed && !routed.refused) continue;
        const message = routed?.refused
          ? `${whyNoPeer(d, node, name)}; the mesh ${routed.status === 503 ? 'could reach' : 'reaches'} it through ${routed.path.hops.map((n) => n.name).join(' -> ')}, but ${routed.refused}: requests would get ${String(routed.status ?? 403)}`
          : whyNoPeer(d, node, name);
        findings.push({ rule: 'unknown name', severity: 'error', file: node.file, path, message });
      } else if (peers.every((p) => !p.config.early)) {
        const usesIt = peer.client.config.listeners.some((l) => l.target.kind === 'ea' && l.target.url === peer.config.url);
        findings.push(usesIt
          ? {
            rule: 'dials late', severity: 'warning', file: node.file, path,
            message: `${where(peer.client)} dials this node only on first use (${peer.at} has "ee": "no"); until one of its own requests opens the tunnel, this listener answers 503`,
          }
          : {
            rule: 'dials late', severity: 'error', file: node.file, path,
            message: `${where(peer.client)} never dials this node: ${peer.at} has "ee": "no" and none of its listeners uses that tunnel, so this listener always answers 503`,
          });
      }
    }
  }
  return findings;
}

/** Why no tunnel arrives at `node` presenting `name`: the most helpful of three explanations. */
function whyNoPeer(d: Deployment, node: TopoNode, name: string): string {
  const wanted = JSON.stringify(name);
  const sp = JSON.stringify(node.config.server?.url);
  const elsewhere = d.tunnels.find((t) => t.presents === canonicalName(name));
  if (elsewhere) {
    const to = elsewhere.server ? `served by ${elsewhere.server.name}` : 'which no config serves';
    const mine = node.config.server ? `this node's tunnel server ${sp}` : 'this node (it runs no tunnel server)';
    return `names ${wanted}, which connects to ${JSON.stringify(elsewhere.config.url)} (${to}), not to ${mine}`;
  }
  const named = d.nodes.find((n) => n.name === canonicalName(name));
  if (named) {
    return `names ${wanted}, but ${named.file} has no wstc entry or "ea" for this node's tunnel server ${sp}`;
  }
  const known = d.nodes.map((n) => n.name).join(', ');
  return `names ${wanted}, but no config in this deployment connects as ${wanted} (nodes here: ${known})`;
}

function namesClaimedTwice(d: Deployment): TopologyFinding[] {
  const findings: TopologyFinding[] = [];
  d.tunnels.forEach((t, i) => {
    if (!t.server) return;
    const first = d.tunnels.slice(0, i).find((o) => o.server === t.server && o.presents === t.presents);
    if (!first) return;
    const also = first.client === t.client ? `this node's ${first.at}` : `${where(first.client)} at ${first.at}`;
    const outcome = t.server.config.server?.claim === 'refuse'
      ? 'the server refuses a name that is already connected, so only one of them is ever connected'
      : 'the server keeps only the newest connection, so the two keep displacing each other';
    findings.push({
      rule: 'name claimed twice', severity: 'error', file: t.client.file, path: t.at,
      message: `connects to ${t.server.name} as ${JSON.stringify(t.presents)}, as does ${also}; ${outcome}`,
    });
  });
  return findings;
}

interface Binding extends Endpoint {
  node: TopoNode;
  /** JSON path. */
  at: string;
}

function bindings(node: TopoNode): Binding[] {
  const c = node.config;
  const found: Binding[] = [];
  if (c.control) found.push({ node, at: 'west.cp', ...c.control });
  // A tunnel server over MQTT binds nothing, unless it embeds the broker.
  if (c.server && (!c.server.mqtt || c.server.mqtt.embed)) found.push({ node, at: 'wsts.sp', host: c.server.host, port: c.server.port });
  for (const l of [...c.listeners, ...c.tcpListeners]) found.push({ node, at: formatPath(['proxy', l.key]), host: l.host, port: l.port });
  return found;
}

function portClashes(d: Deployment): TopologyFinding[] {
  const findings: TopologyFinding[] = [];
  d.nodes.forEach((node, i) => {
    const earlier = d.nodes.slice(0, i).filter((n) => d.sameMachine(n, node)).flatMap(bindings);
    for (const b of bindings(node)) {
      const other = earlier.find((a) => a.port === b.port && b.port !== 0 && overlaps(a.host, b.host));
      if (!other) continue;
      findings.push({
        rule: 'port clash', severity: 'error', file: node.file, path: b.at,
        message: `${showEndpoint(b.host, b.port)} is also bound by ${other.node.file} ${other.at} (${showEndpoint(other.host, other.port)}); ` +
          `${node.name} and ${other.node.name} run on one machine (they reach each other through a loopback address), so each needs its own ports`,
      });
    }
  });
  return findings;
}

/**
 * A node without a `west.egress` allowlist fetches whatever its peers ask: a tunnel server for
 * anyone who connects, a tunnel client for the servers it dials. A warning, so the operator
 * decides who may connect (or sets the allowlist).
 */
export function openRelayFindings(nodes: readonly TopoNode[]): TopologyFinding[] {
  const findings: TopologyFinding[] = [];
  for (const n of nodes) {
    if (n.config.egress) continue;
    if (n.config.server) {
      findings.push({
        rule: 'open relay', severity: 'warning', file: n.file, path: 'wsts.sp',
        message: `any peer that connects to ${n.config.server.url} can make ${n.name} fetch any URL it can reach ` +
          '(no west.egress allowlist); let only trusted peers reach this port',
      });
    } else if (n.config.clients.length > 0) {
      const servers = n.config.clients.map((c) => c.url).join(', ');
      findings.push({
        rule: 'open relay', severity: 'warning', file: n.file, path: 'west',
        message: `the tunnel server${n.config.clients.length > 1 ? 's' : ''} ${servers} can make ${n.name} fetch any URL it can reach ` +
          '(no west.egress allowlist)',
      });
    }
  }
  return findings;
}
