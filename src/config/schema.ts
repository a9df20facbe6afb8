/**
 * The JSON Schema of the config file (draft-07, for ajv 8).
 *
 * Each node carries a `message` annotation (our own keyword, declared to ajv) holding what
 * the operator reads when the value there is wrong; messages.ts turns ajv's errors into
 * those sentences. The property tables are typed against types.ts, so adding a key to a Raw*
 * interface without adding it here (or the reverse) fails to compile.
 */
import { Ajv, type SchemaObject, type ValidateFunction } from 'ajv';
import { isIpOrCidr, parseEgressEntry, parseEndpoint, parseListenerKey, parseOutgoingUrl, parseTcpListenerKey, parseTcpTarget, parseTunnelUrl } from './endpoint.js';
import type { RawAccess, RawAuthHook, RawClient, RawConfig, RawMapping, RawMqttClient, RawMqttServer, RawServer, RawWest } from './types.js';
import { cloudSchema, gatewaySchema, parseBrokerUrl } from '../wazigate/schema.js';

/** `message`: a string for any failing keyword, or one per keyword (e.g. `{ oneOf: "..." }`). */
export const MESSAGE_KEYWORD = 'message';

const TUNNEL_URL = 'a ws:// or wss:// URL';
const SECOND_LIMIT = 86_400;

function seconds(): SchemaObject {
  return {
    type: 'number',
    exclusiveMinimum: 0,
    maximum: SECOND_LIMIT,
    message: `must be a number of seconds above 0 and at most ${SECOND_LIMIT}`,
  };
}

function secondsOrZero(): SchemaObject {
  return {
    type: 'number',
    minimum: 0,
    maximum: SECOND_LIMIT,
    message: `must be a number of seconds from 0 to ${SECOND_LIMIT}`,
  };
}

const file = (what: string): SchemaObject => ({ type: 'string', minLength: 1, message: `must be the path of a PEM file (${what})` });

/** A token: the value, `{ "file": path }` or `{ "env": VAR }`. */
function secret(): SchemaObject {
  return {
    oneOf: [
      { type: 'string', minLength: 1 },
      { type: 'object', properties: { file: { type: 'string', minLength: 1 } }, required: ['file'], additionalProperties: false },
      { type: 'object', properties: { env: { type: 'string', minLength: 1 } }, required: ['env'], additionalProperties: false },
    ],
    message: 'must be a token string, { "file": "/path/to/token" } or { "env": "VARIABLE" }',
  };
}

/** Node names (or "*") -> destination node names (or "*"): `west.transit`, `west.learn`. */
function destinationsBy(key: string, meaning: string): SchemaObject {
  return {
    type: 'object',
    propertyNames: { minLength: 1, message: `must be ${key}` },
    additionalProperties: {
      type: 'array',
      items: { type: 'string', minLength: 1, message: 'must be a destination node name, or "*"' },
      message: 'must be a list of destination node names (or "*")',
    },
    message: `must be an object: ${meaning}`,
  };
}

function integer(minimum: number, maximum: number, unit = ''): SchemaObject {
  return {
    type: 'integer',
    minimum,
    maximum,
    message: `must be a whole number from ${minimum} to ${maximum}${unit}`,
  };
}

const listenerKeys = (what: string): SchemaObject => ({
  type: 'array',
  items: { type: 'string', format: 'listener-key', message: 'must be a listener address as written in "proxy", like "http://127.0.0.1:9911"' },
  message: `must be a list of listener addresses (keys of "proxy") that serve ${what}`,
});

const accessProperties: Record<keyof RawAccess, SchemaObject> = {
  remoteAccess: listenerKeys('/remoteaccess/<key>'),
  rendezvous: listenerKeys('/rendezvous/<key>'),
  keyTtl: seconds(),
  pairWait: seconds(),
  maxWaiting: integer(1, 100_000),
  maxWaitingPerAddress: integer(1, 100_000),
};

const authHookProperties: Record<keyof RawAuthHook, SchemaObject> = {
  url: { type: 'string', format: 'http-url', message: 'must be the http:// or https:// URL of the hook' },
  timeout: seconds(),
  cache: secondsOrZero(),
  denyCache: secondsOrZero(),
  failOpen: { type: 'boolean', message: 'must be true or false' },
};

