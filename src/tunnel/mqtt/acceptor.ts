/**
 * The tunnel server's side of MQTT: one broker connection subscribed to every client's up
 * topics (`west/<server>/+/+/up`). A message on a session this server does not know is a
 * HELLO opening one, or is dropped: frames forged into a topic, or left over from a session
 * that ended, never reach a stream. A HELLO is judged as an upgrade is (tokens, names,
 * claims; TunnelServer decides), answered on the session's down topic, and becomes a session.
 */
import { randomBytes } from 'node:crypto';
import { canonicalName, type ServerConfig } from '../../config/types.js';
import type { Logger } from '../../log.js';
import { OUR_FEATURES, type Feature } from '../features.js';
import { MAX_WINDOW, MIN_WINDOW } from '../handshake.js';
import { PROTOCOL_VERSION } from '../frame.js';
import { BrokerConnection } from './connection.js';
import { decodeEnvelope, downTopic, encodeControl, parseTopic, serverFilter, type Control } from './envelope.js';
import { brokerMessageLimit, MqttLink } from './link.js';

/** What a client asked for in its HELLO, once admitted. */
export interface MqttHello {
  name: string;
  wire: number;
  features: ReadonlySet<Feature>;
  window: number;
}

export interface MqttAcceptorHost {
  readonly localName: string;
  readonly log: Logger;
  config(): ServerConfig;
  /** Newest wire version accepted, and the window this side grants. */
  wireVersion(): number;
  recvWindow(): number;
  connectTimeoutMs: number;
  /** Why `name` with `token` is not admitted (for the log), or undefined when it is. */
  refusal(name: string, token: string | undefined): string | undefined;
  /** `west.authHook`'s say on a client that passed `refusal` (absent: no hook is configured). */
  authorize(name: string): HelloDecision | Promise<HelloDecision> | undefined;
  /** Takes a session's link once its HELLO is answered. */
  accept(link: MqttLink, hello: MqttHello): void;
}

/** The auth hook's answer about a client (server.ts's TunnelDecision). */
export interface HelloDecision {
  allow: boolean;
  reason: string;
}

/** HELLOs judged per client name in a HELLO_WINDOW_MS; more are dropped unanswered. */
export const HELLO_BURST = 5;
const HELLO_WINDOW_MS = 10_000;

type HelloControl = Extract<Control, { t: 'hello' }>;

export class MqttAcceptor {
  private readonly host: MqttAcceptorHost;
  private conn: BrokerConnection | undefined;
  /** Live links by `client/session`. */
  private readonly links = new Map<string, MqttLink>();
  /** Sessions whose HELLO waits on the auth hook: a repeated HELLO is not judged twice. */
  private readonly judging = new Set<string>();
  /** HELLOs judged per client name in the current window, and when the window began. */
  private hellos = new Map<string, number>();
  private helloWindowStart = Date.now();
  private dropped = 0;

  constructor(host: MqttAcceptorHost) {
    this.host = host;
  }

  /**
   * Connects and subscribes. A broker that is down or refuses us does not stop the node (start-up
   * order must not matter): it is logged, and the connection keeps trying every second.
   */
  async start(): Promise<void> {
    const { url, mqtt } = this.host.config();
    if (!mqtt) throw new Error('MqttAcceptor: wsts.mqtt is not set');
    const conn = new BrokerConnection({
      url, user: mqtt.user, password: mqtt.password, ca: mqtt.ca,
      clientId: `west-${canonicalName(this.host.localName)}-${randomBytes(4).toString('hex')}`,
      connectTimeoutMs: this.host.connectTimeoutMs,
      reconnectMs: 1000,
      reconnectOnRefusal: true,
    });
    this.conn = conn;
    const log = this.host.log;
    let lastFailure = '';
    conn.on('message', (topic, payload) => this.onMessage(topic, payload));
    conn.on('failed', (reason) => {
      // Once per reason, not once per retry.
      if (reason !== lastFailure) log.error('mqtt.broker_error', { broker: url, error: reason });
      lastFailure = reason;
    });
    conn.on('lost', (reason) => {
      log.warn('mqtt.broker_lost', { broker: url, reason, sessions: this.links.size });
      // The sessions' messages went with the broker: end them, their streams fail with tunnel_lost.
      for (const link of [...this.links.values()]) link.lost(1006, 'MQTT broker connection lost');
    });
    conn.on('connect', () => {
      lastFailure = '';
      if (this.conn === conn) void this.subscribe(conn);
    });
    await conn.whenConnected(this.host.connectTimeoutMs).catch(() => undefined);
  }

  private async subscribe(conn: BrokerConnection): Promise<void> {
    const filter = serverFilter(canonicalName(this.host.localName));
    try {
      await conn.subscribe(filter);
      this.host.log.info('mqtt.server_subscribed', { broker: conn.url, topics: filter });
    } catch (err) {
      this.host.log.error('mqtt.broker_error', { broker: conn.url, error: err instanceof Error ? err.message : String(err) });
    }
  }

