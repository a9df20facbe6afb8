/**
 * `wsts.mqtt.embed`: an MQTT broker (aedes) inside the tunnel server's process, on the
 * loopback `sp` names, so a tunnel over MQTT can be tried without installing one. It takes
 * any user name without a password (west's own tokens still decide who is admitted) and
 * applies west's topic ACL (acl.ts) by user name. Production runs a real broker (doc/mqtt.md).
 */
import net from 'node:net';
import type { Aedes, Client } from 'aedes';
import type { ServerConfig } from '../../config/types.js';
import type { Logger } from '../../log.js';
import { aclAllows } from './acl.js';

export class EmbeddedBroker {
  private readonly config: ServerConfig;
  private readonly log: Logger;
  private broker: Aedes | undefined;
  private readonly server = net.createServer();
  private readonly users = new WeakMap<Client, string>();

  constructor(config: ServerConfig, log: Logger) {
    this.config = config;
    this.log = log;
  }

  get port(): number | undefined {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : undefined;
  }

  async listen(): Promise<void> {
    const users = this.users;
    // Loaded here, not at start-up: only a hub with `wsts.mqtt.embed` runs a broker.
    const { Aedes: AedesBroker } = await import('aedes');
    const broker = await AedesBroker.createBroker({
      authenticate: (client, username, _password, done) => {
        if (!username) {
          done(Object.assign(new Error('a user name is required'), { returnCode: 4 }), false);
          return;
        }
        users.set(client, username);
        done(null, true);
      },
      authorizePublish: (client, packet, done) => {
        const user = client ? users.get(client) ?? '' : '';
        done(client === null || aclAllows(user, packet.topic, 'write') ? null : new Error(`${user} may not publish on ${packet.topic}`));
      },
      authorizeSubscribe: (client, sub, done) => {
        const user = users.get(client) ?? '';
        done(null, aclAllows(user, sub.topic, 'read') ? sub : null);
      },
    });
    this.broker = broker;
    this.server.on('connection', (socket) => broker.handle(socket));
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host || '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.log.info('tunnel.server_listening', { url: this.config.url, port: this.port, embeddedBroker: true });
  }

  async close(): Promise<void> {
    const broker = this.broker;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => {
      if (!this.server.listening) { resolve(); return; }
      this.server.close(() => resolve());
    });
  }
}
