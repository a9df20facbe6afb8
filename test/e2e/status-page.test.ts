/**
 * The control port's status page in a real browser: Debian's headless Chromium driven by
 * puppeteer-core, on a running two-node setup with traffic and a recent failure. Checks what
 * an operator reads (node, tunnel, mapping, status counts, the error row), that the page
 * reloads itself with fresh numbers, that it fits a phone's width, and that a hostile node name
 * stays text. Takes full-page screenshots at phone and desktop widths.
 *
 * WEST_STATUS_SCREENSHOT=<file.png> also saves the desktop screenshot there (how
 * doc/status-page.png is made).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { fetchText, freePort, waitFor } from '../helpers/net.js';
import { Origin } from '../helpers/origin.js';
import { stopAll, tempDir, WestProcess, writeConfig } from '../helpers/west.js';

const CHROMIUM = '/usr/bin/chromium';
const G = 'relay-G';
const L = 'site-L';
const EVIL = '<script>alert(1)</script>';

let origin: Origin;
let dir: string;
let cleanup: () => Promise<void>;
let browser: Browser | undefined;

before(async () => {
  origin = new Origin();
  await origin.listen();
  ({ dir, cleanup } = await tempDir('west-status-page-'));
});

after(async () => {
  await browser?.close();
  await stopAll();
  await origin.close();
  await cleanup();
});

async function launch(): Promise<Browser> {
  const profile = path.join(dir, 'chromium-profile');
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`],
  });
}

/** Evaluates an expression in the page; the tests stay free of DOM typings. */
async function inPage(page: Page, expression: string): Promise<unknown> {
  return page.evaluate(expression);
}

async function textOf(page: Page, selector: string): Promise<string> {
  const v = await inPage(page, `document.querySelector(${JSON.stringify(selector)})?.innerText ?? ''`);
  assert.equal(typeof v, 'string');
  return v as string;
}

