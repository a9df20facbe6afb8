/**
 * The wazigate keys of a config (doc/wazigate.md): their JSON Schema, the checks that relate
 * them to the rest of the file, and their resolved form. A listener with `"wazigate"` plays
 * the wazigate-tunnel cloud; `west.wazigate` makes this node a gateway of one.
 */
import type { SchemaObject } from 'ajv';
import { parseListenerKey, parseOutgoingUrl } from '../config/endpoint.js';
import type { PathSegment } from '../config/json-text.js';
import type { Finding } from '../config/messages.js';
import type { ConfigFiles } from '../config/secrets.js';
import type {
  Endpoint, RawWazigateBroker, RawWazigateCloud, RawWazigateGateway, WazigateBroker, WazigateCloudConfig, WazigateGatewayConfig,
} from '../config/types.js';

/**
 * A gateway ID as it may stand in a topic level: no `/`, `+`, `#` (MQTT's separators and
 * wildcards), no control characters; Waziup's IDs are hex strings.
 */
export const GATEWAY_ID = /^[A-Za-z0-9_.:~-]{1,128}$/;

/** The original's wait for a gateway's answer. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** `mqtt://host:port` or `mqtts://host:port` (port optional: 1883, 8883). */
export function parseBrokerUrl(text: string): URL | undefined {
  try {
    const url = new URL(text);
    if ((url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') || url.hostname === '') return undefined;
    if (url.username !== '' || url.password !== '' || (url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') return undefined;
    return url;
  } catch {
    return undefined;
  }
}

type Secret = () => SchemaObject;

function brokerProperties(secret: Secret): Record<keyof RawWazigateBroker, SchemaObject> {
  return {
    broker: { type: 'string', format: 'mqtt-url', message: 'must be an mqtt:// or mqtts:// URL of the broker, like "mqtt://127.0.0.1:1883"' },
    user: { type: 'string', minLength: 1, message: 'must be the user name this node gives the broker' },
    password: secret(),
  };
}

/** The schema of a listener's `wazigate` object. */
export function cloudSchema(secret: Secret): SchemaObject {
  const properties: Record<keyof RawWazigateCloud, SchemaObject> = {
    ...brokerProperties(secret),
    timeout: { type: 'number', exclusiveMinimum: 0, maximum: 3600, message: 'must be a number of seconds above 0 and at most 3600' },
    ca: {
      type: 'array',
      items: { type: 'string', format: 'ip-or-cidr', message: 'must be an IP address or CIDR like "10.0.0.0/8"' },
      message: 'must be a list of IP addresses or CIDRs, like ["127.0.0.1", "10.0.0.0/8"]',
    },
    gateways: {
      type: 'array',
      items: { type: 'string', pattern: GATEWAY_ID.source, message: 'must be a gateway ID (letters, digits, "_.:~-", at most 128)' },
      message: 'must be a list of the gateway IDs this listener reaches',
    },
  };
  return {
    type: 'object', properties, required: ['broker'], additionalProperties: false,
    message: 'must be an object like { "broker": "mqtt://127.0.0.1:1883", "user": "cloud", "password": { "env": "WAZIUP_PASSWORD" } }',
  };
}

/** The schema of `west.wazigate`. */
export function gatewaySchema(secret: Secret): SchemaObject {
  const properties: Record<keyof RawWazigateGateway, SchemaObject> = {
    ...brokerProperties(secret),
    gateway: { type: 'string', pattern: GATEWAY_ID.source, message: 'must be this gateway\'s ID (letters, digits, "_.:~-", at most 128)' },
    origin: { type: 'string', format: 'http-url', message: 'must be the http:// or https:// URL the cloud\'s requests are performed against, like "http://127.0.0.1:80"' },
  };
  return {
    type: 'object', properties, required: ['broker', 'gateway', 'origin'], additionalProperties: false,
    message: 'must be an object like { "broker": "mqtt://broker:1883", "gateway": "<gateway ID>", "origin": "http://127.0.0.1:80" }',
  };
}

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
