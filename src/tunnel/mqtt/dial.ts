/**
 * A tunnel client's dial over MQTT: its own broker connection, a fresh session id, a
 * subscription to the session's down topic, then a HELLO on its up topic; the server's
 * WELCOME makes the link, its refusal (or silence) fails the dial. The link owns the
 * connection: when either ends, so does the other.
 */
import { randomBytes } from 'node:crypto';
import { canonicalName, type ClientConfig } from '../../config/types.js';
import { OUR_FEATURES, type Feature } from '../features.js';
import { MAX_WINDOW, MIN_WINDOW, offeredSubprotocols, versionOf } from '../handshake.js';
import { BrokerConnection } from './connection.js';
import { decodeEnvelope, downTopic, encodeControl, upTopic, type Control } from './envelope.js';
import { brokerMessageLimit, MqttLink } from './link.js';

export interface MqttDialOptions {
  config: ClientConfig;
  recvWindow: number;
  connectTimeoutMs: number;
  wireVersion?: number | undefined;
}

export interface MqttDialed {
  link: MqttLink;
  /** The server's name, window, features and the wire version it picked. */
  peerName: string;
  window: number;
  features: ReadonlySet<Feature>;
  wire: number;
}

/**
 * A pending dial: `result` settles with the link or an Error whose message says why (a
 * refusal reads "server refused: ..."); `abort()` gives up and disconnects.
 */
export interface MqttDial {
  result: Promise<MqttDialed>;
  abort(): void;
}

export function dialMqtt(opts: MqttDialOptions): MqttDial {
  const { config } = opts;
  const mqtt = config.mqtt;
  if (!mqtt) throw new Error('dialMqtt: the tunnel has no mqtt settings');
  const server = canonicalName(mqtt.server);
  const name = canonicalName(config.name);
  const session = randomBytes(8).toString('hex');
  const conn = new BrokerConnection({
    url: config.url, user: mqtt.user, password: mqtt.password, ca: config.tlsMaterial?.ca,
    clientId: `west-${name}-${session}`, connectTimeoutMs: opts.connectTimeoutMs, reconnectMs: 0,
  });
  const up = upTopic(server, name, session);
  const down = downTopic(server, name, session);
  let aborted = false;
  // What follows the WELCOME may arrive in the same read, before the link exists: kept for it.
  let link: MqttLink | undefined;
  const early: Buffer[] = [];
  let answered = false;
  conn.on('message', (topic, payload) => {
    if (topic !== down || !answered) return;
    if (link && early.length === 0) link.deliver(payload);
    else early.push(payload);
  });

  const result = (async (): Promise<MqttDialed> => {
    try {
      await conn.whenConnected(opts.connectTimeoutMs);
      await conn.subscribe(down);
      const answer = await helloAnswer();
      if (answer.t === 'refused') throw new Error(`server refused: ${answer.reason}`);
      if (answer.t !== 'welcome') throw new Error(`server answered the HELLO with ${answer.t}`);
      const made = new MqttLink({ conn, sendTopic: up, remote: config.url, sentSeq: 1, recvSeq: 1, maxMessage: brokerMessageLimit(config.url) });
      conn.on('lost', (reason) => made.lost(1006, reason));
      made.once('close', () => { void conn.end(); });
      link = made;
      // Delivered once the session listens (it is made right after this resolves).
      setImmediate(() => {
        for (let m = early.shift(); m; m = early.shift()) made.deliver(m);
      });
      const window = answer.window >= MIN_WINDOW && answer.window <= MAX_WINDOW ? answer.window : MIN_WINDOW;
      return { link: made, peerName: answer.name, window, features: new Set(OUR_FEATURES.filter((f) => answer.features.includes(f))), wire: answer.wire };
    } catch (err) {
      await conn.end();
      throw err;
    }
  })();

  /** Publishes the HELLO and waits for the first message on the down topic. */
  function helloAnswer(): Promise<Control> {
    return new Promise((resolve, reject) => {
      const done = (err: Error | undefined, c?: Control): void => {
        clearTimeout(timer);
        conn.off('message', onMessage);
        conn.off('lost', onLost);
        conn.off('ended', onEnded);
        if (err) reject(err); else if (c) resolve(c);
      };
      const onMessage = (topic: string, payload: Buffer): void => {
        if (topic !== down) return;
        try {
          const e = decodeEnvelope(payload);
          if (e.kind !== 'control' || e.seq !== 0) throw new Error('the server answered with something other than a WELCOME');
          answered = true;
          done(undefined, e.control);
        } catch (err) {
          done(err instanceof Error ? err : new Error(String(err)));
        }
      };
      const onLost = (reason: string): void => done(new Error(reason));
      // abort() ends the connection: no answer can come, and the connect timeout is not to be waited out.
      const onEnded = (): void => done(new Error('dial aborted'));
      const timer = setTimeout(() => done(new Error(
        `no answer from tunnel server ${server} through the broker within ${opts.connectTimeoutMs / 1000} s (is it connected, and does the broker's ACL let this user publish on ${up}?)`,
      )), opts.connectTimeoutMs);
      conn.on('message', onMessage);
      conn.on('lost', onLost);
      conn.on('ended', onEnded);
      const wire = offeredSubprotocols(opts.wireVersion).map((p) => versionOf(p) ?? 0);
      conn.publish(up, encodeControl(0, {
        t: 'hello', name: config.name, wire, features: [...OUR_FEATURES], window: opts.recvWindow,
        ...(config.token !== undefined ? { token: config.token } : {}),
      }));
      if (aborted) done(new Error('dial aborted'));
    });
  }

  return {
    result,
    abort: () => {
      aborted = true;
      void conn.end();
    },
  };
}
