/** A node says at start-up which of its settings leave a door open (doc/security.md, warnings). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

test('a control-port token file others can read is warned about at start-up, by path, never by value', async () => {
  const { dir, cleanup } = await tempDir('west-warnings-');
  try {
    const tokenFile = path.join(dir, 'cp.token');
    await writeFile(tokenFile, 'sekret-value\n');
    await chmod(tokenFile, 0o644);
    const config = await writeConfig(dir, 'n.json', { west: { nm: 'n', cp: '127.0.0.1:0', cpToken: { file: tokenFile } } });
    const node = await WestProcess.start(config);
    const warning = await node.waitForEvent('security.secret_file_readable');
    assert.equal(warning.level, 'warn');
    assert.match(JSON.stringify(warning), /cp\.token/);
    assert.doesNotMatch(node.stderr, /sekret-value/);
  } finally {
    await stopAll();
    await cleanup();
  }
});
