// Model comparison and legend filtering on the synthetic sample (web/make-sample.mjs): two
// models of different depth (7 and 5 hidden states) whose comparison pairs match relative depth.
// Real headless Chromium, file://, network blocked, as in report.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useSampleReport, buildReport, diffPixels, openPage, webDir, artifacts } from './browser.mjs';
import { viridis } from '../src/palette.js';

const samplePath = path.join(webDir, 'sample-data.json');
let browser, report, sample;

useSampleReport(samplePath, (suite) => ({ browser, report, sample } = suite));

const frames = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

/** Screenshot of view v's canvas, kept as a test artefact. */
async function canvasShot(page, name, v = 0) {
  const el = (await page.$$('.view canvas.gl'))[v];
  return page.screenshot({ clip: await el.boundingBox(), path: path.join(artifacts, name) });
}


/** Pixels that are not the background, in a PNG screenshot. */
async function inkOf(page, png) {
  return page.evaluate(async (b64) => {
    const i = new Image(); i.src = 'data:image/png;base64,' + b64; await i.decode();
    const c = document.createElement('canvas'); c.width = i.width; c.height = i.height;
    const g = c.getContext('2d'); g.drawImage(i, 0, 0);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let k = 0; k < px.length; k += 4) if (Math.abs(px[k] - 255) + Math.abs(px[k + 1] - 254) + Math.abs(px[k + 2] - 250) > 30) ink++;
    return ink;
  }, png.toString('base64'));
}

/** The layer of model 1 that the sample pairs with layer l of model 0 (tokmap viz's rule). */
const pairedLayer = (l) => sample.comparison.pairs.find((p) => p.layer_a === l).layer_b;

test('model comparison: side-by-side views pair layers by relative depth; neighbourhood overlap colouring', async () => {
  const { page, errors } = await openPage(browser, report.url);
  const options = await page.$$eval('#color-by option', (os) => os.map((o) => o.value));
  assert.ok(options.includes('overlap'), 'comparison data offer the overlap colouring');

  await page.check('#side-by-side');
  await frames(page);
  assert.equal((await page.$$('.view canvas.gl')).length, 2);
  // The last layer of the 6-layer model sits next to the last of the 4-layer model.
  assert.deepEqual(await page.evaluate(() => window.__tokmap.viewLayers()), [6, 4]);
  assert.equal(pairedLayer(6), 4);
  const captions = await page.$$eval('.view-caption', (cs) => cs.map((c) => c.textContent));
  assert.match(captions[0], /demo-brown-gpt2 · layer 6 ·/);
  assert.match(captions[1], /demo-brown-gpt2-small · layer 4 \(paired with layer 6\)/);

  // Moving the slider on model a moves model b to its paired layer, for every layer.
  for (const [idx, layer] of sample.layers.entries()) {
    await page.evaluate((k) => window.__tokmap.setLayer(k, true), idx);
    assert.deepEqual(await page.evaluate(() => window.__tokmap.viewLayers()), [layer, pairedLayer(layer)], `layer ${layer}`);
  }
  // ... through the real slider too (layer 3 -> 2, paired with 1)
  await page.evaluate(() => window.__tokmap.setLayer(3));
  await page.focus('#layer');
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction(() => window.__tokmap.state().layerPos === 2);
  assert.deepEqual(await page.evaluate(() => window.__tokmap.viewLayers()), [2, pairedLayer(2)]);
  // The right view draws model b's paired map (not the same layer number): compare coordinates.
  const same = await page.evaluate((lb) => {
    const app = window.__tokmap.app, d = app.data, s = app.state;
    const want = d.coords(d.map(1, lb, s.perplexity, s.dims), 0);
    const other = d.coords(d.map(1, 2, s.perplexity, s.dims), 0);
    let err = 0, diff = 0;
    for (let i = 0; i < d.N; i++) {
      const p = app.views[1].position(i);
      for (let k = 0; k < 2; k++) { err = Math.max(err, Math.abs(p[k] - want[i * 3 + k])); diff = Math.max(diff, Math.abs(p[k] - other[i * 3 + k])); }
    }
    return { err, diff };
  }, pairedLayer(2));
  assert.ok(same.err < 1e-6, `view b shows its paired map (max error ${same.err})`);
  assert.ok(same.diff > 1e-3, 'and not its map of the same layer number');

  // Neighbourhood overlap: each token coloured by its per-token value (viridis), with a legend.
  await page.evaluate(() => window.__tokmap.setLayer(6));
  await page.selectOption('#color-by', 'overlap');
  await frames(page);
  const pair = sample.comparison.pairs.find((p) => p.layer_a === 6);
  for (const v of [0, 1]) {
    const colors = await page.evaluate((k) => Array.from({ length: window.__tokmap.N }, (_, i) => window.__tokmap.color(i, k)), v);
    colors.forEach((c, i) => assert.deepEqual(c, viridis(pair.overlap[i]), `token ${i} in view ${v}`));
  }
  const legend = await page.textContent('#legend');
  assert.match(legend, /0 \(none shared\)/);
  assert.match(legend, /1 \(all 10 shared\)/);
  assert.match(legend, new RegExp(`demo-brown-gpt2 layer 6 vs demo-brown-gpt2-small layer 4: mean ${pair.mean.toFixed(2)}`));
  assert.ok(await page.$('#legend .ramp'), 'a colour ramp');
  assert.match(await page.textContent('#trust'), /Neighbourhood overlap demo-brown-gpt2 \(layer 6\) vs demo-brown-gpt2-small \(layer 4\)/);
  const png = await canvasShot(page, 'overlap-side-by-side-right.png', 1);
  assert.ok((await inkOf(page, png)) > 500, 'the right view draws');
  await page.screenshot({ path: path.join(artifacts, 'overlap-side-by-side.png') });

  // The hover tooltip gives the token's overlap and the layer it is compared with.
  const i = sample.tokens.findIndex((t) => t.display === ' river');
  const at = await page.evaluate((k) => window.__tokmap.screenPosition(k, 1), i);
  await page.mouse.move(at.x, at.y);
  await page.waitForFunction((k) => window.__tokmap.state().hover === k, i);
  assert.match(await page.textContent('#tooltip'), new RegExp(`layer 4 .*overlap ${pair.overlap[i].toFixed(2)} \\(demo-brown-gpt2 layer 6\\)`));

  // The colouring follows the layer: at layer 3 the pair (3, 2) colours the points.
  await page.evaluate(() => window.__tokmap.setLayer(3, true));
  const pair3 = sample.comparison.pairs.find((p) => p.layer_a === 3);
  assert.deepEqual(await page.evaluate(() => window.__tokmap.color(0, 1)), viridis(pair3.overlap[0]));
  assert.match(await page.textContent('#legend'), /layer 3 vs demo-brown-gpt2-small layer 2/);

  // One model at a time: the slider runs over that model's own layers, at matching depth.
  await page.uncheck('#side-by-side');
  await page.selectOption('#model', '1');
  await frames(page);
  assert.equal(await page.getAttribute('#layer', 'max'), '4');
  assert.deepEqual(await page.evaluate(() => window.__tokmap.viewLayers()), [2]);
  assert.equal(await page.textContent('#layer-value'), '2');
  assert.deepEqual(await page.evaluate(() => window.__tokmap.color(0, 0)), viridis(pair3.overlap[0]));
  await page.selectOption('#model', '0');
  assert.deepEqual(await page.evaluate(() => window.__tokmap.viewLayers()), [3]);
  assert.equal(await page.getAttribute('#layer', 'max'), '6');
  assert.deepEqual(errors, []);
  await page.close();
});

