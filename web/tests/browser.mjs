// Shared helpers for the browser tests: Debian's Chromium through playwright-core, offline.
import { chromium } from 'playwright-core';
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fillTemplate } from '../report.mjs';

export const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const artifacts = path.join(webDir, 'test-artifacts');

export function chromiumPath() {
  for (const p of [process.env.TOKMAP_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean)) {
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** `allow`: URL prefixes besides file: that may load (a test's own local server). */
export async function launch({ allow = [] } = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmap-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath(),
    headless: true,
    viewport: { width: 1400, height: 900 },
    deviceScaleFactor: 1,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--enable-unsafe-swiftshader'],
  });
  const requests = [];
  const allowed = (u) => u.startsWith('file:') || allow.some((a) => u.startsWith(a));
  // Only file: URLs (and `allow`) may load; everything else is aborted and recorded.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (allowed(url)) return route.continue();
    requests.push(url);
    return route.abort();
  });
  context.on('request', (req) => { const u = req.url(); if (!allowed(u) && !u.startsWith('data:') && !u.startsWith('blob:')) requests.push(u); });
  return {
    context,
    requests,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Writes index.html built from the template and a data file into a fresh temp folder. */
export function buildReport(dataFile) {
  const template = fs.readFileSync(path.join(webDir, 'dist', 'report-template.html'), 'utf8');
  const data = fs.readFileSync(dataFile, 'utf8');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmap-report-'));
  const file = path.join(dir, 'index.html');
  fs.writeFileSync(file, fillTemplate(template, data));
  return { dir, file, url: 'file://' + file };
}

/**
 * Registers the suite's hooks: before, `precheck()`, a report built from `samplePath` and a
 * browser, handed to `receive({ browser, report, sample })`; after, no request may have left the
 * machine, and the browser and the report folder go away.
 */
export function useSampleReport(samplePath, receive, precheck = () => {}) {
  let browser, report;
  before(async () => {
    precheck();
    assert.ok(fs.existsSync(samplePath), 'run node web/make-sample.mjs first');
    fs.mkdirSync(artifacts, { recursive: true });
    const sample = JSON.parse(fs.readFileSync(samplePath, 'utf8'));
    report = buildReport(samplePath);
    browser = await launch();
    receive({ browser, report, sample });
  });
  after(() => closeAll(browser, report && report.dir));
}

/** After a suite: no request may have left the machine; the browser and `folder` go away. */
export async function closeAll(browser, folder) {
  if (browser) {
    assert.deepEqual(browser.requests, [], 'no request may leave the machine');
    await browser.close();
  }
  if (folder) fs.rmSync(folder, { recursive: true, force: true });
}

export async function openPage(browser, url) {
  const page = await browser.context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__tokmap && window.__tokmap.ready, null, { timeout: 30000 });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  return { page, errors };
}

export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN; };

/** Pixels that differ between two PNG screenshots (decoded in the page). */
export async function diffPixels(page, a, b) {
  return page.evaluate(async ([x, y]) => {
    const load = async (b64) => { const i = new Image(); i.src = 'data:image/png;base64,' + b64; await i.decode(); const c = document.createElement('canvas'); c.width = i.width; c.height = i.height; const g = c.getContext('2d'); g.drawImage(i, 0, 0); return g.getImageData(0, 0, c.width, c.height).data; };
    const p = await load(x), q = await load(y);
    let n = 0;
    for (let i = 0; i < Math.min(p.length, q.length); i += 4) if (Math.abs(p[i] - q[i]) + Math.abs(p[i + 1] - q[i + 1]) + Math.abs(p[i + 2] - q[i + 2]) > 30) n++;
    return n;
  }, [a.toString('base64'), b.toString('base64')]);
}

/** The data object embedded in a report's index.html (the page's own JSON, `</` escaped). */
export function embeddedData(file) {
  const html = fs.readFileSync(file, 'utf8');
  const m = html.match(/<script type="application\/json" id="tokmap-data">([\s\S]*?)<\/script>/);
  return JSON.parse(m[1]);
}
