/** A WestNode in-process: what it makes of its config's listeners. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { WestNode } from '../../src/node.js';
import { ROOT } from '../helpers/west.js';

test('two listeners on port 0 of one host are two listeners, each on its own port', async () => {
  const config = parseConfig(JSON.stringify({
    west: { nm: 'n' },
    wsts: { sp: 'ws://127.0.0.1:0' },
    proxy: {
      'http://127.0.0.1:0': { en: 'peer', '/a': { ou: 'http://127.0.0.1:1/' } },
      'https://127.0.0.1:0': { en: 'peer', cert: 'tls/server.crt', key: 'tls/server.key', '/b': { ou: 'http://127.0.0.1:1/' } },
    },
  }), path.join(ROOT, 'test', 'fixtures', 'mem.json'));
  const node = new WestNode(config, silentLogger);
  try {
    await node.start();
    const ports = [...node.listeners.values()].map((l) => l.port);
    assert.equal(ports.length, 2);
    assert.ok(ports.every((p) => p > 0) && ports[0] !== ports[1], `ports ${ports.join(', ')}`);
  } finally {
    await node.stop(0);
  }
});
