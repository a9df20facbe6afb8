/**
 * The JSON Schema of the wazigate keys (doc/wazigate.md), for config/schema.ts: a listener's
 * `"wazigate"` (the cloud side) and `west.wazigate` (the gateway side).
 */
import type { SchemaObject } from 'ajv';
import type { RawWazigateBroker, RawWazigateCloud, RawWazigateGateway } from '../config/types.js';

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
