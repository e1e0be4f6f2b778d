// Drives Debian's Chromium (never a downloaded browser) against the Osprey
// preview page and prints one JSON line with what the page saw.
//
//   node preview.mjs --url http://127.0.0.1:8080/ --seconds 10 \
//        --screenshot out.png --min-decoded 100
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : def;
}
const url = arg('url');
const seconds = Number(arg('seconds', '10'));
const minDecoded = Number(arg('min-decoded', '100'));
const shot = arg('screenshot', '');
const exe = arg('chromium', '/usr/bin/chromium');
if (!url) { console.error('browser-test: --url is required'); process.exit(2); }

const profile = mkdtempSync(join(tmpdir(), 'osprey-chromium-'));
let browser;
try {
  // A persistent context on a fresh, empty directory is Chromium's
  // --user-data-dir=<new dir>, which playwright wants passed this way.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: exe,
    headless: true,
    viewport: { width: 1280, height: 720 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  });
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
  page.on('pageerror', (e) => logs.push('pageerror: ' + e.message));
  await page.goto(url);
  const start = Date.now();
  // Wait for the decoder to pass minDecoded frames and for the run time.
  while (Date.now() - start < seconds * 1000 + 30000) {
    const s = await page.evaluate(() => window.ospreyPreview && {
      d: window.ospreyPreview.framesDecoded || 0, e: window.ospreyPreview.error });
    if (s && s.e) break;
    if (s && s.d > minDecoded && Date.now() - start >= seconds * 1000) break;
    await page.waitForTimeout(250);
  }
  // Final getStats straight from the peer connection the page holds.
  const result = await page.evaluate(async () => {
    const P = window.ospreyPreview;
    const lat = [...P.latenciesMs].sort((a, b) => a - b);
    const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null;
    return {
      connected: P.connected, stream: P.stream, framesDecoded: P.framesDecoded || 0,
      metaMessages: P.metaMessages, framesSeen: P.framesSeen, matched: P.matched,
      unmatched: P.unmatched, boxesDrawn: P.boxesDrawn, overlays: !!(P.overlays && (P.overlays.zones || []).length && (P.overlays.lines || []).length),
      latencySamples: lat.length, latencyP50Ms: q(0.5), latencyP99Ms: q(0.99), error: P.error,
      videoWidth: document.getElementById('video').videoWidth,
    };
  });
  if (shot) await page.screenshot({ path: shot });
  result.elapsedMs = Date.now() - start;
  result.console = logs.slice(-20);
  console.log(JSON.stringify(result));
} catch (e) {
  console.log(JSON.stringify({ error: 'browser-test: ' + e.message }));
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
