// Drives Debian's Chromium against the Osprey review page (/review): waits
// for the event list, counts loaded snapshots, plays the first clip and
// checks the video decodes and advances. Prints one JSON line.
//
//   node review.mjs --url 'http://127.0.0.1:8080/review?token=t' --screenshot out.png
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
    executablePath: exe, headless: true, viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  });
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
  page.on('pageerror', (e) => logs.push('pageerror: ' + e.message));
  const start = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => window.ospreyReview && (window.ospreyReview.loaded || window.ospreyReview.error), null, { timeout: 20000 });
  // Snapshots are lazy images: wait until those on screen have decoded.
  await page.waitForFunction(() => [...document.querySelectorAll('#events img')].some((i) => i.complete && i.naturalWidth > 0), null, { timeout: 10000 }).catch(() => {});
  Object.assign(result, await page.evaluate(() => ({
    loaded: window.ospreyReview.loaded, rows: window.ospreyReview.rows, clips: window.ospreyReview.clips,
    series: window.ospreyReview.series, bars: document.querySelectorAll('#hourly rect').length,
    snapshotsLoaded: [...document.querySelectorAll('#events img')].filter((i) => i.complete && i.naturalWidth > 0).length,
    types: [...document.querySelectorAll('#events tbody tr td:nth-child(3)')].map((td) => td.textContent),
  })));
  if (result.clips > 0) {
    await page.click('#events button.play');
    await page.waitForFunction(() => $('player').readyState >= 2, null, { timeout: 15000 }).catch(() => {});
    const t0 = await page.evaluate(() => ({ rs: $('player').readyState, t: $('player').currentTime }));
    await page.waitForTimeout(1500);
    const t1 = await page.evaluate(() => ({ rs: $('player').readyState, t: $('player').currentTime,
      w: $('player').videoWidth, err: $('player').error && $('player').error.message }));
    Object.assign(result, { readyState: t1.rs, currentTime0: t0.t, currentTime1: t1.t, videoWidth: t1.w, videoError: t1.err || '' });
  }
  result.error = await page.evaluate(() => window.ospreyReview.error);
  if (shot) await page.screenshot({ path: shot, fullPage: true });
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
