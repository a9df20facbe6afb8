/**
 * The WebSocket endpoints a listener serves when `west.access` names it: `/remoteaccess/<key>`
 * (a remote-access session: the key's TCP endpoint, through the mesh) and `/rendezvous/<key>`
 * (two clients paired). Subprotocol `binary` when the client offers it. Keys are judged before
 * the upgrade, so a refused client gets a plain HTTP answer with Proxy-Status.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AccessConfig, Tuning } from '../config/types.js';
import { WestError, type FailureCode } from '../errors.js';
import type { Logger } from '../log.js';
import { lostBeforeUse } from '../proxy/near/tcp-open.js';
import { sendRawFailure } from '../proxy/shared/failure.js';
import { bridgeToDuplex } from './bridge.js';
import { keyId, type AuthHook, type HookDecision, type HookQuestion } from './hook.js';
import type { RemoteAccessBinding, SessionKeys } from './keys.js';
import type { Rendezvous } from './rendezvous.js';

/** Largest WebSocket message taken from a client: one message is what may sit beyond the high-water mark. */
const MAX_MESSAGE = 1024 * 1024;

/**
 * Opens the TCP stream a remote-access key names, as `to` performs it (its egress applies);
 * resolves with the stream once it is connected, or with why not.
 */
export type RemoteOpener = (binding: RemoteAccessBinding, id: string) => Promise<Duplex | WestError>;

export interface AccessGatewayOptions {
  nodeName: string;
  keys: SessionKeys;
  rendezvous: Rendezvous;
  /** Read per request, so a reload applies. */
  config: () => AccessConfig | undefined;
  tuning: () => Tuning;
  hook: () => AuthHook | undefined;
  /** Absent: this build has no TCP streams, and remote access answers 501. */
  openRemote?: RemoteOpener;
  log: Logger;
}

