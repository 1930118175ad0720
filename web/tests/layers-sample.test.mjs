// What changed between layers and PCA beside t-SNE on the synthetic sample (web/make-sample.mjs):
// runs without a tokmap binary (tests/layers.test.mjs checks reports of the real `tokmap viz`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useSampleReport, openPage, webDir } from './browser.mjs';
import { viridis } from '../src/palette.js';
import { ReportData } from '../src/data.js';

let browser, report, sample;
useSampleReport(path.join(webDir, 'sample-data.json'), (suite) => ({ browser, report, sample } = suite));

test('sample: PCA projection, change colouring and the What changed lists', async () => {
  const data = new ReportData(JSON.parse(JSON.stringify(sample)));
  const { page, errors } = await openPage(browser, report.url);
  const N = sample.tokens.length;
  await page.evaluate(() => window.__tokmap.setLayer(6));
  await page.selectOption('#projection', 'pca');
  const want = data.coords(data.pcaMap(0, 6, 2));
  const got = await page.evaluate(() => Array.from({ length: window.__tokmap.N }, (_, i) => window.__tokmap.position(i)));
  for (let i = 0; i < N; i++) for (let k = 0; k < 2; k++) assert.ok(Math.abs(got[i][k] - want[i * 3 + k]) < 1e-5, `token ${i}`);
  const ex = sample.pca.find((v) => v.model === 0 && v.layer === 6).explained;
  const pct = (v) => (100 * v).toFixed(1);
  assert.ok((await page.textContent('.view-caption')).includes(`PCA, ${pct(ex[0] + ex[1])}% of the variance`));
  assert.equal(await page.textContent('#pca-explained-total'), `${pct(ex[0] + ex[1])}%`);

  await page.selectOption('#color-by', 'change');
  const c = sample.changes.find((x) => x.model === 0 && x.layer === 6);
  const colors = await page.evaluate(() => Array.from({ length: window.__tokmap.N }, (_, i) => window.__tokmap.color(i)));
  colors.forEach((col, i) => assert.deepEqual(col, viridis(c.jaccard[i]), `token ${i}`));
  assert.deepEqual(await page.$$eval('#changes ol.moved button[data-token]', (bs) => bs.map((b) => +b.dataset.token)), c.most_changed.slice(0, 10));
  const pair = sample.comparison.pairs.find((p) => p.layer_a === 6);
  assert.deepEqual(await page.$$eval('#changes ol.moved-models button[data-token]', (bs) => bs.map((b) => +b.dataset.token)), pair.most_changed.slice(0, 10));
  assert.deepEqual(errors, []);
  await page.close();
});
