/**
 * Flow control over a long link, through real `west` processes: L dials G through a delay
 * relay (50 ms round trip), a 32 MiB download arrives whole and right, and L's receive window
 * for it has grown past `streamWindow` (read from L's /state.json, as an operator would).
 * Nothing here is timed: the window grows because each one drains within the round trip.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Pair, SHORT_TIMERS } from '../helpers/chain.js';
import { startDelayRelay, type DelayRelay } from '../helpers/delay-relay.js';
import { fetchText, freePort } from '../helpers/net.js';
import { Origin, patternSha256 } from '../helpers/origin.js';
import { openRequest, hashBody } from '../helpers/stream.js';
import { stopAll, tempDir } from '../helpers/west.js';
import { DEFAULT_TUNING } from '../../src/config/types.js';

const origin = new Origin();
let tmp: { dir: string; cleanup: () => Promise<void> } | undefined;
const MiB = 1024 * 1024;
const STREAM_WINDOW = 256 * 1024;

interface FlowView { rttMs?: number; connectionWindow?: number; streamWindowMax: number; streamWindowPeak: number }
interface StateView { tunnels: { connected: boolean; flow?: FlowView }[]; server?: { peers: { flow?: FlowView }[] } }

let relay: DelayRelay | undefined;
let p: Pair;

before(async () => {
  await origin.listen();
  tmp = await tempDir('west-flow-');
  const dir = tmp.dir;
  // G and L are stopped by stopAll() in after().
  ({ pair: p } = await Pair.launch(async () => {
    await relay?.close();
    const serverPort = await freePort();
    relay = await startDelayRelay({ targetPort: serverPort, rttMs: 50 });
    return { dir, tag: 'flow', originPort: origin.port, serverPort, lDials: `ws://127.0.0.1:${relay.port}` };
  }));
});

after(async () => {
  await stopAll();
  await relay?.close();
  await origin.close();
  await tmp?.cleanup();
});

async function state(control: string): Promise<StateView> {
  return JSON.parse((await fetchText(`${control}/state.json`)).text) as StateView;
}

test('flow e2e: a 32 MiB download over a 50 ms link arrives whole, and the receiver\'s window grew past streamWindow', async () => {
  assert.equal(SHORT_TIMERS.heartbeat, 1, 'pings every second: the RTT is measured early');
  const size = 32 * MiB;
  const { req, res } = await openRequest(`${p.lUrl}/big/bytes/${size}`, { timeoutMs: 120_000 });
  try {
    assert.equal(res.statusCode, 200);
    const got = await hashBody(res, 0);
    assert.equal(got.bytes, size);
    assert.equal(got.sha256, patternSha256(size));
  } finally {
    req.destroy();
  }
  const flow = (await state(p.control.L)).tunnels[0]?.flow;
  assert.ok(flow, 'L reports flow state for its tunnel');
  assert.ok((flow.rttMs ?? 0) >= 50, `the RTT includes the relay's 50 ms (${flow.rttMs})`);
  assert.ok(flow.streamWindowPeak > STREAM_WINDOW, `L's window for the download grew (peak ${flow.streamWindowPeak})`);
  assert.ok(flow.streamWindowPeak <= DEFAULT_TUNING.maxStreamWindow, 'and stayed within maxStreamWindow');
  assert.ok((flow.connectionWindow ?? 0) >= 16 * STREAM_WINDOW, 'the tunnel has its own window (both nodes announce connection-window)');
  // G sees the same tunnel from its side.
  const peer = (await state(p.control.G)).server?.peers[0]?.flow;
  assert.ok(peer && (peer.rttMs ?? 0) >= 50);
});
