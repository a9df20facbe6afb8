/**
 * Test certificates made on the spot with the `openssl` command: a CA, server certificates
 * for 127.0.0.1, client certificates, and a second CA that has nothing to do with the first.
 * Everything is written as PEM files into a directory the caller owns (and removes). Each
 * openssl run is bounded by a timeout, so a missing or stuck openssl fails the test instead
 * of hanging it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A certificate and its private key, as PEM file paths. */
export interface CertFiles {
  cert: string;
  key: string;
}

/** A certificate authority that can issue certificates. */
export interface CertAuthority extends CertFiles {
  name: string;
  dir: string;
}

export interface IssueOptions {
  /** `server` certificates carry serverAuth, `client` ones clientAuth. */
  kind: 'server' | 'client';
  /** Subject alternative names, e.g. ["IP:127.0.0.1"]; servers default to IP:127.0.0.1. */
  altNames?: string[];
  /** Days of validity (default 2). */
  days?: number;
}

const OPENSSL_TIMEOUT_MS = 15_000;

/** Runs openssl with `args` in `cwd`; rejects with its stderr on failure or after the timeout. */
function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: OPENSSL_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve();
    });
  });
}

/** File-name friendly form of a certificate name. */
function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** A random serial, so two certificates never share one. */
function serial(): string {
  return `0x${randomBytes(8).toString('hex')}`;
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA (basicConstraints CA:TRUE, keyCertSign) named `name`. */
export async function makeCa(dir: string, name: string): Promise<CertAuthority> {
  const base = path.join(dir, slug(name));
  const cert = `${base}.crt`;
  const key = `${base}.key`;
  await openssl([
    'req', '-x509', ...KEY_ARGS, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-set_serial', serial(),
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], dir);
  return { name, dir, cert, key };
}

/** A certificate signed by `ca`, for a server (default SAN IP:127.0.0.1) or a client. */
export async function issue(ca: CertAuthority, name: string, opts: IssueOptions): Promise<CertFiles> {
  const base = path.join(ca.dir, `${slug(ca.name)}--${slug(name)}`);
  const csr = `${base}.csr`;
  const ext = `${base}.ext`;
  const cert = `${base}.crt`;
  const key = `${base}.key`;
  const altNames = opts.altNames ?? (opts.kind === 'server' ? ['IP:127.0.0.1'] : []);
  const lines = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${opts.kind === 'server' ? 'serverAuth' : 'clientAuth'}`,
    ...(altNames.length ? [`subjectAltName=${altNames.join(',')}`] : []),
  ];
  await writeFile(ext, lines.join('\n') + '\n');
  await openssl(['req', ...KEY_ARGS, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], ca.dir);
  await openssl([
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial(),
    '-out', cert, '-days', String(opts.days ?? 2), '-extfile', ext,
  ], ca.dir);
  return { cert, key };
}

/** Everything the security tests need, made once per test file. */
export interface TestPki {
  /** The CA the nodes trust. */
  ca: CertAuthority;
  /** A second CA, unrelated to `ca`. */
  otherCa: CertAuthority;
  /** Server certificate for 127.0.0.1, signed by `ca`. */
  server: CertFiles;
  /** Server certificate signed by `ca` for another host only (DNS:elsewhere.invalid). */
  wrongHost: CertFiles;
  /** Client certificate signed by `ca`. */
  client: CertFiles;
  /** Client certificate signed by `otherCa`. */
  otherClient: CertFiles;
}

/** Makes the two CAs and their certificates in `dir` (openssl runs in parallel where it can). */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const [ca, otherCa] = await Promise.all([makeCa(dir, 'west test CA'), makeCa(dir, 'unrelated test CA')]);
  const [server, wrongHost, client, otherClient] = await Promise.all([
    issue(ca, '127.0.0.1', { kind: 'server' }),
    issue(ca, 'elsewhere.invalid', { kind: 'server', altNames: ['DNS:elsewhere.invalid'] }),
    issue(ca, 'site-client', { kind: 'client' }),
    issue(otherCa, 'stranger-client', { kind: 'client' }),
  ]);
  return { ca, otherCa, server, wrongHost, client, otherClient };
}

/** The PEM text of a file (for https.request's `ca`, `cert`, `key`). */
export function pem(file: string): Promise<Buffer> {
  return readFile(file);
}
