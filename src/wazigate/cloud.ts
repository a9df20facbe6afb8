/**
 * A listener that plays the wazigate-tunnel cloud (doc/wazigate.md): `/{gatewayID}/rest/...`
 * is buffered whole, checked (`ca`, the gateway list, the format's 16 MiB), published to
 * `devices/{gatewayID}/tunnel-down/{ref}`, and answered with what that gateway publishes on
 * `devices/{gatewayID}/tunnel-up/{ref}` within the timeout. What comes back over MQTT is
 * checked before a byte of it is written: a malformed answer is a 502, never a broken head.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Tuning, WazigateCloudConfig } from '../config/types.js';
import { WestError } from '../errors.js';
import type { AccessRecord } from '../events.js';
import { boundPort, closeNow, listenOn } from '../listen.js';
import type { Logger } from '../log.js';
import { AddressAllowlist } from '../net/allow.js';
import { Exchange, type ListenerStats } from '../proxy/near/exchange.js';
import { failureAnswer, sendRawFailure } from '../proxy/shared/failure.js';
import { REQUEST_ID_HEADER, stripHopByHop, withoutHeader } from '../proxy/shared/passes.js';
import { invalidHeaders } from '../proxy/shared/validate.js';
import { decodeResponse, encodeRequest, MalformedPayload, MAX_FIELD, type WazigateResponse } from './codec.js';
import { GATEWAY_ID } from './config.js';
import { MqttLink } from './mqtt-link.js';
import { RefBook } from './refs.js';
import { parseTopic } from './topics.js';

/** `/{gatewayID}/...`: the ID and the request URI the gateway performs (query kept). */
const TARGET = /^\/([^/?#]+)(\/[^#]*)$/;

export interface WazigateCloudOptions {
  config: WazigateCloudConfig;
  nodeName: string;
  tuning: Tuning;
  log: Logger;
  /** Shared by the node's cloud listeners (refs.ts). */
  refs?: RefBook;
  /** The request bodies the node's cloud listeners hold, shared by them (west.memoryBudget bounds the sum). */
  held?: HeldBodies;
  onAccess?: (record: AccessRecord) => void;
}

/** Bytes of request bodies held right now by a node's cloud listeners, all together. */
export interface HeldBodies {
  bytes: number;
}

export class WazigateCloud {
  readonly key: string;
  readonly stats: ListenerStats = { requests: 0, inFlight: 0, statuses: {} };
  readonly link: MqttLink;
  private readonly server: http.Server;
  private readonly allow: AddressAllowlist;
  private readonly refs: RefBook;
  /** Request bodies held right now by this node's cloud listeners (bounded by west.memoryBudget). */
  private readonly held: HeldBodies;

  constructor(private readonly opts: WazigateCloudOptions) {
    const { config, tuning, log } = opts;
    this.key = config.key;
    this.refs = opts.refs ?? new RefBook();
    this.held = opts.held ?? { bytes: 0 };
    this.allow = new AddressAllowlist(config.allow);
    this.link = new MqttLink({
      config, side: `cloud ${config.key}`, clientIdPrefix: `west-cloud-${opts.nodeName}`.slice(0, 40), subscribe: 'devices/+/tunnel-up/+',
      connectTimeoutMs: tuning.connectTimeoutMs, reconnectMinMs: tuning.reconnectMinMs, reconnectMaxMs: tuning.reconnectMaxMs, log,
    });
    this.link.on('message', (topic, payload) => this.onAnswer(topic, payload));
    this.server = http.createServer({
      maxHeaderSize: tuning.maxHeaderSize, headersTimeout: tuning.headerTimeoutMs,
      requestTimeout: Math.max(tuning.headerTimeoutMs, tuning.idleTimeoutMs), keepAliveTimeout: 5000,
    }, (req, res) => this.onRequest(req, res));
    // The format carries whole requests only: an upgrade or CONNECT is answered, not hung up on.
    const refuse = (req: http.IncomingMessage, socket: Duplex): void => this.refuseRaw(req, socket);
    this.server.on('upgrade', refuse);
    this.server.on('connect', refuse);
    // A head Node cannot parse gets Node's own answer (400, 431 too large, 408 too slow).
  }

  get port(): number {
    return boundPort(this.server);
  }

  async listen(): Promise<void> {
    await listenOn(this.server, this.opts.config);
    this.opts.log.info('wazigate.listening', { listener: this.key, port: this.port, broker: this.opts.config.broker });
    this.link.start();
  }

  async close(): Promise<void> {
    await closeNow(this.server);
    await this.link.close();
  }

  record(record: AccessRecord): void {
    const log = this.opts.log;
    if (log.enabled('info')) log.info('access', {
      id: record.id, listener: record.listener, mapping: record.mapping, method: record.method, path: record.path,
      status: record.status, ms: Math.round(record.durationMs * 10) / 10, in: record.bytesIn, out: record.bytesOut,
      client: record.client, completed: record.completed, upgrade: record.upgrade,
      error: record.failure?.code, at: record.failure?.node,
    });
    this.opts.onAccess?.(record);
  }

  private exchange(req: http.IncomingMessage, gone: () => boolean, upgrade?: string): Exchange {
    const ex = new Exchange(this, {
      method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders,
      remoteAddress: req.socket.remoteAddress ?? '', host: req.headers.host,
    }, upgrade, gone);
    ex.mapping = '/{gatewayID}';
    return ex;
  }

  private fail(ex: Exchange, res: http.ServerResponse, err: WestError, close = false): void {
    ex.failed(err);
    if (close) res.shouldKeepAlive = false;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      ex.end(undefined, false);
      return;
    }
    const answer = failureAnswer(err, this.opts.tuning);
    res.writeHead(answer.status, answer.headers);
    res.end(ex.request.method === 'HEAD' ? undefined : answer.body);
    ex.end(answer.status, true);
  }

  private refuseRaw(req: http.IncomingMessage, socket: Duplex): void {
    const upgrade = req.method === 'CONNECT' ? 'CONNECT' : req.headers.upgrade ?? '';
    const ex = this.exchange(req, () => socket.destroyed, upgrade);
    const err = new WestError('unsupported', this.opts.nodeName, 'the wazigate format carries whole requests only: no upgrades, no CONNECT');
    ex.failed(err);
    ex.end(sendRawFailure(socket, err, this.opts.tuning), true);
  }

  /** Who the request is for, or the failure that answers it. */
  private target(req: http.IncomingMessage): { gateway: string; uri: string } | WestError {
    const node = this.opts.nodeName;
    if (!this.allow.allows(req.socket.remoteAddress)) {
      return new WestError('client_denied', node, `client ${req.socket.remoteAddress ?? '?'} is not allowed by ${this.key}'s wazigate.ca`);
    }
    const m = TARGET.exec(req.url ?? '');
    const gateway = m?.[1];
    const uri = m?.[2];
    if (gateway === undefined || uri === undefined || !GATEWAY_ID.test(gateway)) {
      return new WestError('no_mapping', node, 'a wazigate listener takes "/{gatewayID}/..." with a gateway ID of letters, digits and "_.:~-"');
    }
    const listed = this.opts.config.gateways;
    if (listed && !listed.includes(gateway)) return new WestError('no_mapping', node, `no gateway ${JSON.stringify(gateway)} behind this listener`);
    if (req.headers.upgrade !== undefined) return new WestError('unsupported', node, 'the wazigate format carries whole requests only: no upgrades');
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > MAX_FIELD) {
      return new WestError('body_too_large', node, `the wazigate format carries bodies up to ${MAX_FIELD} bytes; this one has ${length}`);
    }
    return { gateway, uri };
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ex = this.exchange(req, () => res.destroyed);
    const target = this.target(req);
    if (target instanceof WestError) {
      // A body left unread would be parsed as the next request: close instead.
      this.fail(ex, res, target, true);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const release = (): void => {
      this.held.bytes -= size;
      size = 0;
      chunks.length = 0;
    };
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      this.held.bytes += chunk.length;
      chunks.push(chunk);
      ex.bytesIn += chunk.length;
      const tooLarge = size > MAX_FIELD;
      if (tooLarge || this.held.bytes > this.opts.tuning.memoryBudget) {
        refused = true;
        release();
        req.pause();
        this.fail(ex, res, tooLarge
          ? new WestError('body_too_large', this.opts.nodeName, `the wazigate format carries bodies up to ${MAX_FIELD} bytes; this one is longer`)
          : new WestError('too_many_streams', this.opts.nodeName, 'request bodies held for wazigate gateways fill west.memoryBudget'), true);
      }
    });
    req.on('error', () => release());
    res.on('close', () => {
      release();
      ex.end(undefined, false);
    });
    req.on('end', () => {
      if (refused) return;
      const body = Buffer.concat(chunks);
      release();
      this.send(ex, req, res, target.gateway, target.uri, body);
    });
  }

  private send(ex: Exchange, req: http.IncomingMessage, res: http.ServerResponse, gateway: string, uri: string, body: Buffer): void {
    const node = this.opts.nodeName;
    // Node's server answered any Expect: 100-continue already; the body travels whole.
    let headers = withoutHeader(stripHopByHop(req.rawHeaders, false), 'host', 'expect');
    if (ex.head.requestId !== ex.id) headers = [...withoutHeader(headers, REQUEST_ID_HEADER), 'X-Request-Id', ex.id];
    const payload = encodeRequest({ method: req.method ?? 'GET', uri, headers, body });
    const ref = this.refs.take();
    if (!this.link.publish(`devices/${gateway}/tunnel-down/${ref}`, payload)) {
      this.fail(ex, res, new WestError('tunnel_down', node, `not connected to the MQTT broker ${this.opts.config.broker}${this.link.lastError ? ` (${this.link.lastError})` : ''}`));
      return;
    }
    const timeoutMs = this.opts.config.timeoutMs;
    const timer = setTimeout(() => {
      this.refs.finish(ref, 'gave-up');
      this.fail(ex, res, new WestError('origin_timeout', node, `Gateway timeout. (no answer from gateway ${gateway} within ${timeoutMs / 1000} s)`));
    }, timeoutMs);
    res.once('close', () => {
      clearTimeout(timer);
      this.refs.finish(ref, 'gave-up');
    });
    this.refs.waiting.set(ref, {
      owner: this.key, gateway,
      answer: (answer) => {
        clearTimeout(timer);
        this.refs.finish(ref, 'answered');
        this.respond(ex, res, gateway, answer);
      },
    });
  }

  private respond(ex: Exchange, res: http.ServerResponse, gateway: string, payload: Buffer): void {
    const node = this.opts.nodeName;
    let answer: WazigateResponse;
    try {
      answer = decodeResponse(payload);
    } catch (err) {
      if (!(err instanceof MalformedPayload)) throw err;
      this.opts.log.warn('wazigate.bad_message', { listener: this.key, id: ex.id, gateway, error: err.message });
      this.fail(ex, res, new WestError('origin_error', node, `gateway ${gateway} sent a malformed answer: ${err.message}`));
      return;
    }
    const headers = withoutHeader(stripHopByHop(answer.headers, false), 'content-length');
    const why = answer.status < 200 || answer.status > 599 ? `status ${answer.status} is not a final HTTP status` : invalidHeaders(headers);
    if (why !== undefined) {
      this.opts.log.warn('wazigate.bad_message', { listener: this.key, id: ex.id, gateway, error: why });
      this.fail(ex, res, new WestError('origin_error', node, `gateway ${gateway} sent an answer HTTP does not allow: ${why}`));
      return;
    }
    if (res.destroyed) return;
    const bodiless = ex.request.method === 'HEAD' || answer.status === 204 || answer.status === 304;
    res.writeHead(answer.status, bodiless ? headers : [...headers, 'Content-Length', String(answer.body.length)]);
    ex.bytesOut = bodiless ? 0 : answer.body.length;
    res.end(bodiless ? undefined : answer.body, () => ex.end(answer.status, true));
  }

  private onAnswer(topic: string, payload: Buffer): void {
    const parsed = parseTopic(topic, 'tunnel-up');
    if (!parsed) {
      this.opts.log.warn('wazigate.bad_message', { listener: this.key, topic: topic.slice(0, 200), error: 'not devices/{gatewayID}/tunnel-up/{ref}' });
      return;
    }
    const waiting = this.refs.waiting.get(parsed.ref);
    // Another listener of this node waits on it, or did: that one answers (it receives the message too).
    if (waiting && waiting.owner !== this.key) return;
    const finished = waiting ? undefined : this.refs.finishedOf(parsed.ref);
    if (finished?.gateway === parsed.gateway && (finished.owner !== this.key || finished.how === 'gave-up')) {
      if (finished.owner === this.key) {
        this.opts.log.debug('wazigate.stray_answer', { listener: this.key, gateway: parsed.gateway, ref: parsed.ref, error: 'a late answer: the client left or the request timed out' });
      }
      return;
    }
    if (waiting?.gateway !== parsed.gateway) {
      // From another gateway than the one asked: a gateway guessing refs cannot answer (or spoil) another's request.
      this.opts.log.warn('wazigate.stray_answer', {
        listener: this.key, gateway: parsed.gateway, ref: parsed.ref,
        error: waiting ? `the request went to gateway ${waiting.gateway}` : 'no request waits for this ref',
      });
      return;
    }
    waiting.answer(payload);
  }
}
