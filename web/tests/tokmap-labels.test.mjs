// Issue #10 in the page, on a report written by the real `tokmap viz`: a --highlight word the
// tokenizer splits is highlighted as its run of sub-tokens, and tokens made of part of a UTF-8
// character show the character. Needs TOKMAP_BINARY (scripts/test.sh sets it); skipped otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { launch, openPage, closeAll } from './browser.mjs';

const binary = process.env.TOKMAP_BINARY;
const skip = !binary ? 'TOKMAP_BINARY not set' : false;
let browser, dir;

before(async () => {
  if (skip) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmap-labels-'));
  execFileSync(binary, ['viz', '--quiet', '--no-figures', '--layers', 'last', '--dims', '2',
    '--highlight', 'unease', '--text', 'A deep unease settled over the old wood 木 by the river.',
    '--text', 'The bank of the river was muddy.', '--out', path.join(dir, 'report')]);
  browser = await launch();
});

after(() => closeAll(browser, dir));

test('sub-token highlights and whole-character labels', { skip }, async () => {
  const { page, errors } = await openPage(browser, 'file://' + path.join(dir, 'report', 'index.html'));
  const shown = await page.evaluate(() => window.__tokmap.highlighted().map((i) => window.__tokmap.app.data.tokens[i].display));
  assert.deepEqual(shown, [' une', 'ase']);
  // The two tokens of 木 show the character, not "<0xE6><0x9C>" / "<0xA8>".
  const wood = await page.evaluate(() => window.__tokmap.app.data.tokens
    .map((t, i) => [i, t.display, t.bytesDisplay]).filter(([, , bytes]) => bytes));
  assert.deepEqual(wood.map(([, display, bytes]) => [display, bytes]), [[' 木', ' <0xE6><0x9C>'], ['木', '<0xA8>']]);
  const at = await page.evaluate((i) => window.__tokmap.screenPosition(i), wood[1][0]);
  assert.ok(at.visible);
  await page.mouse.move(at.x, at.y);
  await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
  const token = await page.textContent('#tooltip .tt-token');
  assert.match(token, /木/);
  assert.doesNotMatch(token, /<0x/);
  assert.deepEqual(errors, []);
});
