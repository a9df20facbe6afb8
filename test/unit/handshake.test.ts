import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import { certificateNames } from '../../src/tunnel/handshake.js';

/** Only the fields certificateNames reads, as Node's getPeerCertificate() fills them. */
const cert = (CN: string | string[] | undefined, subjectaltname?: string): Partial<PeerCertificate> =>
  ({ subject: { CN }, ...(subjectaltname !== undefined ? { subjectaltname } : {}) });

const CASES: { name: string; cert: Partial<PeerCertificate> | undefined; want: string[] }[] = [
  { name: 'no certificate (getPeerCertificate() on a plain socket)', cert: undefined, want: [] },
  { name: 'an empty object (a TLS socket without a client certificate)', cert: {}, want: [] },
  { name: 'a CN only', cert: cert('site-L'), want: ['site-L'] },
  { name: 'several CNs', cert: cert(['site-L', 'site-L2']), want: ['site-L', 'site-L2'] },
  { name: 'DNS names after the CN', cert: cert('gw-7', 'DNS:site-N, DNS:site-N2'), want: ['gw-7', 'site-N', 'site-N2'] },
  { name: 'other SAN kinds are not names', cert: cert('gw-7', 'IP Address:127.0.0.1, URI:http://DNS:evil/, email:a@b, DNS:site-N'), want: ['gw-7', 'site-N'] },
  { name: 'a quoted DNS value holding a comma', cert: cert(undefined, 'DNS:"a,b", DNS:site-N'), want: ['a,b', 'site-N'] },
  { name: 'the original\'s URL form is made canonical', cert: cert('ws://site-L/', 'DNS:wss://site-N'), want: ['site-L', 'site-N'] },
];

for (const c of CASES) {
  test(`certificateNames: ${c.name}`, () => {
    assert.deepEqual(certificateNames(c.cert), c.want);
  });
}
