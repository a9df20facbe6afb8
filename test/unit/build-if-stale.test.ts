/** `npm start` rebuilds only when a source is newer than the last build (scripts/build-if-stale.mjs). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/west.js';

const SCRIPT = path.join(ROOT, 'scripts', 'build-if-stale.mjs');
let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  ({ dir, cleanup } = await tempDir('west-stale-'));
});
after(() => cleanup());

function check(): string {
  const r = spawnSync(process.execPath, [SCRIPT, '--check', '--root', dir], { encoding: 'utf8' });
  assert.equal(r.stderr, '');
  return r.stdout.trim();
}

test('npm start uses the script, which builds only when needed', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.start!, /^node scripts\/build-if-stale\.mjs && /);
  assert.doesNotMatch(pkg.scripts.start!, /npm run (build|clean)/);
});

test('no build: stale; a build newer than every source: up to date; a source edited after it: stale', async () => {
  const t0 = new Date('2024-01-01T00:00:00Z');
  const t1 = new Date('2024-01-02T00:00:00Z');
  const t2 = new Date('2024-01-03T00:00:00Z');
  await mkdir(path.join(dir, 'src', 'control'), { recursive: true });
  const files = ['src/control/a.ts', 'src/b.ts', 'tsconfig.json', 'package.json'];
  for (const f of files) await writeFile(path.join(dir, f), '');
  for (const d of ['src/control', 'src', '.']) await utimes(path.join(dir, d), t0, t0);
  for (const f of files) await utimes(path.join(dir, f), t0, t0);
  assert.equal(check(), 'stale');

  await mkdir(path.join(dir, 'dist'));
  await writeFile(path.join(dir, 'dist', '.build-stamp'), '');
  await utimes(path.join(dir, 'dist', '.build-stamp'), t1, t1);
  assert.equal(check(), 'up to date');

  await utimes(path.join(dir, 'src/control/a.ts'), t2, t2);
  assert.equal(check(), 'stale');
});