const westProperties: Record<keyof RawWest, SchemaObject> = {
  nm: { type: 'string', minLength: 1, message: "must be a non-empty string (this node's name)" },
  cp: { type: 'string', format: 'endpoint', message: 'must be "host:port" or ":port" (port 0-65535)' },
  responseTimeout: seconds(),
  connectTimeout: seconds(),
  heartbeat: seconds(),
  drainTimeout: seconds(),
  streamWindow: integer(16_384, 16_777_216, ' (bytes)'),
  maxStreamWindow: integer(16_384, 1_073_741_824, ' (bytes; at least streamWindow)'),
  maxConnectionWindow: integer(262_144, 1_073_741_824, ' (bytes)'),
  memoryBudget: integer(1_048_576, 68_719_476_736, ' (bytes)'),
  maxHops: integer(1, 64),
  retryAfter: integer(0, 3600, ' (seconds)'),
  peerWait: secondsOrZero(),
  reconnectMin: seconds(),
  reconnectMax: seconds(),
  maxStreams: integer(1, 65_536),
  maxHeaderSize: integer(1024, 1_048_576, ' (bytes)'),
  idleTimeout: seconds(),
  headerTimeout: seconds(),
  maxConnectionsPerAddress: integer(0, 1_000_000),
  errorDetail: { enum: ['full', 'minimal'], message: 'must be "full" or "minimal"' },
  egress: {
    type: 'object',
    propertyNames: { minLength: 1, message: 'must be a peer name, or "*" for every peer' },
    additionalProperties: {
      type: 'array',
      items: { type: 'string', format: 'egress-entry', message: 'must be a URL prefix like "http://127.0.0.1:9921/x", a host like "127.0.0.1:9921" or a TCP address like "tcp://127.0.0.1:22"' },
      message: 'must be a list of URL prefixes or hosts',
    },
    message: 'must be an object: peer name (or "*") -> list of URL prefixes or hosts it may reach through this node',
  },
  cpToken: secret(),
  wire: { enum: [2, 3], message: 'must be 2 (the previous wire version) or 3 (the mesh)' },
  workers: {
    oneOf: [{ type: 'integer', minimum: 1, maximum: 1024 }, { const: 'auto' }],
    message: 'must be a whole number from 1 to 1024, or "auto" (1 on 2 cores or fewer, else one per core)',
  },
  transit: destinationsBy('an originating node name, or "*" for every node',
    'originating node name (or "*") -> destination node names (or "*") this node relays its streams to'),
  learn: destinationsBy('a peer name, or "*" for every peer',
    'peer name (or "*") -> destination node names (or "*") this node learns routes to from that peer'),
  relays: {
    type: 'array',
    items: { type: 'string', minLength: 1, message: 'must be a peer name, or "*"' },
    message: 'must be a list of peer names (or "*") whose relayed streams this node takes',
  },
  access: {
    type: 'object',
    properties: accessProperties,
    additionalProperties: false,
    message: 'must be an object like { "remoteAccess": ["http://127.0.0.1:9911"], "keyTtl": 60 }',
  },
  authHook: {
    type: 'object',
    properties: authHookProperties,
    required: ['url'],
    additionalProperties: false,
    message: 'must be an object like { "url": "http://127.0.0.1:9000/auth", "timeout": 0.5 }',
  },
  trustedProxies: {
    type: 'array',
    items: { type: 'string', format: 'ip-or-cidr', message: 'must be an IP address or CIDR like "10.0.0.0/8"' },
    message: 'must be a list of IP addresses or CIDRs of proxies in front of this node\'s listeners, like ["127.0.0.1", "10.0.0.0/8"]',
  },
  wazigate: gatewaySchema(secret),
};

