/** Router: what a request learns when its tunnel is not there. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { WestError } from '../../src/errors.js';
import { Router } from '../../src/routing.js';
import type { TunnelClient } from '../../src/tunnel/client.js';
import { at } from '../helpers/at.js';

test('a tunnel that is down answers 503 without the reason it is down (that is in the log)', async () => {
  const config = parseConfig(JSON.stringify({
    west: { nm: 'L' },
    proxy: { 'http://127.0.0.1:9911': { ea: 'ws://127.0.0.1:9801', '/p': { ou: 'http://127.0.0.1:9921/' } } },
  }));
  const down = {
    acquire: () => Promise.resolve(undefined),
    lastError: 'server answered 409: name L is already connected from 10.1.2.3:50862 (wsts.claim is "refuse")',
  } as unknown as TunnelClient;
  const router = new Router({ config, server: undefined, clients: new Map([['ws://127.0.0.1:9801', down]]), listeners: new Map() });
  const result = await router.sessionFor(at(config.listeners, 0));
  assert.ok(result instanceof WestError);
  assert.equal(result.code, 'tunnel_down');
  assert.doesNotMatch(result.message, /10\.1\.2\.3|409|claim/);
});
