// The trust panel tells the truth (issue #9): every map's assessment (docs/REPORT_FORMAT.md,
// "Map assessment") is shown with a rating for KL too, a banner warns over a poor or degenerate
// picture, the page does not open on a degenerate map when a usable one exists, and tiny reports
// say their neighbour numbers are not meaningful. On the synthetic sample (web/make-sample.mjs,
// whose demo-brown-gpt2 layer 2 / perplexity 15 / 3D map is a degenerate straight line) and
// variants of it. Real headless Chromium, file://, network blocked, as in report.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useSampleReport, buildReport, openPage, webDir, artifacts } from './browser.mjs';

const samplePath = path.join(webDir, 'sample-data.json');
let browser, report, sample;

useSampleReport(samplePath, (suite) => ({ browser, report, sample } = suite));

const frames = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

/** The trust panel's grade cell for a metric row (by its label's start). */
const gradeOf = (page, label) => page.evaluate((l) => {
  const row = [...document.querySelectorAll('#trust .metrics tr[data-metric]')].find((r) => r.querySelector('th').textContent.startsWith(l));
  return row ? row.querySelector('.grade').textContent.trim() : null;
}, label);

const banner = (page, v = 0) => page.evaluate((k) => {
  const b = document.querySelectorAll('.view .map-warning')[k];
  return b && !b.hidden ? { text: b.textContent, rating: b.dataset.rating, role: b.getAttribute('role') } : null;
}, v);

/** A copy of the sample, changed by `edit`, as a report in a temp folder (removed by the caller). */
function variant(name, edit) {
  const data = JSON.parse(fs.readFileSync(samplePath, 'utf8'));
  edit(data);
  const file = path.join(artifacts, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(data));
  return buildReport(file);
}

const findMap = (data, model, layer, perplexity, dims) =>
  data.maps.find((m) => m.model === model && m.layer === layer && m.perplexity === perplexity && m.dims === dims);

/** Collapses a map to one point, as the broken optimiser of issue #9 left it. */
function collapse(m) {
  m.coords = m.coords.map((_, k) => (k % m.dims === 0 ? 1.5 : -0.5));
  m.kl = m.kl_uniform;
  m.trustworthiness = 0.5;
  m.assessment = {
    ...m.assessment, rating: 'degenerate', flags: ['point', 'uniform_kl', 'random_neighbors'], effective_dims: 0,
    reasons: ['every point is at the same place (RMS spread 0; optimised t-SNE maps span tens of units): the optimisation collapsed or never left its initialisation',
      'KL is 100% of the KL of a map with every point in one place'],
    kl_ratio: 1, coincident_fraction: 1, ratings: { ...m.assessment.ratings, kl: 'degenerate', trustworthiness: 'degenerate' },
  };
}

