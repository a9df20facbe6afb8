/**
 * Debian's mosquitto as a test broker: its own process on free loopback ports, a generated
 * config with anonymous access off, a password file and an ACL file, never the system service.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from './net.js';
import { missingPrograms, runProgram, startDaemon, type Daemon } from './daemon.js';

export interface MqttUser {
  readonly name: string;
  readonly password: string;
  /** ACL lines for this user, as mosquitto writes them: `topic readwrite west/#`, `topic read x/+`. */
  readonly acl: readonly string[];
}

export interface BrokerOptions {
  readonly users: readonly MqttUser[];
  /** ACL `pattern` lines that apply to every user (`%u` is the user name, `%c` the client id). */
  readonly patterns?: readonly string[];
  /** Also listen for MQTT over WebSocket (`ws://127.0.0.1:<wsPort>`). */
  readonly websockets?: boolean;
  /** Reuse these ports (a restarted broker keeps its address). */
  readonly port?: number;
  readonly wsPort?: number;
}

export interface Broker {
  /** `mqtt://127.0.0.1:<port>` */
  readonly url: string;
  /** `ws://127.0.0.1:<wsPort>` when `websockets` was asked for. */
  readonly wsUrl: string | undefined;
  readonly port: number;
  readonly wsPort: number | undefined;
  readonly daemon: Daemon;
  /** Its log so far (connections, refusals, ACL denials at `log_type all`). */
  log(): string;
  stop(): Promise<void>;
}

/** Why a broker test is skipped, or false when mosquitto is installed. */
export function mosquittoMissing(): string | false {
  return missingPrograms('mosquitto', 'mosquitto_passwd');
}

/**
 * Starts mosquitto in `dir` (which must exist and stay until `stop()`). Stop it with `stop()`
 * or `stopDaemons()` (helpers/daemon.ts).
 */
export async function startBroker(dir: string, opts: BrokerOptions): Promise<Broker> {
  const port = opts.port ?? await freePort();
  const wsPort = opts.websockets ? opts.wsPort ?? await freePort() : undefined;
  const passwd = path.join(dir, 'mosquitto.passwd');
  const acl = path.join(dir, 'mosquitto.acl');
  const conf = path.join(dir, 'mosquitto.conf');
  await writeFile(passwd, '', { mode: 0o600 });
  for (const user of opts.users) runProgram('mosquitto_passwd', ['-b', passwd, user.name, user.password]);
  const aclText = [
    ...(opts.patterns ?? []),
    ...opts.users.flatMap((u) => ['', `user ${u.name}`, ...u.acl]),
  ].join('\n');
  await writeFile(acl, `${aclText}\n`);
  await writeFile(conf, [
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${passwd}`,
    `acl_file ${acl}`,
    'persistence false',
    'user root',
    'log_dest stderr',
    'log_type all',
    'connection_messages true',
    `listener ${port} 127.0.0.1`,
    ...(wsPort !== undefined ? [`listener ${wsPort} 127.0.0.1`, 'protocol websockets'] : []),
    '',
  ].join('\n'));
  const daemon = await startDaemon('mosquitto', ['-c', conf], port);
  return {
    url: `mqtt://127.0.0.1:${port}`,
    wsUrl: wsPort !== undefined ? `ws://127.0.0.1:${wsPort}` : undefined,
    port,
    wsPort,
    daemon,
    log: () => daemon.output,
    stop: () => daemon.stop(),
  };
}
