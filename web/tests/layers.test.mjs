// What changed between layers, and PCA beside t-SNE, on reports written by the real
// `tokmap viz`: the "changes" and "pca" data (docs/REPORT_FORMAT.md), the colouring by
// neighbourhood change, the "What changed" lists (within a model and between two models at
// matched depth) and the t-SNE / PCA projection choice. Needs TOKMAP_BINARY; skipped otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { launch, openPage, artifacts, webDir, closeAll, embeddedData } from './browser.mjs';
import { viridis, OTHER, hexToRgb } from '../src/palette.js';
import { ReportData } from '../src/data.js';

const binary = process.env.TOKMAP_BINARY;
const skip = !binary ? 'TOKMAP_BINARY not set' : false;
let browser, dir;

before(async () => {
  if (skip) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmap-layers-'));
  execFileSync(binary, ['viz', '--quiet', '--no-figures',
    '--text', 'The bank of the river was muddy.',
    '--text', 'I deposited money at the bank, then walked along the river bank.',
    '--out', path.join(dir, 'report')]);
  // Two models of different depth (6 and 4 layers, same tokenizer).
  execFileSync(binary, ['viz', '--quiet', '--no-figures', '--model', 'demo-brown-gpt2', '--model', 'demo-brown-gpt2-small',
    '--file', path.join(webDir, '..', 'samples', 'sentences.txt'), '--out', path.join(dir, 'compare')]);
  fs.mkdirSync(artifacts, { recursive: true });
  browser = await launch();
});

after(() => closeAll(browser, dir));


const pct = (v) => (100 * v).toFixed(1);

test('the report data hold each layer\'s neighbourhood change and PCA view', { skip }, () => {
  for (const name of ['report', 'compare']) {
    const data = embeddedData(path.join(dir, name, 'index.html'));
    const N = data.tokens.length;
    data.models.forEach((_, m) => {
      const layers = [...new Set(data.maps.filter((x) => x.model === m).map((x) => x.layer))].sort((a, b) => a - b);
      const changes = data.changes.filter((c) => c.model === m);
      // One entry per mapped layer after the first, against the layer before it.
      assert.deepEqual(changes.map((c) => [c.previous_layer, c.layer]), layers.slice(1).map((l, k) => [layers[k], l]));
      for (const c of changes) {
        assert.equal(c.jaccard.length, N);
        assert.equal(c.k, Math.min(10, N - 1));
        // Jaccard of two k-sets: s / (2k - s) for s shared.
        for (const j of c.jaccard) {
          const s = (2 * c.k * j) / (1 + j);
          assert.ok(Math.abs(s - Math.round(s)) < 1e-3, `${j} is not s / (2k - s)`);
        }
        const mean = c.jaccard.reduce((a, v) => a + v, 0) / N;
        assert.ok(Math.abs(mean - c.mean) < 1e-5);
        assert.equal(c.most_changed.length, Math.min(20, N));
        for (let r = 1; r < c.most_changed.length; r++) assert.ok(c.jaccard[c.most_changed[r - 1]] <= c.jaccard[c.most_changed[r]]);
        // Nothing left out ranks lower than the last one kept.
        const last = c.jaccard[c.most_changed[c.most_changed.length - 1]];
        c.jaccard.forEach((j, i) => assert.ok(c.most_changed.includes(i) || j >= last));
      }
      for (const l of layers) {
        const v = data.pca.find((x) => x.model === m && x.layer === l);
        assert.ok(v, `PCA view of model ${m} layer ${l}`);
        assert.equal(v.dims, 3);
        assert.equal(v.coords.length, N * 3);
        assert.equal(v.explained.length, 3);
        assert.ok(v.explained[0] >= v.explained[1] && v.explained[1] >= v.explained[2] && v.explained[2] >= 0);
        assert.ok(v.explained[0] + v.explained[1] + v.explained[2] <= 1 + 1e-9);
      }
    });
    for (const p of data.comparison ? data.comparison.pairs : []) {
      assert.equal(p.most_changed.length, Math.min(20, N));
      for (let r = 1; r < p.most_changed.length; r++) assert.ok(p.overlap[p.most_changed[r - 1]] <= p.overlap[p.most_changed[r]]);
    }
  }
});

