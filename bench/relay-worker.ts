/**
 * The delay relay (test/helpers/delay-relay.ts) as a process of its own, so that its timers do
 * not share an event loop with the clients it delays: `node dist/bench/relay-worker.js
 * <target port> <rtt ms>`. Prints `{"port": N}` when listening; SIGTERM closes it.
 */
import { startDelayRelay } from '../test/helpers/delay-relay.js';

const targetPort = Number(process.argv[2]);
const rttMs = Number(process.argv[3]);
if (!Number.isInteger(targetPort) || !(rttMs >= 0)) {
  process.stderr.write('usage: relay-worker.js <target port> <rtt ms>\n');
  process.exit(2);
}

const relay = await startDelayRelay({ targetPort, rttMs });
process.stdout.write(JSON.stringify({ port: relay.port }) + '\n');
process.on('SIGTERM', () => {
  void relay.close().finally(() => process.exit(0));
});