test('the trust panel rates the map and its KL, and lists the report\'s degenerate maps', async () => {
  const { page, errors } = await openPage(browser, report.url);
  const s = await page.evaluate(() => window.__tokmap.state());
  assert.deepEqual([s.layer, s.perplexity, s.dims], [6, 5, 2]);  // the default view: it is fine
  const m = findMap(sample, 0, 6, 5, 2);
  assert.equal(await page.getAttribute('#map-rating', 'data-rating'), m.assessment.rating);
  assert.equal(await gradeOf(page, 'KL divergence'), m.assessment.ratings.kl);
  assert.match(await page.textContent('#trust'), new RegExp(`${Math.round(100 * m.assessment.kl_ratio)}% of a point map`));
  assert.equal(await gradeOf(page, 'Trustworthiness'), m.assessment.ratings.trustworthiness);
  assert.equal(await gradeOf(page, '10-NN preserved'), m.assessment.ratings.knn_preservation);
  assert.equal(await banner(page), null, 'no warning over a good map');
  assert.match(await page.textContent('#trust .degenerate-list'), /Degenerate elsewhere in this report \(1\): layer 2 · p 15 · 3D/);

  // The degenerate line: a banner over the picture at once, the verdict and its reasons in the panel.
  await page.selectOption('#perplexity', '15');
  await page.selectOption('#dims', '3');
  await page.evaluate(() => window.__tokmap.setLayer(2, true));
  await frames(page);
  const b = await banner(page);
  assert.ok(b, 'a banner over the degenerate map');
  assert.equal(b.rating, 'degenerate');
  assert.equal(b.role, 'alert');
  assert.match(b.text, /Degenerate map: it shows nothing of the data\. The 3D map is a straight line/);
  assert.equal(await page.getAttribute('#map-rating', 'data-rating'), 'degenerate');
  assert.match(await page.textContent('#map-rating'), /straight line[\s\S]*97% of the KL of a map with every point in one place/);
  assert.equal(await gradeOf(page, 'KL divergence'), 'degenerate');
  assert.doesNotMatch(await page.textContent('#trust'), /Degenerate elsewhere/);  // it is this one
  await page.screenshot({ path: path.join(artifacts, 'trust-degenerate-line.png') });
  // Every seed of it is degenerate too; the seeds' neighbour numbers are the first seed's.
  await page.selectOption('#seed', '2');
  assert.equal((await banner(page)).rating, 'degenerate');
  // Moving to a healthy layer clears the banner.
  await page.evaluate(() => window.__tokmap.setLayer(3, true));
  await frames(page);
  assert.equal(await banner(page), null);
  // A poor map gets a milder banner, announced politely.
  const poor = sample.maps.find((x) => x.model === 0 && x.assessment.rating === 'poor');
  assert.ok(poor, 'the sample has a poor map');
  await page.selectOption('#seed', '0');
  await page.selectOption('#perplexity', String(poor.perplexity));
  await page.selectOption('#dims', String(poor.dims));
  await page.evaluate((l) => window.__tokmap.setLayer(l, true), sample.layers.indexOf(poor.layer));
  await frames(page);
  const p = await banner(page);
  assert.deepEqual([p.rating, p.role], ['poor', 'status']);
  assert.match(p.text, /Poor map: read it with care\. Trustworthiness/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the page does not open on a degenerate map when a usable one exists, and warns at once when none does', async () => {
  // The default view (layer 6, perplexity 5, 2D) collapsed to a point: open on the same layer
  // and dims at the other perplexity, and say why.
  const r = variant('trust-default-degenerate', (data) => collapse(findMap(data, 0, 6, 5, 2)));
  const all = variant('trust-all-degenerate', (data) => { for (const m of data.maps) collapse(m); });
  try {
    let { page, errors } = await openPage(browser, r.url);
    const s = await page.evaluate(() => window.__tokmap.state());
    assert.deepEqual([s.layer, s.perplexity, s.dims], [6, 15, 2]);
    assert.equal(await page.inputValue('#perplexity'), '15');
    assert.match(await page.textContent('#trust .opened-away'), /default view \(layer 6, perplexity 5, 2D\) is degenerate/);
    assert.equal(await banner(page), null);
    await page.selectOption('#perplexity', '5');
    await frames(page);
    assert.match((await banner(page)).text, /Degenerate map.*Every point is at the same place/);
    assert.equal(await page.$('#trust .opened-away'), null, 'the note belongs to the map the page opened on');
    assert.equal(await gradeOf(page, 'Trustworthiness'), 'degenerate');
    await page.screenshot({ path: path.join(artifacts, 'trust-degenerate-point.png') });
    assert.deepEqual(errors, []);
    await page.close();

    // Nothing usable: the default view, with the warning shown from the first frame.
    ({ page, errors } = await openPage(browser, all.url));
    const t = await page.evaluate(() => window.__tokmap.state());
    assert.deepEqual([t.layer, t.perplexity, t.dims], [6, 5, 2]);
    assert.equal((await banner(page)).rating, 'degenerate');
    assert.equal(await page.$('#trust .opened-away'), null);
    // Side by side, each view carries its own banner.
    await page.check('#side-by-side');
    await frames(page);
    assert.equal((await banner(page, 1)).rating, 'degenerate');
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    fs.rmSync(r.dir, { recursive: true, force: true });
    fs.rmSync(all.dir, { recursive: true, force: true });
  }
});

test('tiny reports say the neighbour numbers are not meaningful instead of rating them', async () => {
  const N = 8;
  const shrink = (data) => {
    data.tokens = data.tokens.slice(0, N);
    for (const m of data.maps) {
      m.coords = m.coords.slice(0, N * m.dims);
      m.seed_coords = m.seed_coords.map((c) => c.slice(0, N * m.dims));
      m.point_stability = m.point_stability.slice(0, N);
      m.k = 3;
      m.trustworthiness = 0.95;  // what tiny maps easily score
    }
    for (const a of data.analysis) {
      a.neighbors = a.neighbors.slice(0, N).map((row) => row.map((j) => j % N));
      a.neighbor_distances = a.neighbor_distances.slice(0, N);
      a.cluster = a.cluster.slice(0, N);
      a.outlier = a.outlier.slice(0, N);
      a.top_outliers = a.top_outliers.filter((i) => i < N);
    }
    for (const p of data.comparison.pairs) p.overlap = p.overlap.slice(0, N);
  };
  const assessed = variant('trust-tiny', (data) => {
    shrink(data);
    for (const m of data.maps) {
      for (const a of [m.assessment, ...m.seed_assessments]) {
        Object.assign(a, { neighbors_meaningful: false, flags: ['few_points'], rating: 'good',
          reasons: ['with 8 points (k = 3) the neighbour numbers are not meaningful: a random map scores 0.52 trustworthiness'] });
        a.ratings = { ...a.ratings, trustworthiness: null, continuity: null, knn_preservation: null };
      }
    }
  });
  // A report from before assessments existed: the page still will not grade 8 tokens' numbers.
  const old = variant('trust-tiny-old', (data) => {
    shrink(data);
    for (const m of data.maps) { delete m.assessment; delete m.seed_assessments; delete m.kl_uniform; delete m.k; }
  });
  try {
    for (const r of [assessed, old]) {
      const { page, errors } = await openPage(browser, r.url);
      assert.equal(await page.evaluate(() => window.__tokmap.N), N);
      for (const label of ['Trustworthiness', 'Continuity']) assert.equal(await gradeOf(page, label), 'not meaningful', label);
      assert.match(await page.textContent('#trust'), /not meaningful/);
      const classes = await page.$$eval('#trust .metrics tr[data-metric]', (rows) => rows.filter((t) => /Trustworthiness|Continuity|NN preserved/.test(t.dataset.metric)).map((t) => t.className));
      assert.deepEqual(classes, ['nm', 'nm', 'nm']);
      if (r === assessed) {
        assert.equal(await gradeOf(page, '3-NN preserved'), 'not meaningful');
        assert.match(await page.textContent('#map-rating'), /With 8 points \(k = 3\) the neighbour numbers are not meaningful/);
      } else {
        assert.equal(await page.$('#map-rating'), null);
      }
      assert.deepEqual(errors, []);
      await page.close();
    }
  } finally {
    fs.rmSync(assessed.dir, { recursive: true, force: true });
    fs.rmSync(old.dir, { recursive: true, force: true });
  }
});
