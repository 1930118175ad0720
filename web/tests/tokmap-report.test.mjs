// Reports written by the real `tokmap viz` (not the synthetic sample) open from file:// with
// the network blocked, draw, and answer hover; a two-model report pairs layers by relative
// depth and colours by neighbourhood overlap. Needs TOKMAP_BINARY (scripts/test.sh sets it);
// skipped otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { launch, openPage, artifacts, webDir, closeAll, embeddedData } from './browser.mjs';
import { viridis, OKABE_ITO, hexToRgb } from '../src/palette.js';

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
  // Two models of different depth (6 and 4 layers, same tokenizer) on the sample sentences.
  execFileSync(binary, ['viz', '--quiet', '--no-figures', '--model', 'demo-brown-gpt2', '--model', 'demo-brown-gpt2-small',
    '--file', path.join(webDir, '..', 'samples', 'sentences.txt'), '--out', path.join(dir, 'compare')]);
  // GPT-2 against a Llama-architecture model with another tokenizer: the tiny random Llama
  // fixture with the SentencePiece-style tokenizer of tests/data/explore (512 ids).
  const llama = path.join(dir, 'llama-spm');
  fs.mkdirSync(llama);
  const data = path.join(webDir, '..', 'tests', 'data');
  for (const f of ['config.json', 'model.safetensors'])
    fs.copyFileSync(path.join(data, 'model', 'arch', 'llama', 'hf', f), path.join(llama, f));
  fs.copyFileSync(path.join(data, 'explore', 'spm-512', 'tokenizer.json'), path.join(llama, 'tokenizer.json'));
  execFileSync(binary, ['viz', '--quiet', '--no-figures', '--model', 'demo-brown-gpt2', '--model', llama,
    '--text', 'The riverbank flooded after the storm, and the fishermen waited.',
    '--text', 'Interest rates at the central bank rose again.', '--out', path.join(dir, 'cross')]);
  // A tiny report (7 tokens: its neighbour numbers are not meaningful) and one whose maps were
  // stopped after 1 iteration (every map degenerate).
  execFileSync(binary, ['viz', '--quiet', '--no-figures', '--layers', 'last', '--text', 'The bank of the river was muddy.',
    '--out', path.join(dir, 'tiny')]);
  execFileSync(binary, ['viz', '--quiet', '--no-figures', '--layers', 'last', '--iterations', '1',
    '--text', 'The bank of the river was muddy.', '--text', 'I deposited money at the bank, then walked along the river bank.',
    '--out', path.join(dir, 'unoptimised')]);
  // An encoder (the tiny random BERT fixture, run on token ids): no causal LM head, no lens.
  execFileSync(binary, ['viz', '--quiet', '--no-figures', '--layers', 'last', '--model', path.join(data, 'model', 'arch', 'bert', 'hf'),
    '--ids', '464,314,182,197,52,308,234', '--ids', '493,166,102,162,174,179,292,216', '--out', path.join(dir, 'bert')]);
  fs.mkdirSync(artifacts, { recursive: true });
  browser = await launch();
});

after(() => closeAll(browser, dir));

