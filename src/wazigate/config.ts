/**
 * The wazigate keys of a config (doc/wazigate.md): the checks that relate them to the rest of
 * the file, and their resolved form (their JSON Schema is in schema.ts). A listener with
 * `"wazigate"` plays the wazigate-tunnel cloud; `west.wazigate` makes this node a gateway of one.
 */
import { parseListenerKey, parseOutgoingUrl } from '../config/endpoint.js';
import type { PathSegment } from '../config/json-text.js';
import type { Finding } from '../config/messages.js';
import type { ConfigFiles } from '../config/secrets.js';
import type {
  Endpoint, RawWazigateBroker, RawWazigateCloud, RawWazigateGateway, WazigateBroker, WazigateCloudConfig, WazigateGatewayConfig,
} from '../config/types.js';
import { DEFAULT_TIMEOUT_MS } from './schema.js';

export { GATEWAY_ID } from './schema.js';

/** What a wazigate listener may not hold beside `wazigate` (it has no mappings, no tunnel). */
export function cloudListenerFindings(key: string, listener: Record<string, unknown>, at: PathSegment[]): Finding[] {
  const findings: Finding[] = Object.keys(listener)
    .filter((k) => k !== 'wazigate')
    .map((k) => ({ at: [...at, k], message: 'is not used by a wazigate listener (it sends every request "/{gatewayID}/..." to that gateway)' }));
  if (parseListenerKey(key)?.tls) findings.push({ at, message: 'a wazigate listener is http:// only (put a TLS-terminating proxy in front)' });
  return findings;
}

function resolveBroker(raw: RawWazigateBroker, at: PathSegment[], files: ConfigFiles): WazigateBroker {
  const password = files.secret(raw.password, [...at, 'password']);
  return {
    broker: raw.broker,
    ...(raw.user !== undefined ? { user: raw.user } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

export function resolveCloud(key: string, endpoint: Endpoint, raw: RawWazigateCloud, files: ConfigFiles): WazigateCloudConfig {
  return {
    key, host: endpoint.host, port: endpoint.port,
    ...resolveBroker(raw, ['proxy', key, 'wazigate'], files),
    timeoutMs: raw.timeout === undefined ? DEFAULT_TIMEOUT_MS : Math.round(raw.timeout * 1000),
    allow: [...(raw.ca ?? [])],
    ...(raw.gateways ? { gateways: [...raw.gateways] } : {}),
  };
}

export function resolveGateway(raw: RawWazigateGateway, files: ConfigFiles): WazigateGatewayConfig {
  const origin = parseOutgoingUrl(raw.origin);
  if (!origin) throw new Error('internal: west.wazigate.origin passed validation but does not parse');
  return { ...resolveBroker(raw, ['west', 'wazigate'], files), gateway: raw.gateway, origin };
}
