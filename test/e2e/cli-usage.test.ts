/**
 * How a new user meets the `west` command: the npm package's name and its `west` bin, typos
 * and unknown commands, shell completion, and the original's usage line (-O, --output,
 * --input, --debug N) accepted as it was.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/west.js';

describe('the npm package', () => {
  test('is not named `west` (an unrelated package on the registry) and installs the `west` command', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
    assert.notEqual(pkg.name, 'west');
    assert.equal(pkg.name, 'west-tunnel');
    assert.equal(pkg.bin.west, 'dist/src/cli.js');
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const line of ['npm install -g west-tunnel', 'npx west-tunnel', 'npm link']) assert.ok(readme.includes(line), `README.md does not say ${line}`);
  });
});
