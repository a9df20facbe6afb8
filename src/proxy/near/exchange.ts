/**
 * One request at the near end, from accept to access record (after Envoy's stream callbacks
 * and Go's connection states): whatever way it came in (a socket, an upgrade, this node's own
 * far end) and whatever way it ends (answered, failed, abandoned), it is counted once and
 * leaves exactly one access record.
 */
import type { WestError } from '../../errors.js';
import type { AccessRecord } from '../../events.js';
import { requestIdFrom, scanRequestHead, type RequestHeadFacts } from '../shared/passes.js';

/** What routing needs of a request, whether it came over a socket or from this node's own far end. */
export interface RequestInfo {
  method: string;
  /** The request target: path and query. */
  url: string;
  rawHeaders: string[];
  remoteAddress: string;
  host: string | undefined;
}

export interface ListenerStats {
  requests: number;
  inFlight: number;
  /** Responses by status code (499: the client went away before any response). */
  statuses: Record<string, number>;
}

/** Where exchanges are counted and recorded: the listener they arrived at. */
export interface ExchangeSink {
  readonly key: string;
  readonly stats: ListenerStats;
  /** Logs and reports one finished exchange. */
  record(record: AccessRecord): void;
}

export class Exchange {
  readonly id: string;
  /** What routing reads of the request's headers, scanned once. */
  readonly head: RequestHeadFacts;
  /** The mapping path once routing matched one. */
  mapping = '-';
  bytesIn = 0;
  bytesOut = 0;
  private failure: AccessRecord['failure'];
  private ended = false;
  private readonly started = process.hrtime.bigint();

  /**
   * @param upgrade the protocol asked for (`Upgrade:`), for upgrade requests
   * @param gone whether the downstream (client) has gone away
   */
  constructor(
    private readonly sink: ExchangeSink,
    readonly request: RequestInfo,
    readonly upgrade: string | undefined,
    readonly gone: () => boolean,
  ) {
    this.head = scanRequestHead(request.rawHeaders);
    this.id = requestIdFrom(this.head.requestId);
    sink.stats.requests++;
    sink.stats.inFlight++;
  }

  /** Notes why west answered with a failure; the first one is the one recorded. */
  failed(err: WestError): void {
    this.failure ??= { code: err.code, node: err.node, message: err.message };
  }

  /**
   * The exchange is over: `status` is what the client was answered (undefined: nothing, the
   * client went away first: 499), `completed` whether the answer went out whole. Idempotent.
   */
  end(status: number | undefined, completed: boolean): void {
    if (this.ended) return;
    this.ended = true;
    const { stats } = this.sink;
    stats.inFlight--;
    const finalStatus = status ?? 499;
    stats.statuses[finalStatus] = (stats.statuses[finalStatus] ?? 0) + 1;
    this.sink.record({
      id: this.id, listener: this.sink.key, mapping: this.mapping, method: this.request.method, path: this.request.url,
      status: finalStatus, durationMs: Number(process.hrtime.bigint() - this.started) / 1e6,
      bytesIn: this.bytesIn, bytesOut: this.bytesOut, client: this.request.remoteAddress, completed,
      ...(this.upgrade !== undefined ? { upgrade: this.upgrade } : {}),
      ...(this.failure ? { failure: this.failure } : {}),
    });
  }
}
