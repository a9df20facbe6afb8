#!/usr/bin/env node
/**
 * `npm start` builds only when it must: when a source the compiler reads (src/, test/, bench/,
 * tsconfig.json, package.json) is newer than the last build, or there is no build. A build
 * cleans dist/ first (a deleted source must not leave its old .js behind) and stamps it.
 *
 *   node scripts/build-if-stale.mjs [--check] [--root DIR]
 *
 * --force builds whatever the times say (npm run build). --check only says "stale" (exit 1) or "up to date" (exit 0).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const rootAt = args.indexOf('--root');
const root = rootAt >= 0 ? path.resolve(args[rootAt + 1]) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.build-stamp');

/** The newest modification time under `p` (0 when it does not exist). */
function newest(p) {
  let st;
  try {
    st = statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let t = st.mtimeMs; // a deleted file shows as its directory's change
  for (const e of readdirSync(p)) t = Math.max(t, newest(path.join(p, e)));
  return t;
}

const built = newest(stamp);
const sources = Math.max(...['src', 'test', 'bench', 'tsconfig.json', 'package.json'].map((f) => newest(path.join(root, f))));
const stale = args.includes('--force') || built === 0 || sources > built;

if (args.includes('--check')) {
  process.stdout.write(stale ? 'stale\n' : 'up to date\n');
  process.exit(stale ? 1 : 0);
}
if (stale) {
  rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}
