/**
 * doc/wazigate.md: "All bodies held at once by a node's wazigate listeners count against
 * west.memoryBudget". Two cloud listeners of one node, each holding most of the budget: the
 * node answers one of them 503 instead of holding twice its budget.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { freePort } from '../helpers/net.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const sockets: net.Socket[] = [];
let cleanup: () => Promise<void> = async () => undefined;

after(async () => {
  for (const s of sockets) s.destroy();
  await stopAll();
  await cleanup();
});

/** Sends a request head promising `length` bytes and all but the last of them; resolves with what comes back once the server answers. */
function heldBody(port: number, length: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    let got = '';
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) resolve(got);
    });
    s.on('close', () => resolve(got));
    s.write(`POST /gw-a/rest/x HTTP/1.1\r\nHost: cloud\r\nContent-Length: ${length}\r\n\r\n`);
    s.write(Buffer.alloc(length - 1, 0x61));
  });
}

test("a node's wazigate listeners share west.memoryBudget for the bodies they hold", async () => {
  const t = await tempDir('west-wazigate-budget-');
  cleanup = t.cleanup;
  const [p1, p2, deadBroker] = [await freePort(), await freePort(), await freePort()];
  const cloud = { broker: `mqtt://127.0.0.1:${deadBroker}`, user: 'cloud', password: 'x', timeout: 30 };
  await WestProcess.start(await writeConfig(t.dir, 'cloud.json', {
    west: { nm: 'cloud', memoryBudget: 1_048_576, reconnectMin: 0.5, reconnectMax: 1 },
    proxy: { [`http://127.0.0.1:${p1}`]: { wazigate: cloud }, [`http://127.0.0.1:${p2}`]: { wazigate: cloud } },
  }));
  // 700 kB each: either alone fits in the 1 MiB budget, both together do not.
  const answers = [heldBody(p1, 700_000), heldBody(p2, 700_000)];
  const first = await Promise.race([
    ...answers,
    new Promise<string>((resolve) => setTimeout(() => resolve('(no answer within 10 s)'), 10_000)),
  ]);
  assert.match(first, /^HTTP\/1\.1 503 /, `one of the two bodies is refused once the node holds its budget; got: ${first.slice(0, 80)}`);
});