/** Width and height of a PNG, from its IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('status page in headless Chromium', () => {
  let lControl: string;
  let gControl: string;
  let lListener: string;
  let evilControl: string;

  before(async () => {
    if (!existsSync(CHROMIUM)) return;
    const [sp, lProxy, gCp, lCp, closed, evilCp] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    const server = `ws://127.0.0.1:${sp}`;
    lListener = `http://127.0.0.1:${lProxy}`;
    lControl = `http://127.0.0.1:${lCp}`;
    gControl = `http://127.0.0.1:${gCp}`;
    evilControl = `http://127.0.0.1:${evilCp}`;
    const gFile = await writeConfig(dir, 'G.json', { west: { nm: G, cp: `127.0.0.1:${gCp}` }, wsts: { sp: server } });
    const lFile = await writeConfig(dir, 'L.json', {
      west: { nm: L, cp: `127.0.0.1:${lCp}` },
      proxy: {
        [lListener]: {
          ea: server,
          '/api': { ou: `http://127.0.0.1:${origin.port}/lab/api`, ca: ['127.0.0.1', '10.0.0.0/8'] },
          '/files': { ou: `http://127.0.0.1:${origin.port}/lab/files` },
          '/legacy': { ou: `http://127.0.0.1:${closed}/old` },
        },
      },
    });
    const evilFile = await writeConfig(dir, 'evil.json', { west: { nm: EVIL, cp: `127.0.0.1:${evilCp}` } });
    await WestProcess.start(gFile);
    await WestProcess.start(lFile);
    await WestProcess.start(evilFile);
    await waitFor('L to connect to G', async () => {
      const state = JSON.parse((await fetchText(`${lControl}/state.json`)).text) as { tunnels: { connected: boolean }[] };
      return state.tunnels.every((t) => t.connected);
    });

    // Traffic: successes, an origin's own 404, west's 404, and a 502 at G (origin refused).
    for (const p of ['/api/echo', '/api/echo', '/api/status/201', '/files/bytes/20000', '/files/status/404', '/nowhere', '/legacy/x']) {
      await fetchText(`${lListener}${p}`);
    }
    await waitFor('the failure to be recorded', async () => {
      const page = await fetchText(`${lControl}/`, { headers: { Accept: 'text/html' } });
      return page.text.includes('origin_refused');
    });
    browser = await launch();
  });

  test('shows the node, its tunnel, mappings with status counts and the error row; reloads itself; fits a phone', async (t) => {
    if (!existsSync(CHROMIUM)) { t.skip('chromium not installed: apt-get install chromium'); return; }
    const page = await browser!.newPage();
    try {
      await page.setViewport({ width: 1280, height: 900 });
      const response = await page.goto(`${lControl}/`, { waitUntil: 'load' });
      assert.equal(response?.status(), 200);
      assert.equal(response?.headers()['content-type'], 'text/html; charset=utf-8');

      assert.equal(await textOf(page, 'h1'), L);
      assert.equal(await inPage(page, 'document.title'), `${L} · west`);
      assert.equal(await inPage(page, `document.querySelector('meta[http-equiv="refresh"]').content`), '5');
      assert.equal(await inPage(page, 'document.scripts.length'), 0);

      const tunnels = await textOf(page, '#tunnels');
      assert.match(tunnels, /connected/);
      assert.ok(tunnels.includes(G), `the peer's name: ${tunnels}`);
      assert.match(tunnels, /ws:\/\/127\.0\.0\.1:\d+/);

      const listeners = await textOf(page, '#listeners');
      assert.ok(listeners.includes(lListener), listeners);
      assert.ok(listeners.includes('/api') && listeners.includes(`http://127.0.0.1:${origin.port}/lab/api`), 'mapping path -> ou');
      assert.ok(listeners.includes('127.0.0.1, 10.0.0.0/8'), 'ca');
      assert.match(listeners, /200 ×2/);
      assert.match(listeners, /201 ×1/);
      assert.match(listeners, /404 ×1/);
      assert.match(listeners, /502 ×1/);
      assert.match(listeners, /\(not routed\)/);

      const errors = await textOf(page, '#errors');
      assert.match(errors, /origin_refused/);
      assert.ok(errors.includes(G), 'the node where it failed');
      assert.match(errors, /502/);
      assert.match(errors, /no_mapping/);
      const errorRows = await inPage(page, `document.querySelectorAll('#errors tbody tr').length`);
      assert.equal(errorRows, 2);

      const desktop = path.join(dir, 'status-desktop.png');
      await page.screenshot({ path: desktop, fullPage: true });
      assert.equal(pngSize(await readFile(desktop)).width, 1280);
      if (process.env.WEST_STATUS_SCREENSHOT) await copyFile(desktop, process.env.WEST_STATUS_SCREENSHOT);

      // Phone width: no sideways scrolling, every section still there.
      await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      await page.reload({ waitUntil: 'load' });
      assert.ok(Number(await inPage(page, 'document.documentElement.scrollWidth')) <= 390, 'fits 390 px without scrolling sideways');
      assert.equal(await inPage(page, `getComputedStyle(document.querySelector('#listeners thead')).display`), 'none', 'tables become cards');
      const phone = path.join(dir, 'status-phone.png');
      await page.screenshot({ path: phone, fullPage: true });
      assert.equal(pngSize(await readFile(phone)).width, 390 * 2);

      // The page reloads itself (meta refresh) and then shows a request made after it loaded.
      await fetchText(`${lListener}/api/echo`);
      await page.waitForNavigation({ waitUntil: 'load', timeout: 15_000 });
      assert.match(await textOf(page, '#listeners'), /200 ×3/);
    } finally {
      await page.close();
    }
  });

  test('the tunnel server\'s page lists the connected peer', async (t) => {
    if (!existsSync(CHROMIUM)) { t.skip('chromium not installed: apt-get install chromium'); return; }
    const page = await browser!.newPage();
    try {
      await page.goto(`${gControl}/`, { waitUntil: 'load' });
      assert.equal(await textOf(page, 'h1'), G);
      const peers = await textOf(page, '#peers');
      assert.ok(peers.includes(L), peers);
      assert.match(peers, /connected/);
      assert.match(peers, /127\.0\.0\.1:\d+/);
    } finally {
      await page.close();
    }
  });

  test('a hostile node name is shown as text and runs nothing', async (t) => {
    if (!existsSync(CHROMIUM)) { t.skip('chromium not installed: apt-get install chromium'); return; }
    const page = await browser!.newPage();
    let dialogs = 0;
    page.on('dialog', (d) => { dialogs++; void d.dismiss(); });
    try {
      await page.goto(`${evilControl}/`, { waitUntil: 'load' });
      assert.equal(await textOf(page, 'h1'), EVIL);
      assert.equal(await inPage(page, 'document.scripts.length'), 0);
      assert.equal(dialogs, 0);
    } finally {
      await page.close();
    }
  });
});