const serverProperties: Record<keyof RawServer, SchemaObject> = {
  sp: { type: 'string', format: 'ws-url', message: `must be ${TUNNEL_URL} to listen on, like "ws://0.0.0.0:9801"` },
  // The original declared wsts.ca but never used it ("TBD"); accepted so its configs load.
  ca: {
    type: 'array',
    items: { type: 'string', minLength: 1, message: 'must be a client address (IP or CIDR) or a client name' },
    message: 'must be a list of client addresses (IPs or CIDRs) and names allowed to connect',
  },
  cert: file('the certificate chain of a wss:// server'),
  key: file('the private key of a wss:// server'),
  clientCa: file('the CA that signs client certificates'),
  tokens: {
    type: 'object',
    propertyNames: { minLength: 1, message: 'must be a client name, or "*" for any client' },
    additionalProperties: secret(),
    message: 'must be an object: client name (or "*") -> token',
  },
  claim: { type: 'string', enum: ['replace', 'refuse'], message: 'must be "replace" or "refuse"' },
  certNames: { type: 'boolean', message: 'must be true or false' },
  mqtt: {
    type: 'object',
    properties: {
      user: { type: 'string', minLength: 1, message: 'must be the MQTT user name this server logs in to the broker with' },
      password: secret(),
      ca: file('the CA to verify the MQTT broker with'),
      embed: { type: 'boolean', message: 'must be true or false' },
    } satisfies Record<keyof RawMqttServer, SchemaObject>,
    additionalProperties: false,
    message: 'must be an object like { "user": "hub", "password": { "env": "WEST_MQTT_PASSWORD" } } (doc/mqtt.md)',
  },
};

const clientProperties: Record<keyof RawClient, SchemaObject> = {
  nm: { type: 'string', minLength: 1, message: 'must be a non-empty string (the name presented to that server)' },
  ee: { type: 'string', enum: ['yes', 'no'], message: 'must be "yes" or "no"' },
  token: secret(),
  ca: file('the CA to verify the server with'),
  cert: file('this client\'s certificate'),
  key: file('this client\'s private key'),
  cost: integer(1, 1000, ' (what a route through this tunnel costs)'),
  connections: integer(1, 16, ' (tunnel connections to this server, one peer there)'),
  mqtt: {
    type: 'object',
    properties: {
      server: { type: 'string', minLength: 1, message: "must be the tunnel server's node name (its west.nm)" },
      user: { type: 'string', minLength: 1, message: 'must be the MQTT user name this client logs in to the broker with' },
      password: secret(),
    } satisfies Record<keyof RawMqttClient, SchemaObject>,
    required: ['server'],
    additionalProperties: false,
    message: 'must be an object like { "server": "hub", "password": { "env": "WEST_MQTT_PASSWORD" } } (doc/mqtt.md)',
  },
};

const mappingProperties: Record<keyof RawMapping, SchemaObject> = {
  ou: { type: 'string', format: 'http-url', message: 'must be an http:// or https:// URL' },
  ca: {
    type: 'array',
    items: { type: 'string', format: 'ip-or-cidr', message: 'must be an IP address or CIDR like "10.0.0.0/8"' },
    message: 'must be a list of IP addresses or CIDRs, like ["127.0.0.1", "10.0.0.0/8"]',
  },
};

const mapping: SchemaObject = {
  type: 'object',
  properties: mappingProperties,
  required: ['ou'],
  additionalProperties: false,
  message: 'must be an object like { "ou": "http://host:port/path" }',
};

const viaSchema: SchemaObject = {
  type: 'array',
  minItems: 1,
  items: { type: 'string', minLength: 1, message: 'must be a node name' },
  message: 'must be a list of node names: the path to the "en" node, first hop first',
};

const listener: SchemaObject = {
  type: 'object',
  properties: {
    ea: { type: 'string', format: 'ws-url', message: `must be ${TUNNEL_URL} (the tunnel server to reach)` },
    en: { type: 'string', minLength: 1, message: 'must be a non-empty string (the name of a connected peer)' },
    cert: file('the certificate chain of an https:// listener'),
    key: file('the private key of an https:// listener'),
    via: viaSchema,
    wazigate: cloudSchema(secret),
  } satisfies Record<'ea' | 'en' | 'cert' | 'key' | 'via' | 'wazigate', SchemaObject>,
  patternProperties: { '^/': mapping },
  additionalProperties: false,
  // strictRequired wants each required key declared beside it, hence the `true` schemas. A
  // wazigate listener has neither (checks.ts names whatever else it holds).
  oneOf: [
    { properties: { ea: true }, required: ['ea'], not: { properties: { wazigate: true }, required: ['wazigate'] } },
    { properties: { en: true }, required: ['en'], not: { properties: { wazigate: true }, required: ['wazigate'] } },
    { properties: { wazigate: true }, required: ['wazigate'] },
  ],
  message: {
    type: 'must be an object with "ea" or "en" and path mappings like "/px"',
    oneOf: 'needs exactly one of "ea" or "en"',
  },
};

