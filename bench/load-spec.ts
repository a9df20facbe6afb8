/** What a load run is asked to do and what it counts (load.ts runs it with wrk.ts or autocannon). */
import type { Histogram } from './histogram.js';

export type GeneratorName = 'wrk' | 'autocannon';

export interface LoadSpec {
  url: string;
  connections: number;
  /** wrk threads (at most one per connection); autocannon has one. */
  threads: number;
  durationS: number;
  /** A run of this many seconds first, not measured (JIT, connection pools). */
  warmupS: number;
  /** Seconds the generator waits for one response before counting a timeout. */
  timeoutS: number;
}

/** What the load generator counts in one run. */
export interface LoadCounts {
  durationS: number;
  /** 2xx responses (wrk: responses below 400). */
  requests: number;
  /** Bytes (head and body) of responses. */
  bytes: number;
  /** Response times, 1 µs buckets. */
  latency: Histogram;
  /** Socket errors and timeouts. */
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Responses by status code (autocannon only; wrk counts statuses of 400 and above as errors). */
  statuses: Record<string, number>;
  /** Error messages seen, with counts. */
  errorMessages: Record<string, number>;
  generator: GeneratorName;
  /** CPU seconds (user + system) the generator itself used in the run. */
  generatorCpuS: number;
  /** CPU seconds of each metered process (origin, proxies) over the measured run, by name. */
  cpuS: Record<string, number>;
}
