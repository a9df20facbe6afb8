/** `west check`: validates config files without starting anything. */
import type { Writable } from 'node:stream';
import { loadConfigFile } from './config/load.js';
import type { NodeConfig } from './config/types.js';
import { ConfigError } from './errors.js';

function describe(config: NodeConfig): string[] {
  const lines = [`  node ${config.name}`];
  if (config.control) lines.push(`    control port ${config.control.host || '*'}:${config.control.port}`);
  if (config.server) lines.push(`    tunnel server ${config.server.url}`);
  for (const c of config.clients) lines.push(`    tunnel client -> ${c.url} as ${c.name}${c.early ? '' : ' (dial on first use)'}`);
  for (const l of config.listeners) {
    const via = l.target.kind === 'ea' ? `via tunnel ${l.target.url}` : `to peer ${l.target.name}`;
    for (const m of l.mappings) {
      lines.push(`    listener ${l.host || '*'}:${l.port}${m.path} -> ${via} -> ${m.outgoing.href}${m.allow.length ? ` (ca ${m.allow.join(', ')})` : ''}`);
    }
  }
  return lines;
}

/** Checks each file; prints what it found; returns the exit status (0 sound, 1 not). */
export async function checkConfigs(files: string[], out: Writable): Promise<number> {
  let bad = 0;
  for (const file of files) {
    try {
      const config = await loadConfigFile(file);
      out.write(`${file}: ok\n${describe(config).join('\n')}\n`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      bad++;
      out.write(`${err.message}\n`);
    }
  }
  return bad === 0 ? 0 : 1;
}
