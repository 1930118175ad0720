// A report of texts placed into an atlas (tokmap viz --atlas) from the real binary: the atlas
// drawn faded, the placed tokens on top and in full colour, the placement confidence in the
// tooltip, search across both. Needs TOKMAP_BINARY (scripts/test.sh sets it); skipped otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { launch, openPage, artifacts, webDir, closeAll, embeddedData } from './browser.mjs';

const binary = process.env.TOKMAP_BINARY;
const skip = !binary ? 'TOKMAP_BINARY not set' : false;
let browser, dir;

before(async () => {
  if (skip) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmap-atlas-'));
  execFileSync(binary, ['viz', '--quiet', '--no-figures', '--atlas', path.join(webDir, '..', 'samples', 'austen.tokmap-atlas'),
    '--text', 'She was a lady of considerable fortune.', '--text', 'The river bank was muddy after the storm.',
    '--out', path.join(dir, 'placed')]);
  fs.mkdirSync(artifacts, { recursive: true });
  browser = await launch();
});

after(() => closeAll(browser, dir));


test('texts placed into an atlas: the atlas faded, placed tokens in full colour with their confidence, search across both', { skip }, async () => {
  const file = path.join(dir, 'placed', 'index.html');
  const data = embeddedData(file);
  const placed = data.tokens.map((t, i) => [t, i]).filter(([t]) => t.source === 'placed').map(([, i]) => i);
  const atlas = data.tokens.filter((t) => t.source === 'atlas').length;
  assert.ok(placed.length >= 10 && atlas >= 1000, `${placed.length} placed, ${atlas} from the atlas`);
  for (const i of placed) assert.ok(data.tokens[i].confidence >= 0 && data.tokens[i].confidence <= 1);
  // Each map carries its own layer's confidences (the atlas's rows are the reference: 1), and
  // points.tsv gives each layer's row that layer's value.
  const last = data.maps.filter((m) => m.layer === Math.max(...data.layers))[0];
  for (const m of data.maps) {
    assert.equal(m.confidence.length, data.tokens.length);
    data.tokens.forEach((t, i) => { if (t.source === 'atlas') assert.equal(m.confidence[i], 1); });
  }
  for (const i of placed) assert.ok(Math.abs(last.confidence[i] - data.tokens[i].confidence) < 1e-3);
  const rows = fs.readFileSync(path.join(dir, 'placed', 'points.tsv'), 'utf8').trim().split('\n');
  const head = rows[0].split('\t');
  const col = (name) => head.indexOf(name);
  const first = placed[0];
  for (const m of data.maps.filter((mm) => mm.dims === 2)) {
    const row = rows.slice(1).map((r) => r.split('\t')).filter((r) => r[col('source')] === 'placed' && +r[col('layer')] === m.layer)[0];
    assert.ok(Math.abs(+row[col('confidence')] - m.confidence[first]) < 2e-3, `layer ${m.layer}`);
  }

  const { page, errors } = await openPage(browser, 'file://' + file);
  assert.equal(await page.evaluate(() => window.__tokmap.N), data.tokens.length);
  // Draw state per point (4th channel): 1 = faded, 0 = normal.
  const states = await page.evaluate(() => {
    window.__tokmap.render();
    const c = window.__tokmap.app.views[0].colors;
    return Array.from({ length: window.__tokmap.N }, (_, i) => c[i * 4 + 3]);
  });
  data.tokens.forEach((t, i) => assert.equal(states[i], t.source === 'atlas' ? 1 : 0, `token ${i} (${t.source})`));

  // Hover a placed token: its tooltip says it was placed, with the confidence.
  const target = placed.find((i) => data.tokens[i].display.trim() === 'fortune') ?? placed[placed.length - 1];
  const at = await page.evaluate((i) => window.__tokmap.screenPosition(i), target);
  assert.ok(at.visible);
  await page.mouse.move(at.x, at.y);
  await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
  const hovered = await page.evaluate(() => window.__tokmap.state().hover);
  const tip = await page.textContent('#tooltip');
  if (data.tokens[hovered].source === 'placed')
    assert.match(tip, new RegExp(`placed, confidence ${data.tokens[hovered].confidence.toFixed(2)}`));
  else assert.match(tip, /atlas/);
  // No logit lens in atlas reports, said as such (not "an encoder").
  assert.match(tip, /No next-token predictions: reports of texts placed into an atlas \(viz --atlas\) have none/);
  // The trust panel does not score the atlas's maps as 0: they were not measured here.
  const trust = await page.textContent('#trust');
  assert.match(trust, /Trustworthiness\s*—/);
  assert.doesNotMatch(trust, /0\.000/);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-atlas-placed.png') });

  // Search finds tokens of the placed texts and of the atlas's corpus alike.
  const both = (re) => data.tokens.reduce((n, t) => n + (re.test(t.display) ? 1 : 0), 0);
  assert.equal(await page.evaluate(() => window.__tokmap.search('fortune')), both(/fortune/));
  const sources = new Set(data.tokens.filter((t) => /fortune/.test(t.display)).map((t) => t.source));
  assert.ok(sources.has('placed') && sources.has('atlas'), [...sources].join());
  assert.deepEqual(errors, []);
  await page.close();
});
