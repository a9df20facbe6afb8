/** sample/hardened's certificates work whatever the date a user tries them: valid 2020 to 2100. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SAMPLES } from '../helpers/west.js';

const TLS = path.join(SAMPLES, 'hardened', 'tls');

for (const name of ['ca.crt', 'relay.crt', 'site-L.crt']) {
  test(`sample/hardened/tls/${name} is valid from 2020 or before until 2100`, () => {
    const cert = new X509Certificate(readFileSync(path.join(TLS, name)));
    assert.ok(new Date(cert.validFrom) <= new Date('2020-01-01T00:00:00Z'), `notBefore ${cert.validFrom}`);
    assert.ok(new Date(cert.validTo) >= new Date('2100-01-01T00:00:00Z'), `notAfter ${cert.validTo}`);
  });
}

test('the relay and site certificates are signed by the sample CA and match their keys', () => {
  const ca = new X509Certificate(readFileSync(path.join(TLS, 'ca.crt')));
  for (const name of ['relay', 'site-L']) {
    const cert = new X509Certificate(readFileSync(path.join(TLS, `${name}.crt`)));
    assert.ok(cert.verify(ca.publicKey), `${name}.crt is signed by ca.crt`);
    assert.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(path.join(TLS, `${name}.key`)))), `${name}.crt matches ${name}.key`);
  }
});
