/**
 * The load generator, run as its own process so it never shares an event loop with a server:
 * `node dist/bench/load-worker.js '<LoadSpec as JSON>'`. Runs autocannon and prints one JSON
 * line: LoadCounts. The fallback when wrk is not installed (load.ts).
 *
 * Latencies are counted here from every response time autocannon reports (float milliseconds)
 * into a 1 µs histogram: autocannon's own histogram has 1 ms steps, too coarse for a
 * one-connection run where a hop costs a fraction of a millisecond.
 */
import autocannon from 'autocannon';
import { HistogramBuilder } from './histogram.js';
import type { LoadCounts, LoadSpec } from './load.js';

/**
 * One autocannon run of warm-up + duration; only responses completed after the warm-up are
 * measured. The connections stay busy across that boundary, so the measured window starts with
 * requests already in flight (separate warm-up and measured runs would start the measured one
 * with every connection idle, which undercounts lines whose requests take seconds).
 * Failures (socket errors, timeouts, non-2xx) are counted over the whole run.
 */
async function measure(spec: LoadSpec): Promise<LoadCounts> {
  const times = new HistogramBuilder();
  const errorMessages = new Map<string, number>();
  const statuses: Record<string, number> = {};
  let bytes = 0;
  let errors = 0;
  let timeouts = 0;
  let non2xx = 0;
  const cpuAtStart = process.cpuUsage();
  const windowStart = performance.now() + spec.warmupS * 1000;
  const run = autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.warmupS + spec.durationS,
    timeout: spec.timeoutS,
  });
  run.on('response', (_client, statusCode, resBytes, responseTime) => {
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    if (statusCode < 200 || statusCode >= 300) {
      non2xx++;
      return;
    }
    if (performance.now() < windowStart) return;
    bytes += resBytes;
    times.record(responseTime);
  });
  run.on('reqError', (err: unknown) => {
    const key = err instanceof Error ? err.message : String(err);
    errors++;
    if (key === 'request timed out') timeouts++;
    errorMessages.set(key, (errorMessages.get(key) ?? 0) + 1);
  });
  await run;
  const cpu = process.cpuUsage(cpuAtStart);
  return {
    durationS: (performance.now() - windowStart) / 1000,
    requests: times.total,
    bytes,
    latency: times.build(),
    errors,
    timeouts,
    non2xx,
    statuses,
    errorMessages: Object.fromEntries(errorMessages),
    generator: 'autocannon',
    generatorCpuS: (cpu.user + cpu.system) / 1e6,
    cpuS: {},
  };
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
measure(spec).then(
  (result) => process.stdout.write(JSON.stringify(result) + '\n'),
  (err: unknown) => {
    process.stderr.write(`load worker: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
