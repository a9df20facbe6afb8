/**
 * West over MQTT: the topics a tunnel uses and what one MQTT message carries.
 *
 * A tunnel between client C and server S is one session with a fresh id, on two topics:
 * `west/S/C/<session>/up` (C to S) and `west/S/C/<session>/down` (S to C). The broker's ACL
 * lets user C publish only on `west/+/C/+/up` and read only `west/+/C/+/down`, so the client
 * name in a topic is the MQTT user that sent it (doc/mqtt.md).
 *
 * Every message starts with a kind byte and a sequence number (per session and direction,
 * from 0): a message the broker lost or reordered ends the tunnel instead of corrupting a
 * stream. Kind 0 carries west frames, packed as in a WebSocket message; kind 1 a control
 * message in JSON (the handshake, heartbeats, close); kind 2 a piece of a kind 0 message
 * that was split (more pieces follow, the last is kind 0), for brokers that cannot carry
 * large messages (mosquitto 2.0.11's WebSocket listener stalls on them).
 */
import { validNodeName } from '../handshake.js';

export const TOPIC_ROOT = 'west';
export const ENVELOPE_BYTES = 5;
export const KIND_FRAMES = 0;
export const KIND_CONTROL = 1;
export const KIND_PIECE = 2;

/** The handshake and the link's own messages; `hello` opens a session, `welcome`/`refused` answer it. */
export type Control =
  | { t: 'hello'; name: string; wire: number[]; features: string[]; window: number; token?: string }
  | { t: 'welcome'; name: string; wire: number; features: string[]; window: number }
  | { t: 'refused'; reason: string }
  | { t: 'ping' }
  | { t: 'pong' }
  | { t: 'close'; code: number; reason: string };

export type Envelope =
  | { kind: 'frames'; seq: number; data: Buffer }
  | { kind: 'piece'; seq: number; data: Buffer }
  | { kind: 'control'; seq: number; control: Control };

/** A (canonical) node name that can stand as one topic level: no MQTT wildcards or separators. */
export function topicSafeName(name: string): boolean {
  return validNodeName(name) && /^[A-Za-z0-9._:-]+$/.test(name);
}

/** A session id: 16 hex digits. */
export function validSessionId(id: string): boolean {
  return /^[0-9a-f]{16}$/.test(id);
}

export function upTopic(server: string, client: string, session: string): string {
  return `${TOPIC_ROOT}/${server}/${client}/${session}/up`;
}

export function downTopic(server: string, client: string, session: string): string {
  return `${TOPIC_ROOT}/${server}/${client}/${session}/down`;
}

/** What a server subscribes to: every client's up topics. */
export function serverFilter(server: string): string {
  return `${TOPIC_ROOT}/${server}/+/+/up`;
}

/** The levels of a session topic, or undefined when it is not one. */
export function parseTopic(topic: string): { server: string; client: string; session: string; dir: 'up' | 'down' } | undefined {
  const parts = topic.split('/');
  const [root, server = '', client = '', session = '', dir] = parts;
  if (parts.length !== 5 || root !== TOPIC_ROOT || (dir !== 'up' && dir !== 'down')) return undefined;
  if (!topicSafeName(server) || !topicSafeName(client) || !validSessionId(session)) return undefined;
  return { server, client, session, dir };
}

export function envelopeHead(kind: number, seq: number): Buffer {
  const head = Buffer.allocUnsafe(ENVELOPE_BYTES);
  head[0] = kind;
  head.writeUInt32BE(seq >>> 0, 1);
  return head;
}

export function encodeControl(seq: number, control: Control): Buffer {
  return Buffer.concat([envelopeHead(KIND_CONTROL, seq), Buffer.from(JSON.stringify(control))]);
}

/** Reads an envelope; throws on one that is not (a short message, an unknown kind, bad JSON). */
export function decodeEnvelope(message: Buffer): Envelope {
  if (message.length < ENVELOPE_BYTES) throw new Error(`MQTT message of ${message.length} bytes is shorter than its envelope`);
  const kind = message[0];
  const seq = message.readUInt32BE(1);
  const body = message.subarray(ENVELOPE_BYTES);
  if (kind === KIND_FRAMES) return { kind: 'frames', seq, data: body };
  if (kind === KIND_PIECE) return { kind: 'piece', seq, data: body };
  if (kind !== KIND_CONTROL) throw new Error(`unknown MQTT message kind ${String(kind)}`);
  if (body.length > 64 * 1024) throw new Error('control message too large');
  const parsed: unknown = JSON.parse(body.toString('utf8'));
  if (!isControl(parsed)) throw new Error('malformed control message');
  return { kind: 'control', seq, control: parsed };
}

function isControl(v: unknown): v is Control {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Record<string, unknown>;
  const str = (x: unknown): boolean => typeof x === 'string';
  const strs = (x: unknown): boolean => Array.isArray(x) && x.length <= 64 && x.every(str);
  const int = (x: unknown): boolean => Number.isInteger(x);
  switch (c.t) {
    case 'hello': return str(c.name) && Array.isArray(c.wire) && c.wire.length <= 16 && c.wire.every(int) && strs(c.features) && int(c.window) && (c.token === undefined || str(c.token));
    case 'welcome': return str(c.name) && int(c.wire) && strs(c.features) && int(c.window);
    case 'refused': return str(c.reason);
    case 'ping': case 'pong': return true;
    case 'close': return int(c.code) && str(c.reason);
    default: return false;
  }
}
