/**
 * Cross-checks of tunnels over MQTT (`wsts.mqtt`, `wstc[...].mqtt`): a broker URL comes with
 * its MQTT settings, node names fit in a topic level, and the embedded broker stays on
 * loopback. See doc/mqtt.md.
 */
import { isRecord } from '../json.js';
import { isIpOrCidr, isMqttScheme, parseTunnelUrl, tunnelUrlIdentity } from './endpoint.js';
import type { Finding } from './messages.js';
import { canonicalName } from './types.js';

type Json = Record<string, unknown>;

const TOPIC_NAME = /^[A-Za-z0-9._:-]{1,255}$/;

/** A node name as it stands in a topic: canonical (`ws://` and a trailing `/` dropped). */
const topicName = (name: string): boolean => TOPIC_NAME.test(canonicalName(name));
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function section(root: Json, key: string): Json {
  const value = root[key];
  return isRecord(value) ? value : {};
}

/** Whether the tunnel server binds `sp` itself: a WebSocket server, or an embedded broker. */
export function bindsServer(wsts: Json): boolean {
  const mqtt = wsts.mqtt;
  return !isRecord(mqtt) || mqtt.embed === true;
}

const NAME_RULE = 'must fit in one MQTT topic level to run a tunnel over MQTT: letters, digits, ".", "_", ":" and "-" only (after a ws:// prefix)';

export function mqttFindings(root: Json): Finding[] {
  const findings: Finding[] = [];
  const wsts = section(root, 'wsts');
  const nm = section(root, 'west').nm;
  const sp = typeof wsts.sp === 'string' ? parseTunnelUrl(wsts.sp) : undefined;
  const mqtt = wsts.mqtt;
  if (sp && isMqttScheme(sp) && !isRecord(mqtt)) {
    findings.push({ at: ['wsts', 'sp'], message: 'names an MQTT broker: add wsts.mqtt (its user and password; doc/mqtt.md)' });
  }
  if (isRecord(mqtt)) {
    if (typeof wsts.sp !== 'string') findings.push({ at: ['wsts', 'mqtt'], message: "needs wsts.sp: the MQTT broker's URL, like \"mqtt://broker:1883\"" });
    if (typeof nm === 'string' && !topicName(nm)) findings.push({ at: ['west', 'nm'], message: NAME_RULE });
    if (mqtt.embed === true && sp && (sp.protocol !== 'mqtt:' || !LOOPBACK.has(sp.hostname))) {
      findings.push({ at: ['wsts', 'mqtt', 'embed'], message: 'runs a broker without passwords: wsts.sp must then be mqtt:// on a loopback address, like "mqtt://127.0.0.1:1883"' });
    }
    if (mqtt.ca !== undefined && sp && sp.protocol !== 'mqtts:' && sp.protocol !== 'wss:') {
      findings.push({ at: ['wsts', 'mqtt', 'ca'], message: 'is only used for an mqtts:// or wss:// broker' });
    }
    const ca = Array.isArray(wsts.ca) ? wsts.ca : [];
    if (ca.some((entry) => typeof entry === 'string' && isIpOrCidr(entry))) {
      findings.push({ at: ['wsts', 'ca'], message: 'lists client addresses, which a tunnel server over MQTT cannot see (every client comes through the broker): list names, and let the broker\'s ACL and wsts.tokens decide' });
    }
  }
  const brokers = new Set<string>();
  for (const [key, entry] of Object.entries(section(root, 'wstc'))) {
    const url = parseTunnelUrl(key);
    if (!url || !isRecord(entry)) continue;
    const over = entry.mqtt;
    if (!isRecord(over)) {
      if (isMqttScheme(url)) findings.push({ at: ['wstc', key], message: 'names an MQTT broker: add "mqtt": { "server": "<tunnel server\'s name>", ... } (doc/mqtt.md)' });
      continue;
    }
    brokers.add(tunnelUrlIdentity(url));
    if (typeof over.server === 'string' && !topicName(over.server)) findings.push({ at: ['wstc', key, 'mqtt', 'server'], message: NAME_RULE });
    const presented = typeof entry.nm === 'string' ? entry.nm : nm;
    if (typeof presented === 'string' && !topicName(presented)) {
      findings.push({ at: typeof entry.nm === 'string' ? ['wstc', key, 'nm'] : ['west', 'nm'], message: NAME_RULE });
    }
  }
  for (const [key, listener] of Object.entries(section(root, 'proxy'))) {
    if (!isRecord(listener) || typeof listener.ea !== 'string') continue;
    const url = parseTunnelUrl(listener.ea);
    if (url && isMqttScheme(url) && !brokers.has(tunnelUrlIdentity(url))) {
      findings.push({ at: ['proxy', key, 'ea'], message: 'names an MQTT broker: add a wstc entry for it with "mqtt": { "server": ... } (doc/mqtt.md)' });
    }
  }
  return findings;
}

