/**
 * What one node keeps for remote access, rendezvous and the auth hook (doc/remote-access.md):
 * its session keys, its waiting rendezvous parties, the WebSocket endpoints its listeners
 * serve, and the hook asked about tunnels, streams and keys. node.ts holds one of these.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { DEFAULT_ACCESS, type NodeConfig } from '../config/types.js';
import type { KeyIssuer } from '../control/sessions.js';
import type { Logger } from '../log.js';
import type { StreamDecision, StreamQuestion } from '../proxy/far/attempt.js';
import type { TunnelDecision, TunnelQuestion } from '../tunnel/server.js';
import { AccessGateway, type RemoteOpener } from './gateway.js';
import { AuthHook, keyId } from './hook.js';
import { SessionKeys } from './keys.js';
import { Rendezvous, type RendezvousLimits } from './rendezvous.js';

export class NodeAccess {
  readonly keys = new SessionKeys();
  readonly rendezvous: Rendezvous;
  readonly gateway: AccessGateway;
  private hook: AuthHook | undefined;
  private config: NodeConfig;
  private readonly log: Logger;

  constructor(config: NodeConfig, log: Logger, openRemote?: RemoteOpener) {
    this.config = config;
    this.log = log;
    this.rendezvous = new Rendezvous(this.keys, this.limits(), log);
    this.hook = config.authHook ? new AuthHook(config.authHook, log) : undefined;
    this.gateway = new AccessGateway({
      nodeName: config.name, keys: this.keys, rendezvous: this.rendezvous,
      config: () => this.config.access, tuning: () => this.config.tuning, hook: () => this.hook, log,
      ...(openRemote ? { openRemote } : {}),
    });
  }

  /** A reloaded config: limits, listeners and hook settings apply to what comes next. */
  setConfig(config: NodeConfig): void {
    this.config = config;
    this.rendezvous.limits = this.limits();
    if (!config.authHook) this.hook = undefined;
    else if (this.hook) this.hook.setConfig(config.authHook);
    else this.hook = new AuthHook(config.authHook, this.log);
  }

  /** An upgrade at a listener: true when it was one of ours (`/remoteaccess/`, `/rendezvous/`). */
  takeUpgrade(listenerKey: string, req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    return this.gateway.handleUpgrade(listenerKey, req, socket, head);
  }

  /** The tunnel server's question; undefined when no hook is configured (checked per call, so a reload applies). */
  authorizeTunnel = (q: TunnelQuestion): TunnelDecision | Promise<TunnelDecision> => {
    const hook = this.hook;
    return hook ? hook.ask({ event: 'tunnel', node: this.config.name, ...q }) : { allow: true, reason: 'no auth hook' };
  };

  authorizeStream = (q: StreamQuestion): StreamDecision | Promise<StreamDecision> => {
    const hook = this.hook;
    return hook ? hook.ask({ event: 'stream', node: this.config.name, to: this.config.name, ...q }) : { allow: true, reason: 'no auth hook' };
  };

  /** What the control port issues keys with. */
  issuer(listenerPort: (key: string) => number | undefined): KeyIssuer {
    const issued = (kind: string, r: { key: string; expires: Date } | undefined, extra: Record<string, string> = {}): typeof r => {
      if (r) this.log.info('session.issued', { kind, keyId: keyId(r.key), expires: r.expires.toISOString(), ...extra });
      return r;
    };
    return {
      nodeName: () => this.config.name,
      config: () => this.config.access,
      issueRemoteAccess: (to, target) => issued('remote-access', this.keys.issue({ kind: 'remote-access', to, target }, this.ttl()), { to, target }),
      issueRendezvous: () => issued('rendezvous', this.keys.issue({ kind: 'rendezvous' }, this.ttl())),
      listenerPort,
    };
  }

  close(): void {
    this.gateway.close();
  }

  private ttl(): number {
    return this.config.access?.keyTtlMs ?? DEFAULT_ACCESS.keyTtlMs;
  }

  private limits(): RendezvousLimits {
    const a = this.config.access;
    return {
      pairWaitMs: a?.pairWaitMs ?? DEFAULT_ACCESS.pairWaitMs,
      maxWaiting: a?.maxWaiting ?? DEFAULT_ACCESS.maxWaiting,
      maxWaitingPerAddress: a?.maxWaitingPerAddress ?? DEFAULT_ACCESS.maxWaitingPerAddress,
      highWater: this.config.tuning.streamWindow,
    };
  }
}
