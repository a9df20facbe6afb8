/**
 * One connection to an MQTT broker (the `mqtt` client), as west uses it: QoS 0 publishes in
 * order, nothing queued while disconnected (a tunnel's frames are worthless on a new broker
 * connection), the bytes not yet written counted for back-pressure, and incoming messages
 * handed on by topic.
 */
import { EventEmitter } from 'node:events';
import type { IClientOptions, MqttClient } from 'mqtt';

export interface BrokerConnectionOptions {
  /** `mqtt://`, `mqtts://`, `ws://` or `wss://` broker URL. */
  url: string;
  user?: string | undefined;
  password?: string | undefined;
  clientId: string;
  /** CA to verify an `mqtts://`/`wss://` broker with (default: the system's). */
  ca?: Buffer | undefined;
  connectTimeoutMs: number;
  /** Reconnect by itself after this many ms (the server's connection); 0: never (a client redials). */
  reconnectMs: number;
  /** With reconnectMs: also after the broker refused us (its password file may be fixed meanwhile). */
  reconnectOnRefusal?: boolean;
}

export interface BrokerConnectionEvents {
  connect: [];
  /** The connection to the broker is gone (it may come back when reconnectMs > 0). */
  lost: [reason: string];
  message: [topic: string, payload: Buffer];
  /** The broker refused us (credentials) or the connection failed. */
  failed: [reason: string];
  /** end() was called. */
  ended: [];
}

export class BrokerConnection extends EventEmitter<BrokerConnectionEvents> {
  readonly url: string;
  /** Bytes handed to the client whose write has not completed. */
  queuedBytes = 0;
  /** Undefined until the `mqtt` package has loaded (see `ready`). */
  private client: MqttClient | undefined;
  /**
   * The client, once the `mqtt` package is loaded: it is imported on first use, not when the
   * node starts, so nodes without an MQTT tunnel (most) do not pay its start-up time and memory.
   * Undefined when end() came first or the package could not be loaded.
   */
  private readonly ready: Promise<MqttClient | undefined>;
  private ended = false;

  constructor(opts: BrokerConnectionOptions) {
    super();
    this.url = opts.url;
    const options: IClientOptions = {
      clientId: opts.clientId,
      protocolVersion: 4,
      clean: true,
      connectTimeout: opts.connectTimeoutMs,
      reconnectPeriod: opts.reconnectMs,
      // After a refusal (bad credentials) retrying at once helps nobody.
      reconnectOnConnackError: opts.reconnectOnRefusal === true,
      queueQoSZero: false,
      resubscribe: true,
      keepalive: 30,
      ...(opts.user !== undefined ? { username: opts.user } : {}),
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      ...(opts.ca ? { ca: opts.ca } : {}),
      // Never switched off: an mqtts:// or wss:// broker is verified.
      rejectUnauthorized: true,
    };
    this.ready = import('mqtt').then(({ connect }) => {
      if (this.ended) return undefined;
      const client = connect(opts.url, options);
      this.client = client;
      client.on('connect', () => {
        // One 'drain' listener per publish the socket could not take at once: many may wait.
        client.stream.setMaxListeners(0);
        this.emit('connect');
      });
      client.on('message', (topic, payload) => this.emit('message', topic, payload));
      client.on('error', (err) => this.emit('failed', err.message));
      client.on('close', () => {
        this.queuedBytes = 0;
        if (!this.ended) this.emit('lost', 'connection to the MQTT broker closed');
      });
      return client;
    }, (err: unknown) => {
      this.emit('failed', `cannot load the MQTT client: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
  }

  get connected(): boolean {
    return this.client?.connected === true && !this.ended;
  }

  /** Resolves once connected; rejects with the broker's refusal, or after `ms`. */
  whenConnected(ms: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.off('connect', onConnect);
        this.off('failed', onFailed);
        this.off('lost', onFailed);
        this.off('ended', onEnded);
        if (err) reject(err); else resolve();
      };
      const onConnect = (): void => done();
      const onFailed = (reason: string): void => done(new Error(`MQTT broker ${this.url}: ${reason}`));
      const onEnded = (): void => done(new Error('disconnected'));
      const timer = setTimeout(() => done(new Error(`MQTT broker ${this.url} did not answer within ${ms / 1000} s`)), ms);
      this.on('ended', onEnded);
      this.on('connect', onConnect);
      this.on('failed', onFailed);
      this.on('lost', onFailed);
    });
  }

  /** Subscribes at QoS 0; rejects when the broker refuses (its ACL). */
  async subscribe(filter: string): Promise<void> {
    const client = await this.ready;
    if (!client) throw new Error(`MQTT broker ${this.url}: disconnected`);
    const granted = await client.subscribeAsync(filter, { qos: 0 });
    if (granted.some((g) => g.qos === 128)) throw new Error(`MQTT broker ${this.url} refused the subscription to ${filter} (its ACL)`);
  }

  async unsubscribe(filter: string): Promise<void> {
    if (this.connected) await this.client?.unsubscribeAsync(filter).catch(() => undefined);
  }

  /** Publishes at QoS 0; `cb` runs once the socket has taken it. */
  publish(topic: string, payload: Buffer, cb?: () => void): void {
    const client = this.client;
    if (!client || !this.connected) {
      cb?.();
      return;
    }
    this.queuedBytes += payload.length;
    client.publish(topic, payload, { qos: 0 }, () => {
      this.queuedBytes = Math.max(0, this.queuedBytes - payload.length);
      cb?.();
    });
  }

  /** Disconnects (idempotent): what was published goes first. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.emit('ended');
    const client = await this.ready;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { client.end(true); resolve(); }, 1000);
      timer.unref();
      client.end(false, {}, () => { clearTimeout(timer); resolve(); });
    });
  }
}
