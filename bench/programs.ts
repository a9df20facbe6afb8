/**
 * The programs the benchmark runs beside Node (wrk, nginx), found on PATH or where Debian puts
 * them (/usr/sbin is not on a non-root user's PATH), and what to say when one is missing.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of an executable `name`, or undefined when there is none. */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch { /* not here */ }
  }
  return undefined;
}

/** The Debian package that provides each program, for the hint printed when it is missing. */
export const DEBIAN_PACKAGE = { wrk: 'wrk', nginx: 'nginx-light' } as const;

/** A loud, boxed warning on stderr. */
export function warnLoudly(lines: string[]): void {
  const width = Math.max(...lines.map((l) => l.length));
  const rule = '!'.repeat(width + 4);
  process.stderr.write(`\n${rule}\n${lines.map((l) => `! ${l.padEnd(width)} !`).join('\n')}\n${rule}\n\n`);
}
