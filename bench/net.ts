/**
 * Network helpers for the benchmark: one-shot requests and readiness. Free ports and bounded
 * polling are the tests' own (below the ephemeral range, so a port is not taken by an outgoing
 * connection between the pick and the bind).
 */
import http from 'node:http';
import { waitFor } from '../test/helpers/net.js';

export { freePort, waitFor } from '../test/helpers/net.js';

/** GET `url` on a fresh connection; resolves with the status and the body as text (bounded). */
export function get(url: string, timeoutMs = 5000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (text.length < 4 * 1024 * 1024) text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** Waits until GET `url` answers 200 (a chain is ready when a request crosses it). */
export async function waitFor200(url: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(`200 from ${url}`, async () => (await get(url, 2000)).status === 200, timeoutMs, 100);
}
