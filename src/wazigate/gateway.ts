/**
 * This node as a gateway of a wazigate-tunnel cloud (doc/wazigate.md): each request the cloud
 * publishes on `devices/{gatewayID}/tunnel-down/{ref}` is checked (format, HTTP grammar, the
 * URI stays on the configured origin, `west.egress` under the peer name `wazigate`), performed
 * against the origin, and answered on `devices/{gatewayID}/tunnel-up/{ref}`. Every request gets
 * an answer when its ref can be read, failures included, and one access record.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { Tuning, WazigateGatewayConfig } from '../config/types.js';
import { WestError } from '../errors.js';
import type { AccessRecord } from '../events.js';
import type { Logger } from '../log.js';
import { classifyOriginError } from '../proxy/far/attempt.js';
import type { EgressPolicy } from '../proxy/far/egress.js';
import { Exchange, type ListenerStats } from '../proxy/near/exchange.js';
import { failureAnswer } from '../proxy/shared/failure.js';
import { stripHopByHop, withoutHeader } from '../proxy/shared/passes.js';
import { invalidRequestHead } from '../proxy/shared/validate.js';
import { decodeRequest, encodeResponse, MalformedPayload, MAX_FIELD, type WazigateRequest, type WazigateResponse } from './codec.js';
import { MqttLink } from './mqtt-link.js';
import { parseTopic } from './topics.js';

/** The name the cloud goes by in `west.egress`. */
export const CLOUD_PEER = 'wazigate';

/** A request URI the origin may be given: absolute path and query, visible ASCII only. */
const URI = /^\/(?!\/)[\x21-\x7e]*$/;

export interface WazigateGatewayOptions {
  config: WazigateGatewayConfig;
  tuning: Tuning;
  nodeName: string;
  log: Logger;
  /** `west.egress` as it stands now (a reload may change it); undefined = no allowlist. */
  egress: () => EgressPolicy | undefined;
  onAccess?: (record: AccessRecord) => void;
}

export class WazigateGateway {
  readonly key: string;
  readonly stats: ListenerStats = { requests: 0, inFlight: 0, statuses: {} };
  readonly link: MqttLink;
  private readonly agent: Agent;

  constructor(private readonly opts: WazigateGatewayOptions) {
    const { config, tuning, log } = opts;
    this.key = `wazigate:${config.gateway}`;
    this.agent = new Agent({ connect: { timeout: tuning.connectTimeoutMs } });
    this.link = new MqttLink({
      config, side: `gateway ${config.gateway}`, clientIdPrefix: `west-${config.gateway}`.slice(0, 40),
      subscribe: `devices/${config.gateway}/tunnel-down/+`,
      connectTimeoutMs: tuning.connectTimeoutMs, reconnectMinMs: tuning.reconnectMinMs, reconnectMaxMs: tuning.reconnectMaxMs, log,
    });
    this.link.on('message', (topic, payload) => {
      this.onRequest(topic, payload).catch((err: unknown) => {
        log.error('proxy.internal_error', { error: err instanceof Error ? err.stack : String(err) });
      });
    });
  }

  start(): void {
    this.link.start();
  }

  async close(): Promise<void> {
    await this.link.close();
    await this.agent.close().catch(() => undefined);
  }

  record(record: AccessRecord): void {
    const log = this.opts.log;
    if (log.enabled('info')) log.info('access', {
      id: record.id, listener: record.listener, mapping: record.mapping, method: record.method, path: record.path,
      status: record.status, ms: Math.round(record.durationMs * 10) / 10, in: record.bytesIn, out: record.bytesOut,
      client: record.client, completed: record.completed, error: record.failure?.code, at: record.failure?.node,
    });
    this.opts.onAccess?.(record);
  }

