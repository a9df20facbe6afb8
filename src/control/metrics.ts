/**
 * The node's Prometheus metrics (`GET /metrics` on the control port). Counters and the
 * duration histogram are fed by the node's events as they happen; gauges ("is it up now",
 * "how much is in flight now") are read from the live state at scrape time, so they can never
 * drift from what `/state.json` says.
 *
 * Label values come from the config (listener keys, mapping paths, tunnel URLs, `en` names),
 * from west's own failure codes and HTTP status codes, and from node names: never from
 * request paths, so the number of series stays bounded.
 */
import type { EventEmitter } from 'node:events';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { canonicalName } from '../config/types.js';
import type { NodeEvents, TunnelEvent } from '../events.js';
import type { AccessRecord } from '../events.js';
import { AccessMetrics } from './access-metrics.js';
import { TcpMetrics } from './tcp-metrics.js';
import type { NodeState } from './state.js';

/** From 1 ms (a local hop) to 60 s (past the default 30 s response timeout). */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Server-side peers are named by whoever connects; remember at most this many that are not in
 * the config, so a misbehaving client cycling through names cannot grow the series for ever.
 */
const MAX_REMEMBERED_PEERS = 256;

/** Metrics as `registry.getMetricsAsJSON()` gives them: plain data (they cross the cluster channel). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

type TunnelLabels = 'side' | 'peer' | 'url';
/** `peer` is the name on both sides; `url` (client side only) the server URL dialled. */
interface TunnelLabelValues { side: 'client' | 'server'; peer: string; url?: string }

/**
 * prom-client's gauges that end in `_total`, a suffix that says "counter" (OpenMetrics parsers
 * refuse them): left out; `sum(nodejs_active_handles)` and the like give the same numbers.
 */
