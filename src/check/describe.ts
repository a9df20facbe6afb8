/** What one loaded config runs, as `west check` lists it under "<file>: ok". */
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
  }
  return lines;
}