  async close(): Promise<void> {
    for (const link of [...this.links.values()]) link.lost(1001, 'server shutting down');
    await this.conn?.end();
  }

  private onMessage(topic: string, payload: Buffer): void {
    const at = parseTopic(topic);
    if (at?.dir !== 'up' || at.server !== canonicalName(this.host.localName)) return;
    const key = `${at.client}/${at.session}`;
    const link = this.links.get(key);
    if (link) {
      link.deliver(payload);
      return;
    }
    let hello: HelloControl | undefined;
    try {
      const envelope = decodeEnvelope(payload);
      if (envelope.kind === 'control' && envelope.control.t === 'hello' && envelope.seq === 0) hello = envelope.control;
    } catch { /* not a HELLO: dropped below */ }
    if (!hello) {
      // Frames for a session this server does not have: forged, or late from one that ended.
      this.dropped++;
      this.host.log.debug('mqtt.unexpected_session', { client: at.client, session: at.session, dropped: this.dropped });
      return;
    }
    if (!this.withinBurst(at.client)) return;
    this.onHello(at.client, at.session, hello);
  }

  /** At most HELLO_BURST HELLOs per client name per window: a flood costs a counter, not a reply each. */
  private withinBurst(client: string): boolean {
    const now = Date.now();
    if (now - this.helloWindowStart > HELLO_WINDOW_MS) {
      this.hellos = new Map();
      this.helloWindowStart = now;
    }
    const n = (this.hellos.get(client) ?? 0) + 1;
    this.hellos.set(client, n);
    if (n === HELLO_BURST + 1) this.host.log.warn('mqtt.hello_flood', { client, limit: HELLO_BURST, windowS: HELLO_WINDOW_MS / 1000 });
    return n <= HELLO_BURST;
  }

  private onHello(client: string, session: string, hello: HelloControl): void {
    const conn = this.conn;
    if (!conn) return;
    const down = downTopic(canonicalName(this.host.localName), client, session);
    const refuse = (reason: string, answer: string): void => {
      this.host.log.warn('tunnel.client_refused', { transport: 'mqtt', client, reason });
      conn.publish(down, encodeControl(0, { t: 'refused', reason: answer }));
    };
    // The broker's ACL lets only user `client` publish under `client`: the name must be it.
    if (canonicalName(hello.name) !== canonicalName(client)) {
      refuse(`HELLO names ${JSON.stringify(hello.name)} on the topic of ${client}`, 'the name in the HELLO is not the one in its topic');
      return;
    }
    const max = this.host.wireVersion();
    const wire = Math.max(...hello.wire.filter((v) => v >= PROTOCOL_VERSION && v <= max), 0);
    if (wire === 0) {
      refuse(`client speaks wire versions ${hello.wire.join(', ')}, none of ${PROTOCOL_VERSION}..${max}`, 'no wire version in common');
      return;
    }
    const denied = this.host.refusal(client, hello.token);
    if (denied) {
      refuse(denied, 'Not admitted to this west tunnel server. Its operator can see why in its log.');
      return;
    }
    const welcome = (): void => {
      const link = new MqttLink({ conn, sendTopic: down, remote: conn.url, sentSeq: 1, recvSeq: 1, maxMessage: brokerMessageLimit(conn.url) });
      const key = `${client}/${session}`;
      this.links.set(key, link);
      link.once('close', () => { if (this.links.get(key) === link) this.links.delete(key); });
      conn.publish(down, encodeControl(0, {
        t: 'welcome', name: this.host.localName, wire, features: [...OUR_FEATURES], window: this.host.recvWindow(),
      }));
      const window = hello.window >= MIN_WINDOW && hello.window <= MAX_WINDOW ? hello.window : MIN_WINDOW;
      const features = new Set(OUR_FEATURES.filter((f) => hello.features.includes(f)));
      this.host.accept(link, { name: client, wire, features, window });
    };
    const verdict = this.host.authorize(client);
    if (verdict === undefined) {
      welcome();
      return;
    }
    const key = `${client}/${session}`;
    if (this.judging.has(key)) return;
    this.judging.add(key);
    const decided = (d: HelloDecision): void => {
      this.judging.delete(key);
      // The broker connection went (or was replaced) while the hook was asked: the client redials.
      if (this.conn !== conn) return;
      if (!d.allow) {
        refuse(`name ${client}: ${d.reason} (west.authHook)`, 'Not admitted to this west tunnel server. Its operator can see why in its log.');
        return;
      }
      welcome();
    };
    if (verdict instanceof Promise) void verdict.then(decided);
    else decided(verdict);
  }
}