const PATH = /^\/(remoteaccess|rendezvous)\/([^/?#]*)(?:\?(.*))?$/;

export class AccessGateway {
  private readonly opts: AccessGatewayOptions;
  private readonly wss: WebSocketServer;

  constructor(opts: AccessGatewayOptions) {
    this.opts = opts;
    this.wss = new WebSocketServer({
      noServer: true, perMessageDeflate: false, maxPayload: MAX_MESSAGE,
      handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
    });
  }

  /**
   * Takes an upgrade at listener `listenerKey` when its path is one of ours and that listener
   * serves it; false leaves the request to the listener's mappings.
   */
  handleUpgrade(listenerKey: string, req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const m = PATH.exec(req.url ?? '');
    const config = this.opts.config();
    if (!m || !config) return false;
    const [, what, key = '', query = ''] = m;
    if (what === 'remoteaccess' && !config.remoteAccess.includes(listenerKey)) return false;
    if (what === 'rendezvous' && !config.rendezvous.includes(listenerKey)) return false;
    socket.on('error', () => socket.destroy());
    const address = req.socket.remoteAddress ?? '';
    // A malformed %-escape is the client's mistake: decodeURIComponent would throw out of the
    // 'upgrade' handler and take the node down. Keys are base64url, so nothing needs decoding.
    let decoded: string;
    try {
      decoded = decodeURIComponent(key);
    } catch {
      this.refuse(socket, 'bad_request', 'the key in the path is not valid %-encoding', what === 'remoteaccess' ? 'remote-access' : 'rendezvous', key, address);
      return true;
    }
    const run = what === 'remoteaccess'
      ? this.remoteAccess(req, socket, head, decoded, new URLSearchParams(query), address)
      : this.rendezvous(req, socket, head, decoded, address);
    run.catch((err: unknown) => {
      this.opts.log.error('proxy.internal_error', { error: err instanceof Error ? err.stack : String(err) });
      this.refuse(socket, 'internal', 'internal error', what ?? '', key, address);
    });
    return true;
  }

  close(): void {
    this.opts.rendezvous.close();
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  private async remoteAccess(req: http.IncomingMessage, socket: Duplex, head: Buffer, key: string, query: URLSearchParams, address: string): Promise<void> {
    const id = keyId(key);
    const taken = this.opts.keys.take(key, 'remote-access');
    if (typeof taken === 'string') { this.refuse(socket, 'key_refused', taken, 'remote-access', key, address); return; }
    const binding = taken as RemoteAccessBinding;
    // A client may say which endpoint it expects; a key bound elsewhere is refused (and spent).
    const wanted = query.get('target');
    if (wanted !== null && wanted !== binding.target) {
      this.refuse(socket, 'key_refused', `the key is bound to another endpoint than ${wanted}`, 'remote-access', key, address);
      return;
    }
    const decision = await this.askHook({ event: 'session', node: this.opts.nodeName, kind: 'remote-access', keyId: id, address, to: binding.to, target: binding.target });
    if (!decision.allow) { this.refuse(socket, decision.unavailable ? 'hook_unavailable' : 'hook_denied', decision.reason, 'remote-access', key, address); return; }
    if (!this.opts.openRemote) { this.refuse(socket, 'unsupported', 'this node cannot open TCP streams', 'remote-access', key, address); return; }
    const stream = await this.opts.openRemote(binding, id);
    if (stream instanceof WestError) { this.refuse(socket, stream.code, stream.message, 'remote-access', key, address, stream.node); return; }
    if (socket.destroyed) { stream.destroy(); return; }
    // Reset as it connected (the origin hung up at once): bridging it would never hear its close.
    const lost = lostBeforeUse(stream, this.opts.nodeName);
    if (lost) { this.refuse(socket, lost.code, lost.message, 'remote-access', key, address, lost.node); return; }
    const upgraded = this.upgrade(req, socket, head, (ws) => {
      this.opts.log.info('session.opened', { kind: 'remote-access', keyId: id, client: address, to: binding.to, target: binding.target });
      bridgeToDuplex(ws, stream, this.opts.tuning().streamWindow, (counts, why) => {
        this.opts.log.info('session.closed', { kind: 'remote-access', keyId: id, up: counts.up, down: counts.down, reason: why });
      });
    });
    // Refused by ws: the stream opened for it must not stay open (nor, without an 'error'
    // listener, crash the node when the far end resets it).
    if (!upgraded) {
      this.opts.log.warn('session.refused', { kind: 'remote-access', keyId: id, client: address, error: 'bad_request', reason: 'the WebSocket upgrade was refused' });
      stream.on('error', () => {});
      stream.destroy();
    }
  }

  private async rendezvous(req: http.IncomingMessage, socket: Duplex, head: Buffer, key: string, address: string): Promise<void> {
    const presence = this.opts.rendezvous.present(key, address);
    if ('refused' in presence) {
      this.refuse(socket, presence.full ? 'too_many_waiting' : 'key_refused', presence.refused, 'rendezvous', key, address);
      return;
    }
    const decision = await this.askHook({ event: 'session', node: this.opts.nodeName, kind: 'rendezvous', keyId: keyId(key), address });
    if (!decision.allow || socket.destroyed) {
      this.opts.rendezvous.withdraw(presence);
      if (!decision.allow) this.refuse(socket, decision.unavailable ? 'hook_unavailable' : 'hook_denied', decision.reason, 'rendezvous', key, address);
      return;
    }
    const upgraded = this.upgrade(req, socket, head, (ws) => this.opts.rendezvous.joined(presence, ws));
    // Refused by ws (a 400, no callback): the place it took is given back now, not after pairWait.
    if (!upgraded) this.opts.rendezvous.withdraw(presence);
  }

  /**
   * ws completes an upgrade synchronously (no verifyClient), or refuses it (bad
   * Sec-WebSocket-Key or -Version, not GET...) with a 400 and never calls back: false then.
   */
  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket) => void): boolean {
    let upgraded = false;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      cb(ws);
    });
    return upgraded;
  }

  private async askHook(q: HookQuestion): Promise<HookDecision> {
    const hook = this.opts.hook();
    return hook ? hook.ask(q) : { allow: true, reason: 'no auth hook' };
  }

  private refuse(socket: Duplex, code: FailureCode, why: string, kind: string, key: string, address: string, node = this.opts.nodeName): void {
    this.opts.log.warn('session.refused', { kind, keyId: keyId(key), client: address, error: code, reason: why });
    if (socket.destroyed) return;
    sendRawFailure(socket, new WestError(code, node, why), this.opts.tuning());
  }
}