const allowlist: SchemaObject = {
  type: 'array',
  items: { type: 'string', format: 'ip-or-cidr', message: 'must be an IP address or CIDR like "10.0.0.0/8"' },
  message: 'must be a list of IP addresses or CIDRs, like ["127.0.0.1", "10.0.0.0/8"]',
};

/** A `tcp://host:port` listener (doc/tcp.md): a target node and the address it connects to. */
const tcpListener: SchemaObject = {
  type: 'object',
  properties: {
    ea: { type: 'string', format: 'ws-url', message: `must be ${TUNNEL_URL} (the tunnel server to reach)` },
    en: { type: 'string', minLength: 1, message: 'must be a non-empty string (the name of a node of the mesh)' },
    via: viaSchema,
    to: { type: 'string', format: 'tcp-target', message: 'must be "host:port" (a host name, an IPv4 address or [IPv6], port 1-65535) that the far end connects to' },
    ca: allowlist,
  } satisfies Record<'ea' | 'en' | 'via' | 'to' | 'ca', SchemaObject>,
  required: ['to'],
  additionalProperties: false,
  oneOf: [
    { properties: { ea: true }, required: ['ea'] },
    { properties: { en: true }, required: ['en'] },
  ],
  message: {
    type: 'must be an object like { "en": "node", "to": "127.0.0.1:22" }',
    oneOf: 'needs exactly one of "ea" or "en"',
  },
};

const topProperties: Record<keyof RawConfig, SchemaObject> = {
  west: {
    type: 'object',
    properties: westProperties,
    required: ['nm'],
    additionalProperties: false,
    message: 'must be an object like { "nm": "node-name" }',
  },
  wsts: {
    type: 'object',
    properties: serverProperties,
    additionalProperties: false,
    message: 'must be an object like { "sp": "ws://0.0.0.0:9801" }',
  },
  wstc: {
    type: 'object',
    propertyNames: { format: 'ws-url', message: `must be ${TUNNEL_URL} naming a tunnel server` },
    additionalProperties: {
      type: 'object',
      properties: clientProperties,
      additionalProperties: false,
      message: 'must be an object like { "nm": "name", "ee": "yes" }',
    },
    message: 'must be an object keyed by tunnel server URL',
  },
  proxy: {
    type: 'object',
    propertyNames: {
      format: 'listener-key',
      message: 'must be a listener address "http://host:port" or "https://host:port" (port optional, host may be empty), or "tcp://host:port"',
    },
    patternProperties: { '^[Tt][Cc][Pp]://': tcpListener },
    additionalProperties: listener,
    message: 'must be an object keyed by listener address like "http://127.0.0.1:9911"',
  },
};

export const configSchema: SchemaObject = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://west.invalid/config.schema.json',
  title: 'west node config',
  type: 'object',
  properties: topProperties,
  required: ['west'],
  additionalProperties: false,
  message: 'must be a JSON object with a "west" section',
};

const succeeds = (parse: (text: string) => unknown) => (text: string): boolean => {
  try {
    return parse(text) !== undefined;
  } catch {
    return false;
  }
};

/** Compiles the schema; each call builds its own ajv instance (done once, by load.ts). */
export function compileConfigSchema(): ValidateFunction<RawConfig> {
  // verbose: errors then carry the failing value and the schema node with its `message`.
  const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
  ajv.addKeyword({ keyword: MESSAGE_KEYWORD, schemaType: ['string', 'object'] });
  ajv.addFormat('endpoint', { type: 'string', validate: succeeds((t) => parseEndpoint(t)) });
  ajv.addFormat('listener-key', { type: 'string', validate: (t: string) => parseListenerKey(t) !== undefined || parseTcpListenerKey(t) !== undefined });
  ajv.addFormat('tcp-target', { type: 'string', validate: succeeds(parseTcpTarget) });
  ajv.addFormat('ws-url', { type: 'string', validate: succeeds(parseTunnelUrl) });
  ajv.addFormat('http-url', { type: 'string', validate: succeeds(parseOutgoingUrl) });
  ajv.addFormat('ip-or-cidr', { type: 'string', validate: isIpOrCidr });
  ajv.addFormat('mqtt-url', { type: 'string', validate: (t) => parseBrokerUrl(t) !== undefined });
  ajv.addFormat('egress-entry', { type: 'string', validate: succeeds(parseEgressEntry) });
  return ajv.compile<RawConfig>(configSchema);
}
