// A report written by the real `tokmap viz` (not the synthetic sample) opens from file:// with
// the network blocked, draws, and answers hover. Needs TOKMAP_BINARY (scripts/test.sh sets it);
// skipped otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { launch, openPage, artifacts } from './browser.mjs';

const binary = process.env.TOKMAP_BINARY;
const skip = !binary ? 'TOKMAP_BINARY not set' : false;
let browser, dir;

before(async () => {
  if (skip) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmap-viz-'));
  execFileSync(binary, ['viz', '--quiet', '--no-figures', '--highlight', 'bank',
    '--text', 'The bank of the river was muddy.',
    '--text', 'I deposited money at the bank, then walked along the river bank.',
    '--out', path.join(dir, 'report')]);
  fs.mkdirSync(artifacts, { recursive: true });
  browser = await launch();
});

after(async () => {
  if (browser) {
    assert.deepEqual(browser.requests, [], 'no request may leave the machine');
    await browser.close();
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a report from tokmap viz loads offline, draws and shows tokens on hover', { skip }, async () => {
  const { page, errors } = await openPage(browser, 'file://' + path.join(dir, 'report', 'index.html'));
  const shot = await page.screenshot({ path: path.join(artifacts, 'tokmap-report.png') });
  assert.ok(shot.length > 10000, 'the page rendered something');
  assert.equal(await page.evaluate(() => window.__tokmap.N), 20);  // first tokens excluded
  // " bank" is highlighted (--highlight bank); hover one and expect it in the tooltip.
  const highlighted = await page.evaluate(() => window.__tokmap.highlighted());
  assert.equal(highlighted.length, 3);
  const at = await page.evaluate((i) => window.__tokmap.screenPosition(i), highlighted[0]);
  assert.ok(at.visible);
  await page.mouse.move(at.x, at.y);
  await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
  assert.match(await page.textContent('#tooltip'), /bank/);
  assert.deepEqual(errors, []);
});
