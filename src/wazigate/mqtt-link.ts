/**
 * One wazigate side's connection to its MQTT broker: connects with a user name and password,
 * subscribes, hands messages over, and when refused or dropped connects again with back-off
 * (tunnel/backoff.ts) instead of mqtt.js's fixed reconnect period, so a wrong password is
 * logged clearly and does not hammer the broker.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ErrorWithReasonCode, MqttClient } from 'mqtt';
import type { WazigateBroker } from '../config/types.js';
import type { Logger } from '../log.js';
import { Backoff } from '../tunnel/backoff.js';

/** A connection that lasted this long starts the back-off over. */
const STABLE_MS = 10_000;

/** MQTT 3.1.1 CONNACK return codes 4 and 5; MQTT 5's 134 and 135: the broker refused who we are. */
const REFUSED_CODES = new Set([4, 5, 134, 135]);

export interface MqttLinkOptions {
  config: WazigateBroker;
  /** Which side this is, for the log: `cloud proxy["http://…"]` or `gateway <id>`. */
  side: string;
  /** What the client ID starts with; a random suffix keeps two connections apart. */
  clientIdPrefix: string;
  subscribe: string;
  connectTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  log: Logger;
}

export interface MqttLinkEvents {
  message: [topic: string, payload: Buffer];
}

export class MqttLink extends EventEmitter<MqttLinkEvents> {
  connected = false;
  connects = 0;
  lastError: string | undefined;
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The `mqtt` package is being loaded for a dial (it is imported on first use, not at start-up). */
  private loading = false;
  private closed = false;
  private readonly backoff: Backoff;

  constructor(private readonly opts: MqttLinkOptions) {
    super();
    this.backoff = new Backoff(opts.reconnectMinMs, opts.reconnectMaxMs);
  }

  get broker(): string {
    return this.opts.config.broker;
  }

  start(): void {
    if (!this.closed && !this.client && !this.timer && !this.loading) this.dial();
  }

  /** Publishes at QoS 0; false when there is no connection to publish on. */
  publish(topic: string, payload: Buffer): boolean {
    const client = this.client;
    if (!client || !this.connected) return false;
    client.publish(topic, payload, { qos: 0, retain: false });
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const client = this.client;
    this.client = undefined;
    this.connected = false;
    if (client) await client.endAsync(true).catch(() => undefined);
  }

  private dial(): void {
    this.timer = undefined;
    this.loading = true;
    import('mqtt').then(({ connect }) => {
      this.loading = false;
      if (!this.closed) this.connectWith(connect);
    }, (err: unknown) => {
      this.loading = false;
      this.lastError = `cannot load the MQTT client: ${err instanceof Error ? err.message : String(err)}`;
      this.opts.log.error('wazigate.redial', { side: this.opts.side, broker: this.opts.config.broker, error: this.lastError });
    });
  }

  private connectWith(connect: typeof import('mqtt').connect): void {
    const { config, log, side } = this.opts;
    const client = connect(config.broker, {
      clientId: `${this.opts.clientIdPrefix}-${randomBytes(4).toString('hex')}`,
      ...(config.user !== undefined ? { username: config.user } : {}),
      ...(config.password !== undefined ? { password: config.password } : {}),
      protocolVersion: 4, clean: true, keepalive: 30,
      reconnectPeriod: 0, connectTimeout: this.opts.connectTimeoutMs,
    });
    this.client = client;
    let since = 0;
    let refused = false;
    client.on('connect', () => {
      since = Date.now();
      client.subscribe(this.opts.subscribe, { qos: 0 }, (err, granted) => {
        if (client !== this.client) return;
        const denied = err !== null ? err.message : granted?.some((g) => g.qos === 128) ? 'granted QoS 128 (failure)' : undefined;
        if (denied !== undefined) {
          this.lastError = `subscription to ${this.opts.subscribe} refused: ${denied}`;
          log.error('wazigate.subscribe_refused', { side, broker: config.broker, user: config.user, topic: this.opts.subscribe, error: denied, hint: 'the broker ACL must let this user read this topic (doc/wazigate.md#broker-acls)' });
          client.end(true);
          return;
        }
        this.connected = true;
        this.connects++;
        this.lastError = undefined;
        log.info('wazigate.connected', { side, broker: config.broker, user: config.user, topic: this.opts.subscribe });
      });
    });
    client.on('message', (topic, payload) => {
      if (client === this.client) this.emit('message', topic, payload);
    });
    client.on('error', (err: Error | ErrorWithReasonCode) => {
      const code = 'code' in err && typeof err.code === 'number' ? err.code : undefined;
      if (code !== undefined && REFUSED_CODES.has(code)) refused = true;
      this.lastError = err.message;
    });
    client.once('close', () => {
      if (client !== this.client || this.closed) return;
      client.removeAllListeners('message');
      client.end(true);
      this.client = undefined;
      if (this.connected) log.warn('wazigate.disconnected', { side, broker: config.broker, error: this.lastError });
      this.connected = false;
      if (since > 0 && Date.now() - since >= STABLE_MS) this.backoff.reset();
      const delayMs = this.backoff.next();
      const fields = { side, broker: config.broker, user: config.user, delayMs, error: this.lastError ?? 'connection closed' };
      if (refused) log.error('wazigate.redial', { ...fields, hint: 'the broker refused this user name or password' });
      else if (this.backoff.attempts === 1) log.warn('wazigate.redial', fields);
      else log.info('wazigate.redial', fields);
      this.timer = setTimeout(() => this.dial(), delayMs);
      this.timer.unref();
    });
  }
}
