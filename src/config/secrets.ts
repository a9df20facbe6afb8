/**
 * Reading what a config points to: tokens (inline, from a file or from the environment) and
 * PEM files. Problems become findings at the key's JSON path, so `west check` reports a
 * missing token file like any other config error.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { PathSegment } from './json-text.js';
import type { Finding } from './messages.js';
import type { RawSecret, TlsMaterial } from './types.js';

/** Why a file the config names (or the config itself) could not be read, for the operator. */
export function whyUnreadable(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'no such file'
    : code === 'EACCES' ? 'permission denied'
    : code === 'EISDIR' ? 'it is a directory, not a file'
    : String((err as Partial<Error>).message);
}

/** Errors a secret gets when it is simply not on this machine: skipped by `--skip-secrets`. */
const NOT_HERE = new Set(['ENOENT', 'EACCES', 'EPERM']);

export class ConfigFiles {
  readonly findings: Finding[] = [];
  /** Secrets not read because they are not on this machine (only with `skipSecrets`). */
  readonly skipped: Finding[] = [];

  /**
   * Relative paths are read from `baseDir`: the config file's own directory. With
   * `skipSecrets` (`west check --skip-secrets`, on a machine that is not the node), a token
   * whose variable is unset or whose file is absent or unreadable, and a TLS key file likewise,
   * is noted in `skipped` instead of being an error.
   */
  constructor(private readonly baseDir: string, private readonly skipSecrets = false) {}

  private notHere(at: PathSegment[], message: string): void {
    (this.skipSecrets ? this.skipped : this.findings).push({ at, message });
  }

  private resolvePath(file: string): string {
    return path.resolve(this.baseDir, file);
  }

  /** The token a RawSecret names, or undefined (with a finding) when it cannot be had. */
  secret(raw: RawSecret | undefined, at: PathSegment[]): string | undefined {
    if (raw === undefined) return undefined;
    if (typeof raw === 'string') return raw;
    if ('env' in raw) {
      const value = process.env[raw.env];
      if (value === undefined || value === '') {
        this.notHere([...at, 'env'], `environment variable ${raw.env} is not set`);
        return undefined;
      }
      return value;
    }
    try {
      const value = readFileSync(this.resolvePath(raw.file), 'utf8').replace(/\r?\n$/, '');
      if (value === '') this.findings.push({ at: [...at, 'file'], message: `token file ${JSON.stringify(raw.file)} is empty` });
      return value || undefined;
    } catch (err) {
      const message = `cannot read token file ${JSON.stringify(raw.file)}: ${whyUnreadable(err)}`;
      if (NOT_HERE.has(String((err as NodeJS.ErrnoException).code))) this.notHere([...at, 'file'], message);
      else this.findings.push({ at: [...at, 'file'], message });
      return undefined;
    }
  }

  /** A PEM file; `secret` marks a private key, which `skipSecrets` may skip. */
  pem(file: string | undefined, at: PathSegment[], secret = false): Buffer | undefined {
    if (file === undefined) return undefined;
    try {
      const pem = readFileSync(this.resolvePath(file));
      if (!pem.includes('-----BEGIN ')) {
        this.findings.push({ at, message: `${JSON.stringify(file)} is not a PEM file (no "-----BEGIN" line)` });
        return undefined;
      }
      return pem;
    } catch (err) {
      const message = `cannot read ${JSON.stringify(file)}: ${whyUnreadable(err)}`;
      if (secret && NOT_HERE.has(String((err as NodeJS.ErrnoException).code))) this.notHere(at, message);
      else this.findings.push({ at, message });
      return undefined;
    }
  }

  /** Cert, key and CA of one TLS end, or undefined when none is configured. */
  tls(files: { cert?: string | undefined; key?: string | undefined; ca?: string | undefined }, at: PathSegment[], caKey = 'ca'): TlsMaterial | undefined {
    const cert = this.pem(files.cert, [...at, 'cert']);
    const key = this.pem(files.key, [...at, 'key'], true);
    const ca = this.pem(files.ca, [...at, caKey]);
    if (!cert && !key && !ca) return undefined;
    return { ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(ca ? { ca } : {}) };
  }
}
