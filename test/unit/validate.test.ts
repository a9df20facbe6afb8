import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fc from 'fast-check';
import { invalidHeaders, invalidRequestHead, invalidResponseHead } from '../../src/proxy/shared/validate.js';

const requests: [string, string, string[], RegExp | undefined][] = [
  ['plain GET', 'GET', ['Accept', '*/*'], undefined],
  ['extension method', 'PROPFIND', [], undefined],
  ['obs-text value', 'GET', ['X-Name', 'caf\u00e9'], undefined],
  ['tab in value', 'GET', ['X-A', 'a\tb'], undefined],
  ['method with a space', 'GET /x HTTP/1.1', [], /method "GET \/x HTTP\/1.1" is not an HTTP token/],
  ['empty method', '', [], /is not an HTTP token/],
  ['CR/LF in a value', 'GET', ['X-A', 'a\r\nInjected: 1'], /header "X-A"/],
  ['bare LF in a value', 'GET', ['X-A', 'a\nb'], /header "X-A"/],
  ['NUL in a value', 'GET', ['X-A', 'a\u0000b'], /header "X-A"/],
  ['space in a name', 'GET', ['X A', 'b'], /header "X A"/],
  ['colon in a name', 'GET', ['X:A', 'b'], /header "X:A"/],
  ['empty name', 'GET', ['', 'b'], /header ""/],
];

for (const [name, method, headers, want] of requests) {
  test(`request head: ${name}`, () => {
    const got = invalidRequestHead(method, headers);
    if (want) assert.match(got ?? '', want);
    else assert.equal(got, undefined);
  });
}

const responses: [string, number, string, string[], RegExp | undefined][] = [
  ['200 OK', 200, 'OK', ['Content-Type', 'text/plain'], undefined],
  ['empty reason', 204, '', [], undefined],
  ['101 with upgrade headers', 101, 'Switching Protocols', ['Upgrade', 'websocket', 'Connection', 'Upgrade'], undefined],
  ['CR/LF in the reason', 200, 'OK\r\nX-Injected: 1', [], /status message/],
  ['status 99', 99, 'x', [], /status 99/],
  ['status 1000', 1000, 'x', [], /status 1000/],
  ['CR/LF in a header value', 200, 'OK', ['Set-Cookie', 'a=b\r\n\r\n<html>'], /header "Set-Cookie"/],
];

for (const [name, status, reason, headers, want] of responses) {
  test(`response head: ${name}`, () => {
    const got = invalidResponseHead(status, reason, headers);
    if (want) assert.match(got ?? '', want);
    else assert.equal(got, undefined);
  });
}

test('a header is refused exactly when Node\'s own validators refuse it', () => {
  const nodeRefuses = (name: string, value: string): boolean => {
    try {
      http.validateHeaderName(name);
      http.validateHeaderValue(name, value);
      return false;
    } catch {
      return true;
    }
  };
  const text = fc.string({ unit: fc.integer({ min: 0, max: 0x17f }).map((c) => String.fromCharCode(c)), maxLength: 6 });
  fc.assert(fc.property(text, text, (name, value) => {
    assert.equal(invalidHeaders([name, value]) !== undefined, nodeRefuses(name, value), JSON.stringify([name, value]));
  }), { numRuns: 5000 });
});