  private async onRequest(topic: string, payload: Buffer): Promise<void> {
    const { config, log, nodeName } = this.opts;
    const parsed = parseTopic(topic, 'tunnel-down');
    if (parsed?.gateway !== config.gateway) {
      log.warn('wazigate.bad_message', { side: this.key, topic: topic.slice(0, 200), error: `not devices/${config.gateway}/tunnel-down/{ref}` });
      return;
    }
    let req: WazigateRequest;
    let malformed: string | undefined;
    try {
      req = decodeRequest(payload);
    } catch (err) {
      if (!(err instanceof MalformedPayload)) throw err;
      malformed = err.message;
      req = { method: '-', uri: '-', headers: [], body: Buffer.alloc(0) };
    }
    const ex = new Exchange(this, { method: req.method, url: req.uri, rawHeaders: req.headers, remoteAddress: config.broker, host: undefined }, undefined, () => false);
    ex.bytesIn = req.body.length;
    const answer = (r: WazigateResponse): void => {
      let bytes: Buffer;
      try {
        bytes = encodeResponse(r);
      } catch {
        const err = new WestError('response_too_large', nodeName, `the wazigate format carries bodies up to ${MAX_FIELD} bytes`);
        ex.failed(err);
        r = this.failure(err);
        bytes = encodeResponse(r);
      }
      ex.bytesOut = r.body.length;
      const sent = this.link.publish(`devices/${config.gateway}/tunnel-up/${parsed.ref}`, bytes);
      ex.end(r.status, sent);
    };
    const fail = (err: WestError): void => {
      ex.failed(err);
      if (err.code === 'egress_denied') log.warn('outgoing.egress_denied', { id: ex.id, peer: CLOUD_PEER, url: req.uri });
      answer(this.failure(err));
    };
    if (malformed !== undefined) {
      log.warn('wazigate.bad_message', { side: this.key, ref: parsed.ref, error: malformed });
      fail(new WestError('bad_request', nodeName, `malformed wazigate request: ${malformed}`));
      return;
    }
    const url = this.check(req);
    if (url instanceof WestError) {
      fail(url);
      return;
    }
    if (this.stats.inFlight > this.opts.tuning.maxStreams) {
      fail(new WestError('too_many_streams', nodeName, `more than ${this.opts.tuning.maxStreams} wazigate requests in flight`));
      return;
    }
    answer(await this.perform(req, url).catch((err: unknown) => {
      const e = err instanceof WestError ? err : new WestError(classifyOriginError(err as NodeJS.ErrnoException), nodeName, `origin ${url.origin}: ${(err as Error).message}`);
      ex.failed(e);
      return this.failure(e);
    }));
  }

  /** The URL to fetch, or why not: a sound head, a URI that stays on the origin, egress. */
  private check(req: WazigateRequest): URL | WestError {
    const { config, nodeName } = this.opts;
    const bad = invalidRequestHead(req.method, req.headers);
    if (bad !== undefined) return new WestError('bad_request', nodeName, bad);
    if (!URI.test(req.uri)) return new WestError('bad_request', nodeName, 'the request URI must be a path ("/...") of visible ASCII characters');
    if (req.headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'upgrade')) {
      return new WestError('unsupported', nodeName, 'the wazigate format carries whole requests only: no upgrades');
    }
    const base = config.origin;
    const url = new URL(`${base.origin}${base.pathname.replace(/\/$/, '')}${req.uri}`);
    if (url.origin !== base.origin) return new WestError('bad_request', nodeName, 'the request URI leaves the origin');
    const egress = this.opts.egress();
    if (egress && !egress.allows(CLOUD_PEER, url)) {
      return new WestError('egress_denied', nodeName, `west.egress does not allow ${CLOUD_PEER} to reach ${url.origin}${url.pathname}`);
    }
    return url;
  }

  private async perform(req: WazigateRequest, url: URL): Promise<WazigateResponse> {
    const { tuning, nodeName } = this.opts;
    // The body is here whole: Expect: 100-continue has nothing left to wait for (and undici refuses it).
    const headers = withoutHeader(stripHopByHop(req.headers, false), 'host', 'content-length', 'expect');
    const hasBody = req.body.length > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE'].includes(req.method);
    const res = await request(url, {
      dispatcher: this.agent, method: req.method as Dispatcher.HttpMethod, headers: hasBody ? [...headers, 'Content-Length', String(req.body.length)] : headers,
      body: hasBody ? req.body : null, headersTimeout: tuning.responseTimeoutMs, bodyTimeout: tuning.idleTimeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_FIELD) {
        res.body.destroy();
        throw new WestError('response_too_large', nodeName, `origin ${url.origin} answered more than the ${MAX_FIELD} bytes the wazigate format carries`);
      }
      chunks.push(chunk);
    }
    const flat: string[] = [];
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) flat.push(name, v);
    }
    return { status: res.statusCode, headers: stripHopByHop(flat, false), body: Buffer.concat(chunks) };
  }

  private failure(err: WestError): WazigateResponse {
    const a = failureAnswer(err, this.opts.tuning);
    return { status: a.status, headers: withoutHeader(a.headers, 'content-length'), body: Buffer.from(a.body) };
  }
}