test('legend click hides a category (2D and 3D, across layers); a second click or "show all" restores', async () => {
  const { page, errors } = await openPage(browser, report.url);
  const N = sample.tokens.length;
  await page.selectOption('#color-by', 'text');
  assert.equal(await page.isDisabled('#show-all'), true);
  const before = await canvasShot(page, 'filter-none.png');

  // Hide text 2.
  const text2 = sample.tokens.map((t, i) => (t.text === 1 ? i : -1)).filter((i) => i >= 0);
  await page.click('#legend button.legend-item[data-key="1"]');
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount()), N - text2.length);
  const hidden = await page.evaluate(() => Array.from({ length: window.__tokmap.N }, (_, i) => window.__tokmap.hidden(i)));
  hidden.forEach((h, i) => assert.equal(h, sample.tokens[i].text === 1, `token ${i}`));
  assert.equal(await page.getAttribute('#legend button.legend-item[data-key="1"]', 'aria-pressed'), 'false');
  assert.equal(await page.isDisabled('#show-all'), false);
  assert.match(await page.textContent('#filter-status'), new RegExp(`${N - text2.length} of ${N} points shown`));
  const after = await canvasShot(page, 'filter-text2-hidden.png');
  assert.ok((await diffPixels(page, before, after)) > 100, 'the hidden points disappear from the picture');
  await page.screenshot({ path: path.join(artifacts, 'filter-legend.png') });
  // A hidden point cannot be hovered.
  const p = await page.evaluate((k) => window.__tokmap.screenPosition(k), text2[3]);
  await page.mouse.move(p.x, p.y);
  await frames(page);
  assert.notEqual(await page.evaluate(() => window.__tokmap.state().hover), text2[3]);

  // The filter survives layer changes and the switch to 3D.
  await page.evaluate(() => window.__tokmap.setLayer(1, true));
  assert.equal(await page.evaluate(() => window.__tokmap.state().layer), 1);
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount()), N - text2.length);
  await page.selectOption('#dims', '3');
  await frames(page);
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount()), N - text2.length);
  assert.equal(await page.evaluate((k) => window.__tokmap.hidden(k), text2[0]), true);
  const shot3 = await canvasShot(page, 'filter-3d-hidden.png');
  // Hide text 1 as well; the 3D picture changes.
  await page.click('#legend button.legend-item[data-key="0"]');
  const text1 = sample.tokens.filter((t) => t.text === 0).length;
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount()), N - text2.length - text1);
  const shot3b = await canvasShot(page, 'filter-3d-two-hidden.png');
  assert.ok((await diffPixels(page, shot3, shot3b)) > 100, 'hiding in 3D changes the picture');
  // A second click restores one; "show all" restores everything.
  await page.click('#legend button.legend-item[data-key="0"]');
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount()), N - text2.length);
  await page.click('#show-all');
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount()), N);
  assert.equal(await page.isDisabled('#show-all'), true);
  assert.equal(await page.getAttribute('#legend button.legend-item[data-key="1"]', 'aria-pressed'), 'true');

  // Token kind: hide punctuation (keyboard: Enter on the focused entry).
  await page.selectOption('#color-by', 'kind');
  const punct = sample.tokens.filter((t) => t.kind === 'punctuation').length;
  assert.ok(punct > 0);
  await page.focus('#legend button.legend-item[data-key="2"]');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount()), N - punct);
  // Filters belong to their colouring: back to text, everything shows; back to kind, hidden again.
  await page.selectOption('#color-by', 'text');
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount()), N);
  await page.selectOption('#color-by', 'kind');
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount()), N - punct);
  await page.click('#show-all');

  // Cluster: the hidden cluster id stays hidden at the next layer (that layer's members).
  await page.selectOption('#dims', '2');
  await page.selectOption('#color-by', 'cluster');
  const key = await page.getAttribute('#legend button.legend-item', 'data-key');
  await page.click(`#legend button.legend-item[data-key="${key}"]`);
  for (const layerIdx of [1, 4]) {
    await page.evaluate((k) => window.__tokmap.setLayer(k, true), layerIdx);
    const check = await page.evaluate((c) => {
      const app = window.__tokmap.app, a = app.data.analysis(0, app.currentLayer());
      let wrong = 0, count = 0;
      const rank = new Map();
      for (const x of a.cluster) rank.set(x, (rank.get(x) || 0) + 1);
      const top = [...rank.entries()].sort((p, q) => q[1] - p[1] || p[0] - q[0]).slice(0, 7).map((e) => String(e[0]));
      for (let i = 0; i < app.data.N; i++) {
        const want = top.includes(String(a.cluster[i])) && String(a.cluster[i]) === c;
        if (want) count++;
        if (want !== window.__tokmap.hidden(i)) wrong++;
      }
      return { wrong, count };
    }, key);
    assert.equal(check.wrong, 0, `layer index ${layerIdx}: hidden = members of cluster ${key}`);
  }
  await page.click('#show-all');

  // Model (side by side): hiding one model empties its view only.
  await page.check('#side-by-side');
  await page.selectOption('#color-by', 'model');
  await page.click('#legend button.legend-item[data-key="1"]');
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount(0)), N);
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount(1)), 0);
  const left = await canvasShot(page, 'filter-model-shown-left.png', 0);
  const right = await canvasShot(page, 'filter-model-hidden-right.png', 1);
  const [inkLeft, inkRight] = [await inkOf(page, left), await inkOf(page, right)];
  assert.ok(inkRight < inkLeft / 4, `the hidden model draws no points (ink ${inkRight} vs ${inkLeft})`);
  await page.click('#show-all');
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount(1)), N);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a layer the report pairs with none: model b shows its own nearest layer, marked, and overlap is grey', async () => {
  const data = JSON.parse(fs.readFileSync(samplePath, 'utf8'));
  data.comparison.pairs = data.comparison.pairs.filter((p) => p.layer_a === 6); // as with --layers 0,2,4,6
  const tmp = path.join(artifacts, 'unpaired-data.json');
  fs.writeFileSync(tmp, JSON.stringify(data));
  const r = buildReport(tmp);
  try {
    const { page, errors } = await openPage(browser, r.url);
    await page.check('#side-by-side');
    await page.selectOption('#color-by', 'overlap');
    assert.deepEqual(await page.evaluate(() => window.__tokmap.viewLayers()), [6, 4]);
    await page.evaluate(() => window.__tokmap.setLayer(2, true));
    assert.deepEqual(await page.evaluate(() => window.__tokmap.viewLayers()), [2, 2]);
    assert.match(await page.textContent('.view:nth-child(2) .view-caption'), /layer 2 \(no paired layer\)/);
    assert.match(await page.textContent('#legend'), /No comparison at layer 2/);
    assert.deepEqual(await page.evaluate(() => window.__tokmap.color(0, 1)), [0xb8, 0xb8, 0xb8]);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    fs.rmSync(r.dir, { recursive: true, force: true });
  }
});
