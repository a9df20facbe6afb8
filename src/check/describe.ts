/** What one loaded config runs, as `west check` lists it under "<file>: ok". */
import { formatTcpTarget } from '../config/endpoint.js';
import type { NodeConfig } from '../config/types.js';

export function describeNode(config: NodeConfig): string[] {
  const lines = [`  node ${config.name}`];
  if (config.control) lines.push(`    control port ${config.control.host || '*'}:${config.control.port}`);
  const broker = config.server?.mqtt ? ` (over MQTT${config.server.mqtt.embed ? ', broker embedded' : ''}, as user ${config.server.mqtt.user})` : '';
  if (config.server) lines.push(`    tunnel server ${config.server.url}${broker}`);
  for (const c of config.clients) {
    const over = c.mqtt ? ` (over MQTT to ${c.mqtt.server}, as user ${c.mqtt.user})` : '';
    lines.push(`    tunnel client -> ${c.url} as ${c.name}${over}${c.early ? '' : ' (dial on first use)'}`);
  }
  for (const l of config.listeners) {
    const via = l.target.kind === 'ea' ? `via tunnel ${l.target.url}` : `to peer ${l.target.name}`;
    for (const m of l.mappings) {
      lines.push(`    listener ${l.host || '*'}:${l.port}${m.path} -> ${via} -> ${m.outgoing.href}${m.allow.length ? ` (ca ${m.allow.join(', ')})` : ''}`);
    }
    const access = config.access;
    if (access?.remoteAccess.includes(l.key)) lines.push(`    listener ${l.host || '*'}:${l.port}/remoteaccess/<key> -> a TCP endpoint a key names (keys live ${access.keyTtlMs / 1000} s)`);
    if (access?.rendezvous.includes(l.key)) lines.push(`    listener ${l.host || '*'}:${l.port}/rendezvous/<key> -> pairs two WebSocket clients (wait ${access.pairWaitMs / 1000} s)`);
  }
  for (const l of config.tcpListeners) {
    const via = l.target.kind === 'ea' ? `via tunnel ${l.target.url}` : `to node ${l.target.name}`;
    lines.push(`    tcp listener ${l.host || '*'}:${l.port} -> ${via} -> ${formatTcpTarget(l.to)}${l.allow.length ? ` (ca ${l.allow.join(', ')})` : ''}`);
  }
  if (config.authHook) lines.push(`    auth hook ${config.authHook.url}${config.authHook.failOpen ? ' (fail open)' : ''}`);
  for (const w of config.wazigate?.clouds ?? []) {
    lines.push(`    listener ${w.host || '*'}:${w.port}/{gatewayID} -> wazigate over ${w.broker} as ${w.user ?? '(no user)'}${w.allow.length ? ` (ca ${w.allow.join(', ')})` : ''}`);
  }
  const g = config.wazigate?.gateway;
  if (g) lines.push(`    wazigate gateway ${g.gateway} on ${g.broker} -> ${g.origin.href}`);
  return lines;
}
