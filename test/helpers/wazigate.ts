/**
 * For the wazigate tests: a reference encoder/decoder written from the facts of the format
 * (not from src/wazigate), a mosquitto with the ACL doc/wazigate.md documents, MQTT clients
 * that play a gateway or the cloud, and raw HTTP requests (to see exactly what was written).
 */
import net from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import { startBroker, type Broker } from './mosquitto.js';
import { waitFor } from './net.js';

/** A field: 3-byte big-endian length, then the bytes. */
export function refField(bytes: Buffer | string): Buffer {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return Buffer.concat([Buffer.from([b.length >> 16, (b.length >> 8) & 0xff, b.length & 0xff]), b]);
}

/** Go's json.Marshal of an http.Header whose keys are already canonical: sorted, HTML characters escaped. */
export function refHeaders(h: Record<string, string[]>): Buffer {
  const sorted: Record<string, string[]> = {};
  for (const k of Object.keys(h).sort()) sorted[k] = h[k] ?? [];
  return Buffer.from(JSON.stringify(sorted).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026'));
}

export function refRequest(method: string, uri: string, headers: Record<string, string[]>, body: Buffer): Buffer {
  return Buffer.concat([refField(method), refField(uri), refField(refHeaders(headers)), refField(body)]);
}

export function refResponse(status: number, headers: Record<string, string[]>, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([status >> 8, status & 0xff]), refField(refHeaders(headers)), refField(body)]);
}

function readFields(buf: Buffer, at: number, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const len = (buf[at]! << 16) + (buf[at + 1]! << 8) + buf[at + 2]!;
    out.push(buf.subarray(at + 3, at + 3 + len));
    at += 3 + len;
  }
  if (at !== buf.length) throw new Error(`reference decoder: ${buf.length - at} bytes left over`);
  return out;
}

export function refDecodeResponse(buf: Buffer): { status: number; headers: Record<string, string[]>; headersJson: Buffer; body: Buffer } {
  const [h = Buffer.alloc(0), body = Buffer.alloc(0)] = readFields(buf, 2, 2);
  return { status: buf.readUInt16BE(0), headers: JSON.parse(h.toString()) as Record<string, string[]>, headersJson: h, body };
}

export function refDecodeRequest(buf: Buffer): { method: string; uri: string; headers: Record<string, string[]>; body: Buffer } {
  const [m = Buffer.alloc(0), u = Buffer.alloc(0), h = Buffer.alloc(0), body = Buffer.alloc(0)] = readFields(buf, 0, 4);
  return { method: m.toString(), uri: u.toString(), headers: JSON.parse(h.toString()) as Record<string, string[]>, body };
}

/** Users of the test broker: the cloud, gateways (user name = gateway ID) and a spy that reads every request. */
export const USERS = {
  cloud: 'cloud-pw',
  'gw-a': 'a-pw',
  'gw-b': 'b-pw',
  'gw-t': 't-pw',
  'gw-h': 'h-pw',
  spy: 'spy-pw',
} as const;

/** The ACL of doc/wazigate.md#broker-acls, with a spy allowed to read requests (for the tests only). */
export async function startWazigateBroker(dir: string): Promise<Broker> {
  return startBroker(dir, {
    patterns: ['pattern read devices/%u/tunnel-down/+', 'pattern write devices/%u/tunnel-up/+'],
    users: Object.entries(USERS).map(([name, password]) => ({
      name, password,
      acl: name === 'cloud' ? ['topic write devices/+/tunnel-down/+', 'topic read devices/+/tunnel-up/+']
        : name === 'spy' ? ['topic read devices/+/tunnel-down/+'] : [],
    })),
  });
}

/** An MQTT client of the test broker that keeps what it receives. */
export class TestClient {
  readonly got: { topic: string; payload: Buffer }[] = [];
  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload) => this.got.push({ topic, payload: Buffer.from(payload) }));
  }

  static async connect(broker: Broker, user: keyof typeof USERS, subscribe: string[] = []): Promise<TestClient> {
    const client = await connectAsync(broker.url, { username: user, password: USERS[user], reconnectPeriod: 0, protocolVersion: 4 });
    const c = new TestClient(client);
    for (const topic of subscribe) await client.subscribeAsync(topic, { qos: 0 });
    return c;
  }

  async next(match: (topic: string) => boolean, timeoutMs = 10_000): Promise<{ topic: string; payload: Buffer }> {
    return waitFor('an MQTT message', () => {
      const i = this.got.findIndex((m) => match(m.topic));
      return i < 0 ? undefined : this.got.splice(i, 1)[0];
    }, timeoutMs);
  }

  async publish(topic: string, payload: Buffer): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 0 });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** Writes `text` (and `body`) to a listener and returns everything it answers until it closes. */
export function rawHttp(port: number, head: string, body?: Buffer, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new Error(`no answer to ${head.split('\r\n')[0]} within ${timeoutMs} ms`));
    });
    socket.write(head);
    if (body) socket.write(body);
  });
}

/** The status of a raw answer. */
export function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
}