test('View: PCA swaps in the layer\'s PCA coordinates and shows the explained variance', { skip }, async () => {
  const file = path.join(dir, 'report', 'index.html');
  const raw = embeddedData(file);
  const data = new ReportData(raw);
  const { page, errors } = await openPage(browser, 'file://' + file);
  const N = await page.evaluate(() => window.__tokmap.N);
  const { layer, layerIdx } = await page.evaluate(() => window.__tokmap.state());
  const positions = () => page.evaluate(() => Array.from({ length: window.__tokmap.N }, (_, i) => window.__tokmap.position(i)));
  const tsne = await positions();
  assert.deepEqual(await page.$$eval('#projection option', (os) => os.map((o) => o.value)), ['tsne', 'pca']);

  await page.selectOption('#projection', 'pca');
  // The page's positions are the PCA view's, framed as every map is (data.js coords()).
  const want = data.coords(data.pcaMap(0, layer, 2));
  const got = await positions();
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(got[i][k] - want[i * 3 + k]) < 1e-5, `token ${i} axis ${k}: ${got[i][k]} vs ${want[i * 3 + k]}`);
  }
  assert.ok(got.some((p, i) => Math.abs(p[0] - tsne[i][0]) > 1e-3), 'the PCA view differs from the t-SNE map');
  const ex = raw.pca.find((v) => v.model === 0 && v.layer === layer).explained;
  const caption = await page.textContent('.view-caption');
  assert.ok(caption.includes(`PCA, ${pct(ex[0] + ex[1])}% of the variance (PC1 ${pct(ex[0])}%, PC2 ${pct(ex[1])}%)`), caption);
  assert.equal(await page.textContent('#pca-explained-total'), `${pct(ex[0] + ex[1])}%`);
  assert.deepEqual(await page.$$eval('#pca-info tr[data-axis] td.num', (tds) => tds.map((t) => t.textContent)), [`${pct(ex[0])}%`, `${pct(ex[1])}%`]);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-pca-2d.png') });

  // 3D: three axes; another layer: that layer's view.
  await page.selectOption('#dims', '3');
  assert.match(await page.textContent('.view-caption'), new RegExp(`PC3 ${pct(ex[2])}%`));
  await page.evaluate(() => window.__tokmap.setLayer(0));
  const want0 = data.coords(data.pcaMap(0, data.modelLayers[0][0], 3));
  const got0 = await positions();
  for (let i = 0; i < N; i++) for (let k = 0; k < 3; k++) assert.ok(Math.abs(got0[i][k] - want0[i * 3 + k]) < 1e-5);
  const ex0 = raw.pca.find((v) => v.model === 0 && v.layer === data.modelLayers[0][0]).explained;
  assert.equal(await page.textContent('#pca-explained-total'), `${pct(ex0[0] + ex0[1] + ex0[2])}%`);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-pca-3d.png') });
  // Trajectories and an animated layer change draw from the PCA views too.
  await page.check('#trajectories');
  await page.evaluate(() => window.__tokmap.setLayer(2, true));
  await page.evaluate(() => window.__tokmap.render());
  assert.match(await page.textContent('.view-caption'), /layer 2 · PCA/);
  await page.uncheck('#trajectories');

  // Back to t-SNE: the map's own coordinates again.
  await page.selectOption('#dims', '2');
  await page.evaluate((k) => window.__tokmap.setLayer(k), layerIdx);
  await page.selectOption('#projection', 'tsne');
  const back = await positions();
  back.forEach((p, i) => assert.ok(Math.abs(p[0] - tsne[i][0]) < 1e-6 && Math.abs(p[1] - tsne[i][1]) < 1e-6));
  assert.doesNotMatch(await page.textContent('.view-caption'), /PCA/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('colour by neighbourhood change and the moved-most list follow the data', { skip }, async () => {
  const file = path.join(dir, 'report', 'index.html');
  const raw = embeddedData(file);
  const { page, errors } = await openPage(browser, 'file://' + file);
  const N = raw.tokens.length;
  const layers = raw.layers;
  await page.selectOption('#color-by', 'change');
  for (const idx of [layers.length - 1, 2]) {
    await page.evaluate((k) => window.__tokmap.setLayer(k), idx);
    const c = raw.changes.find((x) => x.model === 0 && x.layer === layers[idx]);
    const colors = await page.evaluate(() => Array.from({ length: window.__tokmap.N }, (_, i) => window.__tokmap.color(i)));
    colors.forEach((col, i) => assert.deepEqual(col, viridis(c.jaccard[i]), `layer ${layers[idx]} token ${i}`));
    const legend = await page.textContent('#legend');
    assert.match(legend, /Jaccard index of each token’s 10 nearest neighbours/);
    assert.ok(legend.includes(`layer ${c.previous_layer} → ${c.layer}: mean ${c.mean.toFixed(2)}`), legend);
    // The list: the ten most changed tokens, in the data's order, each with its Jaccard index.
    assert.match(await page.textContent('#changes h3'), new RegExp(`Moved most between layer ${c.previous_layer} and ${c.layer}`));
    const listed = await page.$$eval('#changes ol.moved button[data-token]', (bs) => bs.map((b) => +b.dataset.token));
    assert.deepEqual(listed, c.most_changed.slice(0, 10));
    const values = await page.$$eval('#changes ol.moved .num', (xs) => xs.map((x) => x.textContent));
    assert.deepEqual(values, listed.map((i) => `J ${c.jaccard[i].toFixed(2)}`));
  }
  await page.screenshot({ path: path.join(artifacts, 'tokmap-change.png') });
  // A click selects the token, as the outlier list does.
  const first = await page.$eval('#changes ol.moved button[data-token]', (b) => +b.dataset.token);
  await page.click('#changes ol.moved button[data-token]');
  assert.equal(await page.evaluate(() => window.__tokmap.state().selected), first);
  // The first layer has nothing before it: grey, and the legend and panel say why.
  await page.evaluate(() => window.__tokmap.setLayer(0));
  const grey = hexToRgb(OTHER);
  for (let i = 0; i < N; i++) assert.deepEqual(await page.evaluate((j) => window.__tokmap.color(j), i), grey);
  assert.match(await page.textContent('#legend'), /first mapped layer/);
  assert.match(await page.textContent('#changes'), /first mapped layer/);
  assert.equal(await page.$$eval('#changes ol.moved', (x) => x.length), 0);
  // The tooltip names a token's change.
  await page.evaluate(() => window.__tokmap.setLayer(3));
  const c3 = raw.changes.find((x) => x.model === 0 && x.layer === layers[3]);
  const at = await page.evaluate(() => window.__tokmap.screenPosition(0));
  await page.mouse.move(at.x, at.y);
  await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
  const hovered = await page.evaluate(() => window.__tokmap.state().hover);
  assert.match(await page.textContent('#tooltip'), new RegExp(`change ${c3.jaccard[hovered].toFixed(2)} \\(from layer ${c3.previous_layer}\\)`));
  assert.deepEqual(errors, []);
  await page.close();
});

test('two models: the tokens that differ most at matched depth are listed', { skip }, async () => {
  const file = path.join(dir, 'compare', 'index.html');
  const raw = embeddedData(file);
  const { page, errors } = await openPage(browser, 'file://' + file);
  await page.evaluate(() => window.__tokmap.setLayer(5));
  const pair = raw.comparison.pairs.find((p) => p.a === 0 && p.b === 1 && p.layer_a === 5);
  assert.ok(pair);
  const heads = await page.$$eval('#changes h3', (hs) => hs.map((h) => h.textContent));
  assert.ok(heads.some((h) => h === `Most different: demo-brown-gpt2 layer 5 vs demo-brown-gpt2-small layer ${pair.layer_b}`), heads.join(' | '));
  const listed = await page.$$eval('#changes ol.moved-models button[data-token]', (bs) => bs.map((b) => +b.dataset.token));
  assert.deepEqual(listed, pair.most_changed.slice(0, 10));
  const values = await page.$$eval('#changes ol.moved-models .num', (xs) => xs.map((x) => x.textContent));
  assert.deepEqual(values, listed.map((i) => `overlap ${pair.overlap[i].toFixed(2)}`));
  // Side by side: each model's own moved-most list, at its own (paired) layer.
  await page.check('#side-by-side');
  const moved = await page.$$eval('#changes ol.moved', (ls) => ls.map((l) => [+l.dataset.model, +l.dataset.layer]));
  assert.deepEqual(moved, [[0, 5], [1, pair.layer_b]]);
  const c1 = raw.changes.find((c) => c.model === 1 && c.layer === pair.layer_b);
  const listed1 = await page.$$eval('#changes ol.moved[data-model="1"] button[data-token]', (bs) => bs.map((b) => +b.dataset.token));
  assert.deepEqual(listed1, c1.most_changed.slice(0, 10));
  // PCA side by side: each view shows its own model's PCA view.
  await page.selectOption('#projection', 'pca');
  const captions = await page.$$eval('.view-caption', (cs) => cs.map((c) => c.textContent));
  assert.equal(captions.length, 2);
  captions.forEach((c) => assert.match(c, /PCA, [\d.]+% of the variance/));
  await page.screenshot({ path: path.join(artifacts, 'tokmap-compare-pca.png') });
  assert.deepEqual(errors, []);
  await page.close();
});
