/**
 * One request id follows a request through every hop of the three-node chain (sample/case4):
 * G's listener, L's far end and listener, L2's far end all log it, and the origin sees it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fetchText, waitFor } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { startSamples, stopAll, tempDir, type LogEvent, type WestProcess } from '../helpers/west.js';

/** In the order they start: the chain's far end first, its entry last. */
const FILES = ['case4/L2.json', 'case4/L.json', 'case4/G.json'];
const origin = new Origin();
let g: WestProcess;
let l: WestProcess;
let l2: WestProcess;
let entry: string;
let cleanup: () => Promise<void>;

before(async () => {
  const tmp = await tempDir('west-request-id-');
  cleanup = tmp.cleanup;
  const { nodes, ports } = await startSamples(tmp.dir, FILES, { server: origin, samplePort: 9983 });
  [l2, l, g] = [nodes.get('case4/L2.json')!, nodes.get('case4/L.json')!, nodes.get('case4/G.json')!];
  entry = `http://127.0.0.1:${ports.get(9981)}/baz`;
  await waitFor('the chain to carry a request', async () => (await fetchText(`${entry}/echo`)).status === 200, 20_000);
});

after(async () => {
  await stopAll();
  await origin.close();
  await cleanup();
});

const withId = (id: string) => (e: LogEvent): boolean => e.id === id;

test('a client-given X-Request-Id is logged by every hop and reaches the origin', async () => {
  const id = 'trace-7f3a-0001';
  const res = await fetchText(`${entry}/echo`, { headers: { 'X-Request-Id': id } });
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.text) as { headers: Record<string, string> };
  assert.equal(seen.headers['x-request-id'], id);
  const gAccess = await g.waitForEvent('access', withId(id));
  const lPerform = await l.waitForEvent('perform', withId(id));
  const lAccess = await l.waitForEvent('access', withId(id));
  const l2Perform = await l2.waitForEvent('perform', withId(id));
  assert.equal(gAccess.status, 200);
  assert.equal(lAccess.status, 200);
  assert.equal(lPerform.status, 200);
  assert.equal(l2Perform.status, 200);
  assert.match(String(l2Perform.url), /\/a\/echo$/);
});

test('without an id, the first hop makes one and every later hop logs that same one', async () => {
  const res = await fetchText(`${entry}/echo?q=2`);
  assert.equal(res.status, 200);
  const id = (JSON.parse(res.text) as { headers: Record<string, string> }).headers['x-request-id'];
  assert.match(id ?? '', /^[0-9a-f-]{36}$/);
  await g.waitForEvent('access', withId(id!));
  await l.waitForEvent('perform', withId(id!));
  await l.waitForEvent('access', withId(id!));
  await l2.waitForEvent('perform', withId(id!));
});

test('a failure deep in the chain is logged with the same id and the node where it failed', async () => {
  const port = origin.port;
  await origin.close();
  try {
    const id = 'trace-7f3a-0002';
    const res = await fetchText(`${entry}/echo`, { headers: { 'X-Request-Id': id } });
    assert.equal(res.status, 502);
    const l2Perform = await l2.waitForEvent('perform', withId(id));
    assert.equal(l2Perform.error, 'origin_refused');
    const gAccess = await g.waitForEvent('access', withId(id));
    assert.equal(gAccess.status, 502);
  } finally {
    await origin.listen(port);
  }
});
