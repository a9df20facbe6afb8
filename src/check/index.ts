/**
 * `west check`: validates config files without starting anything. One file is checked on its
 * own; several are checked as one deployment (topology.ts, chains.ts), drawn as a tree
 * (tree.ts). Warnings are printed but only errors make the exit status 1. Secrets that live
 * only on the node (a token from an unset variable or an absent file) are errors, since the
 * node would not start; with `skipSecrets` they are listed as not read and the rest is checked.
 */
import path from 'node:path';
import type { Writable } from 'node:stream';
import { readConfigFile } from '../config/load.js';
import type { NodeConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import { plural } from '../format.js';
import { walkChains } from './chains.js';
import { Deployment } from './deployment.js';
import { describeNode } from './describe.js';
import { bySeverity, formatFinding, type TopologyFinding } from './findings.js';
import { securityFindings, type SecurityRule } from './security.js';
import { openRelayFindings, topologyFindings } from './topology.js';
import { tcpChains } from './tcp.js';
import { renderChain, renderTunnelTree } from './tree.js';

export type { TopologyFinding } from './findings.js';

/** Beyond this many chains a list stops helping anyone read it. */
const MAX_CHAINS_SHOWN = 200;

export interface CheckOptions {
  /** Do not fail on secrets that are not on this machine (`--skip-secrets`). */
  skipSecrets?: boolean;
}

/** Checks each file, then (for two or more) the set as one deployment; returns the exit status. */
export async function checkConfigs(files: string[], out: Writable, options: CheckOptions = {}): Promise<number> {
  const unique = files.filter((f, i) => files.findIndex((g) => path.resolve(g) === path.resolve(f)) === i);
  const loaded: { file: string; config: NodeConfig }[] = [];
  let skipped = 0;
  for (const file of unique) {
    try {
      const read = await readConfigFile(file, { skipSecrets: options.skipSecrets === true });
      loaded.push({ file, config: read.config });
      skipped += read.skipped.length;
      out.write(`${file}: ok\n${describeNode(read.config).join('\n')}\n`);
      for (const s of read.skipped) out.write(`  not read here: ${s.path}: ${s.message} (--skip-secrets)\n`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      out.write(`${err.message}\n`);
      if (!options.skipSecrets && await onlySecretsMissing(file)) {
        out.write('  (a secret the node reads is not on this machine; west check --skip-secrets checks the rest without it)\n');
      }
    }
  }
  const failed = unique.length - loaded.length;
  const deployment = new Deployment(loaded);

  if (unique.length === 1) {
    writeFindings(out, [...openRelayFindings(deployment.nodes), ...securityWarnings(loaded)], '');
    return failed === 0 ? 0 : 1;
  }
  if (failed > 0) {
    out.write(`\ndeployment not checked: ${failed} of ${unique.length} configs did not load; fix ${failed === 1 ? 'it' : 'them'} first\n`);
    return 1;
  }
  const { chains, findings: chainFindings } = walkChains(deployment);
  const tcp = tcpChains(deployment);
  const findings = bySeverity([
    ...topologyFindings(deployment), ...chainFindings, ...tcp.flatMap((t) => t.findings), ...openRelayFindings(deployment.nodes), ...securityWarnings(loaded),
  ]);

  out.write(`\ndeployment of ${deployment.nodes.length} nodes:\n  tunnels:\n`);
  const tree = renderTunnelTree(deployment);
  out.write(tree.map((l) => `    ${l}\n`).join(''));
  out.write('  chains:\n');
  out.write(chains.length > 0 ? chains.slice(0, MAX_CHAINS_SHOWN).map((c) => `    ${renderChain(c)}\n`).join('') : '    (none: no proxy listeners)\n');
  if (chains.length > MAX_CHAINS_SHOWN) out.write(`    ... and ${chains.length - MAX_CHAINS_SHOWN} more\n`);
  if (tcp.length > 0) out.write(`  tcp listeners:\n${tcp.map((t) => `    ${t.line}\n`).join('')}`);
  writeFindings(out, findings, '  ');

  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.length - errors;
  const counts = `${plural(deployment.nodes.length, 'node')}, ${plural(deployment.tunnels.length, 'tunnel')}, ` +
    `${plural(chains.length, 'chain')}; ${plural(errors, 'error')}, ${plural(warnings, 'warning')}` +
    (skipped > 0 ? `; ${plural(skipped, 'secret')} not read here` : '');
  out.write(`${errors === 0 ? 'sound' : 'NOT sound'}: ${counts}\n`);
  return errors === 0 ? 0 : 1;
}

/** Would the file load if the secrets this machine lacks were skipped? */
async function onlySecretsMissing(file: string): Promise<boolean> {
  try {
    return (await readConfigFile(file, { skipSecrets: true })).skipped.length > 0;
  } catch {
    return false;
  }
}

const SECURITY_RULES: Record<SecurityRule, TopologyFinding['rule']> = {
  secret_file_readable: 'readable secret',
  control_port_open: 'open control port',
  mapping_without_ca: 'no ca',
};

/** The warnings a node logs as `security.*` at start-up, for each loaded file. */
function securityWarnings(loaded: readonly { file: string; config: NodeConfig }[]): TopologyFinding[] {
  return loaded.flatMap(({ file, config }) => securityFindings(config).map((f) => ({
    rule: SECURITY_RULES[f.rule], severity: 'warning' as const, file, path: f.path, message: f.message,
  })));
}

function writeFindings(out: Writable, findings: readonly TopologyFinding[], indent: string): void {
  for (const f of findings) out.write(`${indent}${formatFinding(f)}\n`);
}
