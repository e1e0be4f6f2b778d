// Drives Debian's Chromium against the Osprey fleet page (/fleet): waits for
// the camera and node tables, reads every row and link, then follows the
// first link to another node's preview and reports the stream that page
// selected. Prints one JSON line.
//
//   node fleet.mjs --url 'http://127.0.0.1:8080/fleet?token=t' --screenshot out.png
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : def;
}
const url = arg('url');
const shot = arg('screenshot', '');
const exe = arg('chromium', '/usr/bin/chromium');
if (!url) { console.error('browser-test: --url is required'); process.exit(2); }

const profile = mkdtempSync(join(tmpdir(), 'osprey-chromium-'));
let browser;
const result = {};
try {
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: exe, headless: true, viewport: { width: 1280, height: 560 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
  page.on('pageerror', (e) => logs.push('pageerror: ' + e.message));
  const start = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => window.ospreyFleet && window.ospreyFleet.loaded, null, { timeout: 20000 });
  Object.assign(result, await page.evaluate(() => {
    const F = window.ospreyFleet;
    const rows = (sel) => [...document.querySelectorAll(sel + ' tbody tr')].map((tr) => ({
      cells: [...tr.cells].map((td) => td.textContent),
      links: [...tr.querySelectorAll('a')].map((a) => a.href),
    }));
    return {
      loaded: F.loaded, enabled: F.enabled, self: F.self, error: F.error,
      offShown: !document.getElementById('off').hidden,
      cameras: rows('#cameras'), nodes: rows('#nodes'),
      notes: document.getElementById('notes').textContent,
    };
  }));
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  // Follow the first link to another node: its live page must select the camera.
  const other = (result.cameras || []).find((r) => r.links.length && r.cells[2] !== result.self);
  if (other) {
    await page.goto(other.links[0]);
    await page.waitForFunction(() => window.ospreyPreview && (window.ospreyPreview.stream || window.ospreyPreview.error), null, { timeout: 15000 }).catch(() => {});
    // A fleet node's live page shows its link to the fleet page.
    await page.waitForFunction(() => !document.getElementById('fleetLink').hidden, null, { timeout: 5000 }).catch(() => {});
    result.followed = { url: other.links[0], camera: other.cells[0],
      stream: await page.evaluate(() => window.ospreyPreview ? window.ospreyPreview.stream : ''),
      fleetLink: await page.evaluate(() => !document.getElementById('fleetLink').hidden) };
  }
  result.elapsedMs = Date.now() - start;
  result.console = logs.slice(-20);
  console.log(JSON.stringify(result));
} catch (e) {
  console.log(JSON.stringify({ ...result, error: 'browser-test: ' + e.message }));
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
