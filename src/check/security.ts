/**
 * Settings that work but leave a door open: a token or key file other users can read, a
 * control port on every interface or a public address without a token, listener mappings
 * without a `ca` allowlist on an address other machines reach. A node logs each at start-up
 * as a `security.*` warning; `west check` prints them as warnings. None of them stops anything.
 */
import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { formatPath } from '../config/messages.js';
import type { PathSegment } from '../config/json-text.js';
import type { NodeConfig, RawSecret } from '../config/types.js';
import { isLoopback, isPrivate, isWildcard, normalHost, showEndpoint } from './hosts.js';

export type SecurityRule = 'secret_file_readable' | 'control_port_open' | 'mapping_without_ca';

export interface SecurityFinding {
  rule: SecurityRule;
  /** The start-up log event: `security.<rule>`. */
  event: `security.${SecurityRule}`;
  /** JSON path of the setting, e.g. `wsts.tokens["site-L"].file`. */
  path: string;
  message: string;
  /** Fields of the start-up log line: the path, file names and modes, the hint; never a secret. */
  fields: Record<string, string>;
}

/** What `fs.stat` says of a file's mode; a test may stand in for the file system. */
export type ModeOf = (file: string) => number | undefined;

function statMode(file: string): number | undefined {
  try {
    return statSync(file).mode;
  } catch {
    return undefined; // loading the config reports a file it cannot read
  }
}

/** Every finding for one node's config, in the order of the config's sections. */
export function securityFindings(config: NodeConfig, modeOf: ModeOf = statMode): SecurityFinding[] {
  return [...readableSecretFiles(config, modeOf), ...openControlPort(config), ...mappingsWithoutCa(config)];
}

function finding(rule: SecurityRule, at: PathSegment[] | string, message: string, extra: Record<string, string> = {}): SecurityFinding {
  const where = typeof at === 'string' ? at : formatPath(at);
  return { rule, event: `security.${rule}`, path: where, message, fields: { at: where, ...extra, hint: message } };
}

/** Token files (`{ "file": ... }`) and TLS key files the config names, with their JSON paths. */
function secretFiles(config: NodeConfig): { file: string; at: PathSegment[]; what: string }[] {
  const raw = config.raw;
  const files: { file: string; at: PathSegment[]; what: string }[] = [];
  const token = (secret: RawSecret | undefined, at: PathSegment[]): void => {
    if (secret !== undefined && typeof secret === 'object' && 'file' in secret) files.push({ file: secret.file, at: [...at, 'file'], what: 'token file' });
  };
  const key = (file: string | undefined, at: PathSegment[]): void => {
    if (file !== undefined) files.push({ file, at, what: 'TLS key file' });
  };
  token(raw.west.cpToken, ['west', 'cpToken']);
  for (const [name, secret] of Object.entries(raw.wsts?.tokens ?? {})) token(secret, ['wsts', 'tokens', name]);
  key(raw.wsts?.key, ['wsts', 'key']);
  token(raw.wsts?.mqtt?.password, ['wsts', 'mqtt', 'password']);
  for (const [url, client] of Object.entries(raw.wstc ?? {})) {
    token(client.token, ['wstc', url, 'token']);
    token(client.mqtt?.password, ['wstc', url, 'mqtt', 'password']);
    key(client.key, ['wstc', url, 'key']);
  }
  for (const [listener, l] of Object.entries(raw.proxy ?? {})) key(l.key, ['proxy', listener, 'key']);
  return files;
}

function readableSecretFiles(config: NodeConfig, modeOf: ModeOf): SecurityFinding[] {
  // Windows has no group/other permission bits to judge.
  if (process.platform === 'win32') return [];
  const baseDir = config.source === '' ? process.cwd() : path.dirname(path.resolve(config.source));
  const findings: SecurityFinding[] = [];
  for (const { file, at, what } of secretFiles(config)) {
    const mode = modeOf(path.resolve(baseDir, file));
    if (mode === undefined || (mode & 0o077) === 0) continue;
    const octal = (mode & 0o777).toString(8).padStart(3, '0');
    findings.push(finding('secret_file_readable', at,
      `${what} ${JSON.stringify(file)} is open to other users of this machine (mode ${octal}); make it readable by its owner only (chmod 600)`,
      { file, mode: octal }));
  }
  return findings;
}

/**
 * A control port without a token on every interface, or on an address that is neither
 * loopback nor private (a public address, or a name: nothing is resolved here), shows every
 * node, tunnel URL and origin of the deployment to whoever reaches it. A private address is
 * the management network the docs suggest, and is not reported. `west.cpToken` as written
 * counts, read or not (`west check --skip-secrets`).
 */
function openControlPort(config: NodeConfig): SecurityFinding[] {
  const cp = config.control;
  if (!cp || isLoopback(cp.host) || isPrivate(cp.host) || config.raw.west.cpToken !== undefined) return [];
  const where = showEndpoint(cp.host, cp.port);
  const reach = isWildcard(cp.host) ? 'listens on every interface'
    : isIP(normalHost(cp.host)) !== 0 ? 'listens on a public address'
    : `listens on ${cp.host}, a name that may be a public address,`;
  return [finding('control_port_open', ['west', 'cp'],
    `control port ${where} ${reach} without west.cpToken: anyone who reaches it reads the node's state; ` +
    'bind it to 127.0.0.1 or set west.cpToken',
    { endpoint: where })];
}

/**
 * Listeners other machines can reach (every interface, or an address that is not loopback)
 * whose mappings have no `ca`. One finding per listener, naming its open mappings; a loopback
 * listener only takes connections from this machine, where `ca` would add nothing.
 */
function mappingsWithoutCa(config: NodeConfig): SecurityFinding[] {
  const findings: SecurityFinding[] = [];
  for (const l of config.listeners) {
    if (isLoopback(l.host)) continue;
    const open = l.mappings.filter((m) => m.allow.length === 0).map((m) => m.path);
    if (open.length === 0) continue;
    const where = showEndpoint(l.host, l.port);
    findings.push(finding('mapping_without_ca', ['proxy', l.key],
      `${open.length === 1 ? 'mapping' : 'mappings'} ${open.join(', ')} on ${where} ${open.length === 1 ? 'has' : 'have'} no "ca": ` +
      `any client that reaches ${where} can use ${open.length === 1 ? 'it' : 'them'}; list the client addresses that may in "ca"`,
      { listener: l.key, mappings: open.join(' ') }));
  }
  // A tcp:// listener other machines reach opens its far port to all of them (doc/tcp.md).
  for (const l of config.tcpListeners) {
    if (isLoopback(l.host) || l.allow.length > 0) continue;
    const where = showEndpoint(l.host, l.port);
    findings.push(finding('mapping_without_ca', ['proxy', l.key],
      `the TCP listener on ${where} has no "ca": any client that reaches ${where} gets a connection to ${l.to.host}:${l.to.port} at the far end; list the client addresses that may in "ca"`,
      { listener: l.key }));
  }
  for (const w of config.wazigate?.clouds ?? []) {
    if (isLoopback(w.host) || w.allow.length > 0) continue;
    const where = showEndpoint(w.host, w.port);
    findings.push(finding('mapping_without_ca', ['proxy', w.key, 'wazigate'],
      `the wazigate listener on ${where} has no "ca": any client that reaches ${where} can send requests to the gateways; list the client addresses that may in "wazigate.ca"`,
      { listener: w.key, mappings: '/{gatewayID}' }));
  }
  return findings;
}