const TOTAL_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly state: () => NodeState;
  private readonly events: EventEmitter<NodeEvents>;
  /** Server-side peers seen connecting, so their `west_tunnel_up` reads 0 after they leave. */
  private readonly seenPeers = new Set<string>();
  /** The name each tunnel server this node dials reported (by URL), kept after it goes down. */
  private readonly serverNames = new Map<string, string>();
  /** One state snapshot per scrape, shared by every gauge of that scrape. */
  private scraped: NodeState | undefined;

  private readonly connects: Counter<TunnelLabels>;
  private readonly disconnects: Counter<TunnelLabels>;
  private readonly dialFailures: Counter<'url'>;
  /** Requests, durations and bytes: counted in plain numbers, turned into samples when scraped. */
  private readonly access: AccessMetrics;
  private readonly failures: Counter<'listener' | 'code' | 'at'>;
  private readonly tcp: TcpMetrics;

  private readonly onAccess = (r: AccessRecord): void => this.recordAccess(r);
  private readonly onTunnel = (e: TunnelEvent): void => this.recordTunnel(e);
  private readonly onDialFailed = (e: { url: string }): void => this.dialFailures.inc({ url: e.url });
  /** Requests performed here, by the tunnels each crossed (counted in plain numbers, sampled when scraped). */
  private readonly performedByHops = new Map<number, number>();
  private readonly onPerformed = (e: { hops: number }): void => {
    this.performedByHops.set(e.hops, (this.performedByHops.get(e.hops) ?? 0) + 1);
  };

  /** With `west.workers` above 1, at worker 0: the other workers' counters, summed into its own (src/workers/counters.ts). */
  private readonly others: () => MetricsJson[];

  /**
   * `processMetrics` false: no process_* and nodejs_* series (a worker above 0, whose counters
   * alone go to worker 0: it need not sample its event loop and GC for nobody).
   */
  constructor(state: () => NodeState, events: EventEmitter<NodeEvents>, others: () => MetricsJson[] = () => [], processMetrics = true) {
    this.state = () => this.scraped ?? state();
    this.others = others;
    this.events = events;
    const registers = [this.registry];
    // Process and runtime metrics under their standard names (process_*, nodejs_*), so the
    // usual Node.js dashboards work; the registry is this node's own.
    if (processMetrics) {
      collectDefaultMetrics({ register: this.registry });
      for (const name of TOTAL_GAUGES) this.registry.removeSingleMetric(name);
    }

    // Gauges read the live state when scraped; each closure refers to its own gauge.
    const info = new Gauge<'name' | 'version'>({
      name: 'west_node_info', help: 'Always 1; the labels name this node and its version.', labelNames: ['name', 'version'], registers,
      collect: () => {
        const s = this.state();
        info.reset();
        info.set({ name: s.name, version: s.version }, 1);
      },
    });
    const workers = new Gauge({
      name: 'west_workers',
      help: 'Worker processes serving this node (west.workers; 1 = one process). With more than 1 the control port is worker 0\'s: ' +
        'every series counts the whole node (each pool one peer; the other workers\' counts are up to a second old).',
      registers,
      collect: () => { workers.set(this.state().workers?.count ?? 1); },
    });
    const up = new Gauge<TunnelLabels>({
      name: 'west_tunnel_up',
      help: '1 while the tunnel is connected, 0 while it is not. peer = the name of the node at the other end; ' +
        'side="client": a tunnel this node dials, url = the server URL (peer is empty until it first connected); ' +
        'side="server": a peer of this node\'s tunnel server.',
      labelNames: ['side', 'peer', 'url'], registers,
      collect: () => {
        up.reset();
        for (const [labels, isUp] of this.tunnelsNow()) up.set(labels, isUp ? 1 : 0);
      },
    });
    const members = new Gauge<TunnelLabels>({
      name: 'west_tunnel_members',
      help: 'Connections a tunnel has up now: above 1 for a pool (wstc[url].connections), one peer however many. Labels as west_tunnel_up.',
      labelNames: ['side', 'peer', 'url'], registers,
      collect: () => {
        members.reset();
        const s = this.state();
        for (const t of s.tunnels) {
          const labels = this.clientLabels(t.url, t.peer);
          if (labels.peer !== '') members.set(labels, t.members ?? (t.connected ? 1 : 0));
        }
        for (const p of s.server?.peers ?? []) members.set({ side: 'server', peer: canonicalName(p.name) }, p.members ?? 1);
      },
    });
    this.connects = new Counter({
      name: 'west_tunnel_connects_total', help: 'Tunnel connections established (first connect and every reconnect; each connection of a pool).',
      labelNames: ['side', 'peer', 'url'], registers,
    });
    this.disconnects = new Counter({
      name: 'west_tunnel_disconnects_total', help: 'Tunnel connections lost or closed.',
      labelNames: ['side', 'peer', 'url'], registers,
    });
    this.dialFailures = new Counter({
      name: 'west_tunnel_dial_failures_total', help: 'Failed attempts to connect to a tunnel server (each is retried with back-off).',
      labelNames: ['url'], registers,
    });
    const streams: Gauge = new Gauge({
      name: 'west_streams_in_flight', help: 'Streams open on all tunnels of this node, both directions.', registers,
      collect: () => {
        const s = this.state();
        let n = 0;
        for (const t of s.tunnels) n += t.streams;
        for (const p of s.server?.peers ?? []) n += p.streams;
        streams.set(n);
      },
    });
    const routes: Gauge = new Gauge({
      name: 'west_routes', help: 'Nodes of the mesh this node has a route to (src/mesh/).', registers,
      collect: () => { routes.set(this.state().routes.length); },
    });
    this.access = new AccessMetrics(this.registry, DURATION_BUCKETS);
    this.failures = new Counter({
      name: 'west_request_failures_total',
      help: 'Requests west answered with its own failure (no origin answer), by failure code and the node where it happened.',
      labelNames: ['listener', 'code', 'at'], registers,
    });
    const performed = new Counter<'hops'>({
      name: 'west_requests_performed_total',
      help: 'Requests this node performed for its peers, by the tunnels each crossed since the first west listener (hops="1": from a direct peer).',
      labelNames: ['hops'], registers,
      collect: () => {
        performed.reset();
        for (const [hops, n] of this.performedByHops) performed.inc({ hops: String(hops) }, n);
      },
    });
    const inFlight = new Gauge<'listener'>({
      name: 'west_listener_in_flight', help: 'Requests in progress on a proxy listener.', labelNames: ['listener'], registers,
      collect: () => {
        inFlight.reset();
        for (const l of this.state().listeners) inFlight.set({ listener: l.key }, l.inFlight);
      },
    });

    const front = new Counter<'listener' | 'way'>({
      name: 'west_listener_front_total',
      help: 'At a plain-http listener: requests its lean front served (way="served") and connections it handed to Node\'s HTTP server (way="handoff": chunked bodies, upgrades, odd heads).',
      labelNames: ['listener', 'way'], registers,
      collect: () => {
        front.reset();
        for (const l of this.state().listeners) {
          if (!l.front) continue;
          front.inc({ listener: l.key, way: 'served' }, l.front.served);
          front.inc({ listener: l.key, way: 'handoff' }, l.front.handoffs);
        }
      },
    });

    this.tcp = new TcpMetrics(this.registry, events, this.state);
    events.on('access', this.onAccess);
    events.on('tunnel', this.onTunnel);
    events.on('dial-failed', this.onDialFailed);
    events.on('performed', this.onPerformed);
  }

  /** The Prometheus text exposition of every series. */
  async render(): Promise<string> {
    this.scraped = this.state();
    try {
      this.zeroKnownSeries(this.scraped);
      const others = this.others();
      if (others.length === 0) return await this.registry.metrics();
      return await this.withOthers(others);
    } finally {
      this.scraped = undefined;
    }
  }

  /**
   * What a worker above 0 sends worker 0 (src/workers/): its counters and histograms. Gauges
   * are not sent (worker 0 reads them from the state, which already adds the other workers'
   * summaries), nor the process_* and nodejs_* series, which describe one process.
   */
  async counts(state: NodeState): Promise<MetricsJson> {
    // Only these are collected: no gauge reads the state, and `state` (the snapshot the
    // worker's summary is made of) serves the counters that do.
    const picked = this.registry.getMetricsAsArray()
      .filter((m) => m.name.startsWith('west_') && (String(m.type) === 'counter' || String(m.type) === 'histogram'));
    this.scraped = state;
    try {
      // prom-client's metrics all have get(); its MetricObject type does not say so.
      return await Promise.all(picked.map((m) => (m as unknown as { get(): Promise<MetricsJson[number]> }).get()));
    } finally {
      this.scraped = undefined;
    }
  }

  /** This node's exposition with the other workers' counters and histograms added to its own. */
  private async withOthers(others: MetricsJson[]): Promise<string> {
    const own = await this.registry.getMetricsAsJSON();
    const summed = new Set(others.flatMap((set) => set.map((m) => m.name)));
    const merged = AggregatorRegistry.aggregate([own.filter((m) => summed.has(m.name)), ...others]);
    const parts: string[] = [];
    for (const m of own) {
      parts.push(await (summed.has(m.name) ? merged : this.registry).getSingleMetricAsString(m.name));
    }
    return parts.join('\n\n') + '\n';
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops listening to the node's events. Idempotent. */
  close(): void {
    this.tcp.close();
    this.events.off('access', this.onAccess);
    this.events.off('tunnel', this.onTunnel);
    this.events.off('dial-failed', this.onDialFailed);
  }

  private recordAccess(r: AccessRecord): void {
    this.access.record(r);
    if (r.failure) this.failures.inc({ listener: r.listener, code: r.failure.code, at: r.failure.node });
  }

  private recordTunnel(e: TunnelEvent): void {
    if (e.side === 'client' && e.url !== undefined && e.peer) this.serverNames.set(e.url, canonicalName(e.peer));
    const labels = this.tunnelLabels(e);
    if (e.side === 'server' && !this.seenPeers.has(labels.peer) && this.seenPeers.size < MAX_REMEMBERED_PEERS) {
      this.seenPeers.add(labels.peer);
    }
    (e.up ? this.connects : this.disconnects).inc(labels);
  }

  private tunnelLabels(e: TunnelEvent): TunnelLabelValues {
    return e.side === 'client' ? this.clientLabels(e.url ?? '', e.peer) : { side: 'server', peer: canonicalName(e.peer) };
  }

  /** A tunnel this node dials: its server's name (the last one it reported) and its URL. */
  private clientLabels(url: string, reported: string | undefined): TunnelLabelValues {
    if (reported) this.serverNames.set(url, canonicalName(reported));
    return { side: 'client', peer: this.serverNames.get(url) ?? '', url };
  }

  /** Every tunnel this node knows of, with whether it is up right now. */
  private tunnelsNow(): [TunnelLabelValues, boolean][] {
    const s = this.state();
    const out: [TunnelLabelValues, boolean][] = [];
    for (const t of s.tunnels) out.push([this.clientLabels(t.url, t.peer), t.connected]);
    if (s.server) {
      const connected = new Set(s.server.peers.map((p) => canonicalName(p.name)));
      const known = new Set([...this.expectedPeers(s), ...this.seenPeers, ...connected]);
      for (const peer of known) out.push([{ side: 'server', peer }, connected.has(peer)]);
    }
    return out;
  }

  /** Peers the config expects to connect here: the `en` targets of this node's listeners. */
  private expectedPeers(s: NodeState): string[] {
    return s.listeners.flatMap((l) => ('en' in l.target ? [canonicalName(l.target.en)] : []));
  }

  /**
   * Series whose labels the config already names start at 0 rather than appearing at their
   * first event, so `rate()` and `increase()` see the first request and the first reconnect.
   */
  private zeroKnownSeries(s: NodeState): void {
    for (const t of s.tunnels) {
      this.dialFailures.inc({ url: t.url }, 0);
      // Until the server has said its name, a zero would start a series with an empty peer.
      const labels = this.clientLabels(t.url, t.peer);
      if (labels.peer === '') continue;
      this.connects.inc(labels, 0);
      this.disconnects.inc(labels, 0);
    }
    if (s.server) {
      for (const peer of this.expectedPeers(s)) {
        this.connects.inc({ side: 'server', peer }, 0);
        this.disconnects.inc({ side: 'server', peer }, 0);
      }
    }
    for (const l of s.listeners) {
      for (const m of l.mappings) this.access.known(l.key, m.path);
    }
  }
}

