/**
 * What a test file of TLS tunnels sets up before its tests and takes down after: an origin,
 * a temporary directory and a test PKI in it (fields filled in by the `before` hook).
 */
import { after, before } from 'node:test';
import { Origin } from './origin.js';
import { makeTestPki, type TestPki } from './tls.js';
import { stopAll, tempDir } from './west.js';

export interface TlsFixture {
  origin: Origin;
  dir: string;
  pki: TestPki;
}

/** Registers the file's hooks; read the fields inside tests, not at load. */
export function tlsFixture(prefix: string): TlsFixture {
  const fx = {} as TlsFixture;
  let cleanup: (() => Promise<void>) | undefined;
  before(async () => {
    fx.origin = new Origin();
    await fx.origin.listen();
    const made = await tempDir(prefix);
    fx.dir = made.dir;
    cleanup = made.cleanup;
    fx.pki = await makeTestPki(fx.dir);
  });
  after(async () => {
    await stopAll();
    await fx.origin.close();
    await cleanup?.();
  });
  return fx;
}