test('a report from tokmap viz loads offline, draws and shows tokens on hover', { skip }, async () => {
  const { page, errors } = await openPage(browser, 'file://' + path.join(dir, 'report', 'index.html'));
  const shot = await page.screenshot({ path: path.join(artifacts, 'tokmap-report.png') });
  assert.ok(shot.length > 10000, 'the page rendered something');
  assert.equal(await page.evaluate(() => window.__tokmap.N), 20);  // first tokens excluded
  // One model: no model or overlap colouring.
  const modes = await page.$$eval('#color-by option', (os) => os.map((o) => o.value));
  assert.ok(!modes.includes('overlap') && !modes.includes('model'), modes.join());
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


test('a two-model report from tokmap viz: paired layers side by side, overlap colouring, legend filter', { skip }, async () => {
  const file = path.join(dir, 'compare', 'index.html');
  const data = embeddedData(file);
  assert.deepEqual(data.models, ['demo-brown-gpt2', 'demo-brown-gpt2-small']);
  const pairs = data.comparison.pairs;
  // tokmap viz pairs every layer of the 6-layer model with the 4-layer model's at the same depth.
  assert.deepEqual(pairs.map((p) => [p.layer_a, p.layer_b]), [[0, 0], [1, 1], [2, 1], [3, 2], [4, 3], [5, 3], [6, 4]]);
  for (const p of pairs) {
    assert.equal(p.overlap.length, data.tokens.length, 'one overlap value per token');
    assert.equal(p.k, 10);
  }
  const { page, errors } = await openPage(browser, 'file://' + file);
  const N = await page.evaluate(() => window.__tokmap.N);
  assert.equal(N, data.tokens.length);
  await page.check('#side-by-side');
  assert.deepEqual(await page.evaluate(() => window.__tokmap.viewLayers()), [6, 4]);
  for (const p of pairs) {
    await page.evaluate((k) => window.__tokmap.setLayer(k, true), p.layer_a);
    assert.deepEqual(await page.evaluate(() => window.__tokmap.viewLayers()), [p.layer_a, p.layer_b]);
  }
  // Overlap colouring: both views colour token i by overlap[i] of the pair shown.
  await page.evaluate(() => window.__tokmap.setLayer(5, true));
  await page.selectOption('#color-by', 'overlap');
  const pair = pairs.find((p) => p.layer_a === 5);
  for (const v of [0, 1]) {
    const colors = await page.evaluate((k) => Array.from({ length: window.__tokmap.N }, (_, i) => window.__tokmap.color(i, k)), v);
    colors.forEach((c, i) => assert.deepEqual(c, viridis(pair.overlap[i]), `token ${i}, view ${v}`));
  }
  assert.match(await page.textContent('#legend'), /1 \(all 10 shared\)/);
  assert.match(await page.textContent('#legend'), new RegExp(`layer 5 vs demo-brown-gpt2-small layer 3: mean ${pair.mean.toFixed(2)}`));
  assert.match(await page.textContent('.view:nth-child(2) .view-caption'), /layer 3 \(paired with layer 5\)/);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-compare-overlap.png') });

  // Legend filter in 3D, kept across a layer change.
  await page.selectOption('#dims', '3');
  await page.selectOption('#color-by', 'kind');
  const words = data.tokens.filter((t) => t.kind === 'word').length;
  await page.click('#legend button.legend-item[data-key="0"]');
  assert.deepEqual(await page.evaluate(() => [window.__tokmap.visibleCount(0), window.__tokmap.visibleCount(1)]), [N - words, N - words]);
  await page.evaluate(() => window.__tokmap.setLayer(2, true));
  assert.deepEqual(await page.evaluate(() => [window.__tokmap.visibleCount(0), window.__tokmap.visibleCount(1)]), [N - words, N - words]);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-compare-3d-filtered.png') });
  await page.click('#show-all');
  assert.equal(await page.evaluate(() => window.__tokmap.visibleCount(1)), N);
  assert.deepEqual(errors, []);
  await page.close();
});

test('GPT-2 against a model with another tokenizer: aligned spans, each model\'s own tokens in the tooltip', { skip }, async () => {
  const file = path.join(dir, 'cross', 'index.html');
  const data = embeddedData(file);
  assert.equal(data.settings.points, 'spans');
  assert.equal(data.models.length, 2);
  assert.ok(data.comparison.pairs.length > 0, 'the overlap works across tokenizers');
  for (const t of data.tokens) assert.equal(t.pieces.length, 2);
  // A span the two tokenizers split differently, hovered: both models' tokens are listed.
  const split = data.tokens.findIndex((t) => t.pieces[0].length !== t.pieces[1].length);
  assert.ok(split >= 0, 'some word is split differently');
  const { page, errors } = await openPage(browser, 'file://' + file);
  assert.equal(await page.evaluate(() => window.__tokmap.N), data.tokens.length);
  assert.match(await page.textContent('#summary'), new RegExp(`^${data.tokens.length} spans aligned across tokenizers`));
  await page.check('#side-by-side');
  assert.equal((await page.$$('.view canvas.gl')).length, 2);
  await page.selectOption('#color-by', 'overlap');
  const at = await page.evaluate((i) => window.__tokmap.screenPosition(i), split);
  assert.ok(at.visible);
  await page.mouse.move(at.x, at.y);
  await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
  const items = await page.$$eval('#tooltip .tt-pieces li', (li) => li.map((l) => l.textContent));
  // The point under the mouse (a neighbour may lie on top of the one aimed at).
  const hovered = await page.evaluate(() => window.__tokmap.state().hover);
  assert.ok(hovered >= 0);
  assert.equal(items.length, 2, 'one line per model');
  assert.match(items[0], /demo-brown-gpt2/);
  assert.match(items[1], /llama-spm/);
  for (const [m, line] of items.entries())
    assert.equal((line.match(/ \+ /g) || []).length, data.tokens[hovered].pieces[m].length - 1, line);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-cross-tokenizer.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('the logit lens: next-token predictions in the tooltip, agreement and entropy colourings', { skip }, async () => {
  const file = path.join(dir, 'report', 'index.html');
  const data = embeddedData(file);
  assert.equal(data.lens.length, 1, 'GPT-2 has an output head');
  const lens = data.lens[0];
  assert.equal(lens.k, 5);
  assert.equal(lens.final_layer, 6);
  assert.equal(lens.vocab_size, 50257);
  assert.deepEqual(lens.layers.map((l) => l.layer), data.layers);
  const last = lens.layers[lens.layers.length - 1];
  assert.deepEqual(last.top_ids.map((r) => r[0]), lens.final_top1, 'the final layer agrees with itself');
  for (const l of lens.layers) {
    l.top_probs.forEach((p, i) => {
      for (let k = 1; k < p.length; k++) assert.ok(p[k] <= p[k - 1], `layer ${l.layer} token ${i}: sorted`);
      assert.ok(p.reduce((a, b) => a + b, 0) <= 1 + 1e-5);
      assert.ok(l.entropy[i] >= 0 && l.entropy[i] <= Math.log(lens.vocab_size) + 1e-4);
    });
    for (const row of l.top_ids) for (const id of row) assert.equal(typeof lens.tokens[id], 'string', `display of ${id}`);
  }
  const { page, errors } = await openPage(browser, 'file://' + file);
  const modes = await page.$$eval('#color-by option', (os) => os.map((o) => o.value));
  assert.ok(modes.includes('lens-agree') && modes.includes('lens-entropy'), modes.join());
  // Hover a token at layer 2: its five predictions, with their probabilities, and the entropy.
  const layer2 = lens.layers.find((l) => l.layer === 2);
  await page.evaluate(() => window.__tokmap.setLayer(2));
  const target = (await page.evaluate(() => window.__tokmap.highlighted()))[0];
  const at = await page.evaluate((i) => window.__tokmap.screenPosition(i), target);
  assert.ok(at.visible);
  await page.mouse.move(at.x, at.y);
  await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
  const hovered = await page.evaluate(() => window.__tokmap.state().hover);
  assert.ok(hovered >= 0);
  assert.match(await page.textContent('#tooltip'), /Next-token predictions at this layer/i);
  const lines = await page.$$eval('#tooltip .tt-lens li', (li) => li.map((l) => l.textContent));
  assert.equal(lines.length, 5);
  lines.forEach((line, k) => {
    assert.ok(line.endsWith(layer2.top_probs[hovered][k].toFixed(3)), `${line} ends with p`);
    assert.ok(line.includes(lens.tokens[layer2.top_ids[hovered][k]].trim()), `${line} shows the token`);
  });
  assert.match(await page.textContent('#tooltip'), new RegExp(`entropy ${layer2.entropy[hovered].toFixed(2)} nats`));
  await page.screenshot({ path: path.join(artifacts, 'tokmap-lens-tooltip.png') });
  // Agreement colouring: two categories, by whether the top-1 is the final layer's.
  await page.selectOption('#color-by', 'lens-agree');
  const colors = await page.evaluate(() => Array.from({ length: window.__tokmap.N }, (_, i) => window.__tokmap.color(i)));
  let same = 0;
  colors.forEach((c, i) => {
    const agrees = layer2.top_ids[i][0] === lens.final_top1[i];
    same += agrees ? 1 : 0;
    assert.deepEqual(c, hexToRgb(OKABE_ITO[agrees ? 2 : 3]), `token ${i}`);
  });
  assert.match(await page.textContent('#legend'), new RegExp(`for ${same} of ${data.tokens.length} points`));
  // Entropy colouring: viridis over [0, ln V].
  await page.selectOption('#color-by', 'lens-entropy');
  const shades = await page.evaluate(() => Array.from({ length: window.__tokmap.N }, (_, i) => window.__tokmap.color(i)));
  shades.forEach((c, i) => assert.deepEqual(c, viridis(layer2.entropy[i] / Math.log(50257)), `token ${i}`));
  assert.match(await page.textContent('#legend'), /ln 50257/);
  assert.deepEqual(errors, []);
  await page.close();
  // Across tokenizers every causal model has its own lens, predicted from each span's last token.
  const cross = embeddedData(path.join(dir, 'cross', 'index.html'));
  assert.deepEqual(cross.lens.map((l) => l.model), [0, 1]);
  assert.equal(cross.lens[1].vocab_size, 512);
  // An encoder has none, and the tooltip says why.
  const bertFile = path.join(dir, 'bert', 'index.html');
  assert.deepEqual(embeddedData(bertFile).lens, []);
  const bert = await openPage(browser, 'file://' + bertFile);
  const bertModes = await bert.page.$$eval('#color-by option', (os) => os.map((o) => o.value));
  assert.ok(!bertModes.includes('lens-agree') && !bertModes.includes('lens-entropy'), bertModes.join());
  const spot = await bert.page.evaluate(() => window.__tokmap.screenPosition(0));
  await bert.page.mouse.move(spot.x, spot.y);
  await bert.page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
  assert.match(await bert.page.textContent('#tooltip'), /No next-token predictions: .* has no causal LM head/);
  assert.deepEqual(bert.errors, []);
  await bert.page.close();
});

test('the trust panel of real reports: tiny inputs are not rated, unoptimised maps are flagged at once', { skip }, async () => {
  const tiny = embeddedData(path.join(dir, 'tiny', 'index.html'));
  assert.equal(tiny.tokens.length, 7);
  assert.equal(tiny.maps[0].assessment.neighbors_meaningful, false);
  let { page, errors } = await openPage(browser, 'file://' + path.join(dir, 'tiny', 'index.html'));
  const grades = await page.$$eval('#trust .metrics tr[data-metric]', (rows) => rows.map((r) => [r.querySelector('th').textContent, r.querySelector('.grade')?.textContent ?? '']));
  for (const [label, grade] of grades) {
    if (/Trustworthiness|Continuity|NN preserved/.test(label)) assert.equal(grade, 'not meaningful', label);
  }
  assert.match(await page.textContent('#map-rating'), /not meaningful/);
  assert.deepEqual(errors, []);
  await page.close();

  const data = embeddedData(path.join(dir, 'unoptimised', 'index.html'));
  assert.ok(data.maps.every((m) => m.assessment.rating === 'degenerate'), JSON.stringify(data.maps.map((m) => m.assessment.flags)));
  ({ page, errors } = await openPage(browser, 'file://' + path.join(dir, 'unoptimised', 'index.html')));
  assert.equal(await page.getAttribute('#map-rating', 'data-rating'), 'degenerate');
  assert.match(await page.textContent('.view .map-warning'), /Degenerate map: it shows nothing of the data/);
  assert.equal(await page.isVisible('.view .map-warning'), true);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-report-unoptimised.png') });
  assert.deepEqual(errors, []);
  await page.close();
});
