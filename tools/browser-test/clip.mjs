// Drives Debian's Chromium (never a downloaded browser) to play a recorded
// clip in a <video> element and prints one JSON line with what it played.
//
//   node clip.mjs --url http://127.0.0.1:8081/clip.mp4 --seconds 2 --screenshot out.png
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : def;
}
const url = arg('url');
const seconds = Number(arg('seconds', '2'));
const shot = arg('screenshot', '');
const exe = arg('chromium', '/usr/bin/chromium');
if (!url) { console.error('browser-test: --url is required'); process.exit(2); }

const profile = mkdtempSync(join(tmpdir(), 'osprey-chromium-'));
let browser;
try {
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: exe,
    headless: true,
    viewport: { width: 800, height: 640 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  });
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
  page.on('pageerror', (e) => logs.push('pageerror: ' + e.message));
  await page.setContent(`<body style="margin:0;background:#222;color:#eee;font:14px sans-serif">
    <video id="v" src="${url}" muted autoplay playsinline controls style="display:block"></video>
    <div id="t" style="padding:4px"></div></body>`);
  const start = Date.now();
  let s = {};
  while (Date.now() - start < seconds * 1000 + 15000) {
    s = await page.evaluate(() => {
      const v = document.getElementById('v');
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
      document.getElementById('t').textContent = 'recorded clip: ' + v.currentTime.toFixed(2) + ' s of ' +
        (v.duration || 0).toFixed(2) + ' s, ' + v.videoWidth + 'x' + v.videoHeight;
      return { currentTime: v.currentTime, duration: v.duration || 0, videoWidth: v.videoWidth,
        videoHeight: v.videoHeight, framesDecoded: q.totalVideoFrames || 0,
        error: v.error ? 'media error ' + v.error.code + ': ' + v.error.message : '' };
    });
    if (s.error || s.currentTime >= seconds) break;
    await page.waitForTimeout(100);
  }
  await page.evaluate(() => document.getElementById('v').pause());
  if (shot) await page.screenshot({ path: shot });
  console.log(JSON.stringify({ ...s, console: logs }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e) }));
} finally {
  if (browser) await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
