/**
 * Raw TCP through a tunnel (doc/tcp.md): a `tcp://` listener at a site whose target is the hub
 * (and one at the hub whose target is the site: the reverse direction, streams the server side
 * opens). Half-close is carried (a client that sends and shuts its write side still gets the
 * whole answer), resets are carried both ways, and an address outside the far end's
 * `west.egress` is refused and logged at both ends.
 *
 *   client -> site [tcp://] ==> hub -> origin        client -> hub [tcp://] ==> site -> origin
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Mesh } from '../helpers/mesh.js';
import { fetchText, waitFor } from '../helpers/net.js';
import { expectedReply, tcpExchange, tcpListenerAddress, tcpOrigin, type TcpOrigin } from '../helpers/tcp.js';
import { runCli, tempDir } from '../helpers/west.js';

describe('tcp:// listeners', () => {
  let mesh: Mesh;
  let answer: TcpOrigin;
  let resetter: TcpOrigin;
  let echo: TcpOrigin;
  let cleanup: () => Promise<void> = async () => {};
  const none = { host: '', port: 0 };
  const port = { answer: none, reset: none, echo: none, denied: none, reverse: none, closed: none, guarded: none };

  before(async () => {
    answer = await tcpOrigin('answer-after-eof');
    resetter = await tcpOrigin('reset');
    echo = await tcpOrigin('echo');
    const t = await tempDir('west-tcp-');
    cleanup = t.cleanup;
    const at = (p: number): string => `127.0.0.1:${p}`;
    mesh = await Mesh.launch(t.dir, [
      {
        name: 'hub', server: true,
        west: { egress: { site: [`tcp://${at(answer.port)}`, `tcp://${at(resetter.port)}`, `tcp://${at(echo.port)}`, 'tcp://127.0.0.1:1'] } },
        proxy: { 'tcp://127.0.0.1:0': { en: 'site', to: at(echo.port) } },
      },
      {
        name: 'site', dials: ['hub'],
        west: { egress: { hub: [`tcp://${at(echo.port)}`] } },
        proxy: {
          // Port 0 keys must differ: the host spells them apart (127.0.0.1, 127.1, localhost, ...).
          'tcp://127.0.0.1:0': { en: 'hub', to: at(answer.port) },
          'tcp://127.0.0.2:0': { en: 'hub', to: at(resetter.port) },
          'tcp://127.0.0.3:0': { en: 'hub', to: at(echo.port) },
          'tcp://127.0.0.4:0': { en: 'hub', to: '127.0.0.1:22' },
          'tcp://127.0.0.5:0': { en: 'hub', to: '127.0.0.1:1' },
          'tcp://127.0.0.6:0': { en: 'hub', to: at(echo.port), ca: ['10.1.2.3', '192.168.0.0/16'] },
        },
      },
    ]);
    await mesh.route('site', 'hub');
    await mesh.route('hub', 'site');
    const site = mesh.proc('site');
    port.answer = await tcpListenerAddress(site, 'tcp://127.0.0.1:0');
    port.reset = await tcpListenerAddress(site, 'tcp://127.0.0.2:0');
    port.echo = await tcpListenerAddress(site, 'tcp://127.0.0.3:0');
    port.denied = await tcpListenerAddress(site, 'tcp://127.0.0.4:0');
    port.closed = await tcpListenerAddress(site, 'tcp://127.0.0.5:0');
    port.guarded = await tcpListenerAddress(site, 'tcp://127.0.0.6:0');
    port.reverse = await tcpListenerAddress(mesh.proc('hub'), 'tcp://127.0.0.1:0');
  });

  after(async () => {
    await mesh?.stopAll();
    await Promise.all([answer?.close(), resetter?.close(), echo?.close()]);
    await cleanup();
  });

  test('half-close: a client that sends and shuts its write side gets the whole answer (an origin that reads to EOF)', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const r = await tcpExchange(port.answer, data);
    assert.equal(r.data.toString(), expectedReply(data));
    assert.equal(r.how, 'eof');
    const rec = await mesh.proc('site').waitForEvent('tcp.access', (e) => e.listener === 'tcp://127.0.0.1:0' && e.in === data.length);
    assert.equal(rec.outcome, 'closed');
    assert.equal(rec.out, expectedReply(data).length);
    assert.equal(rec.target, 'hub');
  });

  test('half-close the other way: the origin finishes first and the client keeps sending (echo)', async () => {
    const r = await tcpExchange(port.echo, 'ping over a tunnel');
    assert.equal(r.data.toString(), 'ping over a tunnel');
    assert.equal(r.how, 'eof');
  });

  test('the origin resetting (RST) resets the client', async () => {
    // The client answers the greeting, and the origin resets on that: a reset that comes right
    // after the last bytes were written can reach a client as a FIN (Linux), with or without west.
    const r = await tcpExchange(port.reset, '', { keepOpen: true, onData: (s) => s.write('x') });
    const rec = await mesh.proc('site').waitForEvent('tcp.access', (e) => e.listener === 'tcp://127.0.0.2:0');
    const far = await mesh.proc('hub').waitForEvent('perform', (e) => e.id === rec.id);
    assert.equal(r.how, 'reset', `got ${r.how} after ${JSON.stringify(r.data.toString())}; ${JSON.stringify(rec)} ${JSON.stringify(far)}`);
    assert.equal(rec.outcome, 'reset');
  });

  test('the client resetting aborts the origin connection (the origin sees ECONNRESET)', async () => {
    const before = echo.seen.length;
    const r = await tcpExchange(port.echo, 'first', { keepOpen: true, onData: (s) => s.resetAndDestroy() });
    assert.equal(r.data.toString(), 'first');
    await waitFor('the origin connection to close', () => echo.seen.length > before);
    assert.equal(echo.seen[echo.seen.length - 1], 'reset');
  });

  test('an address outside the far end\'s west.egress is refused, and logged at both ends', async () => {
    const r = await tcpExchange(port.denied, 'SSH-2.0-probe\r\n', { keepOpen: true });
    assert.equal(r.data.length, 0);
    const rec = await mesh.proc('site').waitForEvent('tcp.access', (e) => e.listener === 'tcp://127.0.0.4:0');
    assert.equal(rec.outcome, 'refused');
    assert.equal(rec.error, 'egress_denied');
    assert.equal(rec.at, 'hub');
    assert.equal(rec.level, 'warn');
    await mesh.proc('hub').waitForEvent('outgoing.egress_denied', (e) => e.url === 'tcp://127.0.0.1:22');
  });

  test('a connection the far end cannot make is refused with the reason (origin_refused)', async () => {
    const r = await tcpExchange(port.closed, 'x', { keepOpen: true });
    assert.equal(r.data.length, 0);
    const rec = await mesh.proc('site').waitForEvent('tcp.access', (e) => e.listener === 'tcp://127.0.0.5:0');
    assert.equal(rec.error, 'origin_refused');
  });

  test('"ca": a client outside the list is closed at once, and no stream is opened for it', async () => {
    const r = await tcpExchange(port.guarded, 'let me in', { keepOpen: true });
    assert.equal(r.data.length, 0);
    const guarded = (await mesh.state('site')).tcpListeners?.find((l) => l.key === 'tcp://127.0.0.6:0');
    assert.deepEqual([guarded?.refused, guarded?.connections], [1, 0], 'refused before it became a connection (and a stream)');
    assert.equal(mesh.proc('site').events.filter((e) => e.event === 'tcp.access' && e.listener === 'tcp://127.0.0.6:0').length, 0);
  });

  test('the reverse direction: a listener at the hub whose target is the site (a client of the hub)', async () => {
    const data = randomBytes(200_000);
    const r = await tcpExchange(port.reverse, data);
    assert.equal(r.data.length, data.length);
    assert.ok(r.data.equals(data));
    assert.equal(r.how, 'eof');
    await mesh.proc('site').waitForEvent('perform', (e) => e.kind === 'tcp' && e.url === `tcp://127.0.0.1:${echo.port}`);
  });

  test('/state.json, west state, the status page and /metrics show the tcp listeners and their connections', async () => {
    const site = mesh.proc('site');
    const state = await mesh.state('site');
    const first = state.tcpListeners?.find((l) => l.key === 'tcp://127.0.0.1:0');
    assert.ok(first, JSON.stringify(state.tcpListeners));
    assert.equal(state.tcpListeners?.length, 6);
    assert.deepEqual([first.target, first.to, first.connected, first.open], [{ en: 'hub' }, `127.0.0.1:${answer.port}`, true, 0]);
    assert.ok(first.connections >= 1);
    const cli = await runCli(['state', site.controlUrl()]);
    assert.ok(cli.stdout.includes(`\ntcp listeners: 6\n  127.0.0.1:${port.answer.port} -> en hub -> 127.0.0.1:${answer.port} (connected)\n    connections `), cli.stdout);
    const page = await fetchText(site.controlUrl(), { headers: { Accept: 'text/html' } });
    assert.match(page.text, /TCP listeners[\s\S]*tcp:\/\/127\.0\.0\.4:0/);
    const metrics = await fetchText(`${site.controlUrl()}/metrics`);
    assert.match(metrics.text, /^west_tcp_connections_total\{listener="tcp:\/\/127\.0\.0\.1:0",outcome="closed",code=""\} [1-9]\d*$/m);
    assert.match(metrics.text, /^west_tcp_connections_total\{listener="tcp:\/\/127\.0\.0\.4:0",outcome="refused",code="egress_denied"\} 1$/m);
    assert.match(metrics.text, /^west_tcp_bytes_total\{listener="tcp:\/\/127\.0\.0\.1:0",direction="in"\} [1-9]\d*$/m);
    assert.match(metrics.text, /^west_tcp_connections_open\{listener="tcp:\/\/127\.0\.0\.1:0"\} 0$/m);
  });
});

describe('tcp:// listeners and SIGHUP; an ea target', () => {
  let mesh: Mesh;
  let answer: TcpOrigin;
  let echo: TcpOrigin;
  let cleanup: () => Promise<void> = async () => {};

  before(async () => {
    answer = await tcpOrigin('answer-after-eof');
    echo = await tcpOrigin('echo');
    const t = await tempDir('west-tcp-reload-');
    cleanup = t.cleanup;
    mesh = await Mesh.launch(t.dir, [
      { name: 'hub', server: true, west: { egress: { site: [`tcp://127.0.0.1:${answer.port}`, `tcp://127.0.0.1:${echo.port}`] } } },
      { name: 'site', dials: ['hub'], proxy: { 'tcp://127.0.0.1:0': { en: 'hub', to: `127.0.0.1:${answer.port}` } } },
    ]);
    await mesh.route('site', 'hub');
  });

  after(async () => {
    await mesh?.stopAll();
    await Promise.all([answer?.close(), echo?.close()]);
    await cleanup();
  });

  /** Rewrites site's config with `edit` and reloads it (SIGHUP), waiting for node.reloaded. */
  async function reload(edit: (proxy: Record<string, unknown>) => void): Promise<void> {
    const file = mesh.files.get('site') ?? '';
    const config = JSON.parse(readFileSync(file, 'utf8')) as { proxy: Record<string, unknown> };
    edit(config.proxy);
    writeFileSync(file, JSON.stringify(config));
    const site = mesh.proc('site');
    const before = site.events.filter((e) => e.event === 'node.reloaded').length;
    site.kill('SIGHUP');
    await waitFor('the reload', () => site.events.filter((e) => e.event === 'node.reloaded').length > before);
  }

  test('a reload changes a kept listener\'s "to" in place, binds a new one (with "ea"), and closes a removed one', async () => {
    const site = mesh.proc('site');
    const a = await tcpListenerAddress(site, 'tcp://127.0.0.1:0');
    assert.equal((await tcpExchange(a, 'x')).data.toString(), expectedReply('x'));
    await reload((proxy) => {
      proxy['tcp://127.0.0.1:0'] = { en: 'hub', to: `127.0.0.1:${echo.port}` };
      proxy['tcp://127.0.0.2:0'] = { ea: mesh.serverUrl('hub'), to: `127.0.0.1:${answer.port}` };
    });
    const b = await tcpListenerAddress(site, 'tcp://127.0.0.2:0');
    assert.equal((await tcpExchange(a, 'now an echo')).data.toString(), 'now an echo', 'same port, new "to"');
    assert.equal((await tcpExchange(b, 'over ea')).data.toString(), expectedReply('over ea'));
    await reload((proxy) => { delete proxy['tcp://127.0.0.2:0']; });
    const gone = await tcpExchange(b, 'anyone?');
    assert.equal(gone.data.length, 0, 'the removed listener no longer answers');
    assert.equal((await tcpExchange(a, 'still')).data.toString(), 'still');
  });
});
