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

export class ConfigFiles {
  readonly findings: Finding[] = [];

  /** Relative paths are read from `baseDir`: the config file's own directory. */
  constructor(private readonly baseDir: string) {}

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
        this.findings.push({ at: [...at, 'env'], message: `environment variable ${raw.env} is not set` });
        return undefined;
      }
      return value;
    }
    try {
      const value = readFileSync(this.resolvePath(raw.file), 'utf8').replace(/\r?\n$/, '');
      if (value === '') this.findings.push({ at: [...at, 'file'], message: `token file ${JSON.stringify(raw.file)} is empty` });
      return value || undefined;
    } catch (err) {
      this.findings.push({ at: [...at, 'file'], message: `cannot read token file ${JSON.stringify(raw.file)}: ${whyUnreadable(err)}` });
      return undefined;
    }
  }

  pem(file: string | undefined, at: PathSegment[]): Buffer | undefined {
    if (file === undefined) return undefined;
    try {
      const pem = readFileSync(this.resolvePath(file));
      if (!pem.includes('-----BEGIN ')) {
        this.findings.push({ at, message: `${JSON.stringify(file)} is not a PEM file (no "-----BEGIN" line)` });
        return undefined;
      }
      return pem;
    } catch (err) {
      this.findings.push({ at, message: `cannot read ${JSON.stringify(file)}: ${whyUnreadable(err)}` });
      return undefined;
    }
  }

  /** Cert, key and CA of one TLS end, or undefined when none is configured. */
  tls(files: { cert?: string | undefined; key?: string | undefined; ca?: string | undefined }, at: PathSegment[], caKey = 'ca'): TlsMaterial | undefined {
    const cert = this.pem(files.cert, [...at, 'cert']);
    const key = this.pem(files.key, [...at, 'key']);
    const ca = this.pem(files.ca, [...at, caKey]);
    if (!cert && !key && !ca) return undefined;
    return { ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(ca ? { ca } : {}) };
  }
}
