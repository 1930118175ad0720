// The report page as a person would use it: real headless Chromium (Debian's), file://,
// network blocked. Run: node --test web/tests/   (after node web/build.mjs && node web/make-sample.mjs)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useSampleReport, buildReport, diffPixels, openPage, webDir, artifacts, chromiumPath, median } from './browser.mjs';
import { PLACEHOLDER } from '../report.mjs';

const templatePath = path.join(webDir, 'dist', 'report-template.html');
const samplePath = path.join(webDir, 'sample-data.json');
const bigPath = path.join(webDir, 'dist', 'sample-big.json');
const BG = [255, 254, 250];

let browser, report, sample;

useSampleReport(samplePath, (suite) => ({ browser, report, sample } = suite), () => {
  assert.ok(fs.existsSync(templatePath), 'run node web/build.mjs first');
  assert.ok(chromiumPath(), 'Chromium not found (apt-get install chromium)');
});

/** Decodes a PNG screenshot in the page itself and counts pixels that differ from the background. */
async function inkStats(page, png, clip) {
  return page.evaluate(async ({ b64, bg }) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    let ink = 0, colors = new Set();
    for (let i = 0; i < px.length; i += 4) {
      const d = Math.abs(px[i] - bg[0]) + Math.abs(px[i + 1] - bg[1]) + Math.abs(px[i + 2] - bg[2]);
      if (d > 30) { ink++; if (colors.size < 64) colors.add((px[i] >> 4) * 256 + (px[i + 1] >> 4) * 16 + (px[i + 2] >> 4)); }
    }
    return { ink, total: px.length / 4, colors: colors.size };
  }, { b64: png.toString('base64'), bg: BG });
}

async function canvasShot(page, name, v = 0) {
  const el = (await page.$$('.view canvas.gl'))[v];
  const box = await el.boundingBox();
  const png = await page.screenshot({ clip: box, path: path.join(artifacts, name) });
  return png;
}


test('the template holds the data placeholder exactly once, inside the data script, and nothing remote', () => {
  const html = fs.readFileSync(templatePath, 'utf8');
  assert.equal(html.split(PLACEHOLDER).length, 2);
  assert.ok(html.includes(`<script type="application/json" id="tokmap-data">${PLACEHOLDER}</script>`));
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org)/i);
});

test('the bare template says there is no data, without errors', async () => {
  const { page, errors } = await openPage(browser, 'file://' + templatePath);
  assert.equal(await page.evaluate(() => window.__tokmap.empty), true);
  assert.match(await page.textContent('#empty'), /No data/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('2D map: loads offline, draws, tooltip, search, click, labels, layer slider', async () => {
  const { page, errors } = await openPage(browser, report.url);
  assert.equal(await page.evaluate(() => window.__tokmap.N), sample.tokens.length);
  assert.equal(await page.evaluate(() => window.__tokmap.state().dims), 2);

  // Not blank: many non-background pixels, several colours.
  let png = await canvasShot(page, '2d-initial.png');
  const ink = await inkStats(page, png);
  assert.ok(ink.ink > 500, `canvas looks blank (${ink.ink} ink pixels)`);
  assert.ok(ink.colors >= 3, 'expected several colours');
  await page.screenshot({ path: path.join(artifacts, 'page-2d.png') });

  // Hover a known point: its token appears in the tooltip, with the text and neighbours.
  const i = sample.tokens.findIndex((t) => t.display === ' river');
  const pos = await page.evaluate((k) => window.__tokmap.screenPosition(k), i);
  assert.ok(pos.visible);
  await page.mouse.move(pos.x, pos.y);
  await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
  const tip = await page.textContent('#tooltip');
  assert.match(tip, /river/);
  assert.match(tip, /The bank of the/); // its sentence
  assert.equal(await page.textContent('#tooltip mark'), ' river');
  assert.match(tip, /Nearest in layer 6/);
  assert.equal((await page.$$('#tooltip .tt-nn li')).length, 5);
  await page.screenshot({ path: path.join(artifacts, 'tooltip.png') });

  // Byte offsets: a token after a non-ASCII character is still marked correctly.
  const k = sample.tokens.findIndex((t) => t.display === ' closed');
  const pk = await page.evaluate((j) => window.__tokmap.screenPosition(j), k);
  await page.mouse.move(pk.x + 200, pk.y + 200);
  await page.mouse.move(pk.x, pk.y);
  await page.waitForFunction((j) => window.__tokmap.state().hover === j, k);
  assert.equal(await page.textContent('#tooltip mark'), ' closed');

  // Search: the matches are highlighted; an invalid regex is a gentle message, not an exception.
  const n = await page.evaluate(() => window.__tokmap.search('^ ?(river|bank)s?$'));
  const expected = sample.tokens.filter((t) => /^ ?(river|bank)s?$/i.test(t.display)).length;
  assert.equal(n, expected);
  assert.deepEqual(await page.evaluate(() => window.__tokmap.highlighted().length), expected);
  assert.match(await page.textContent('#search-status'), new RegExp(`${expected} matches`));
  await page.fill('#search', '(unclosed');
  await page.waitForFunction(() => /not a valid/.test(document.querySelector('#search-status').textContent));
  assert.equal(await page.getAttribute('#search', 'aria-invalid'), 'true');
  await page.fill('#search', '');
  await page.waitForFunction(() => window.__tokmap.highlighted().length === 0);

  // Click: every occurrence of the same string is highlighted.
  const bank = sample.tokens.findIndex((t) => t.display === ' bank');
  const occurrences = sample.tokens.filter((t) => t.display.trim() === 'bank').length;
  const pb = await page.evaluate((j) => window.__tokmap.screenPosition(j), bank);
  await page.mouse.move(pb.x, pb.y);
  await page.mouse.down();
  await page.mouse.up();
  await page.waitForFunction((j) => window.__tokmap.state().selected === j, bank);
  assert.equal(await page.evaluate(() => window.__tokmap.highlighted().length), occurrences);
  assert.match(await page.textContent('#selection'), new RegExp(`${occurrences} occurrences`));
  const labels = await page.evaluate(() => window.__tokmap.placedLabels()[0]);
  assert.ok(labels >= 1 && labels <= occurrences, `labels placed: ${labels}`);
  await page.screenshot({ path: path.join(artifacts, 'selection.png') });
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => window.__tokmap.state().selected === -1);

  // Layer slider: the points move (hook coordinates and pixels).
  const before6 = await page.evaluate((j) => window.__tokmap.position(j), i);
  png = await canvasShot(page, 'layer-6.png');
  await page.evaluate(() => window.__tokmap.setLayer(0, true));
  const after0 = await page.evaluate((j) => window.__tokmap.position(j), i);
  assert.notDeepEqual(after0, before6);
  assert.equal(await page.evaluate(() => window.__tokmap.state().layer), 0);
  const png0 = await canvasShot(page, 'layer-0.png');
  assert.ok((await diffPixels(page, png, png0)) > 200, 'the picture should change between layers');
  // ... and via the real slider control
  await page.focus('#layer');
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => window.__tokmap.state().layerPos === 1);
  assert.equal(await page.textContent('#layer-value'), '1');
  // Keyboard: [ and ] step through the layers; the canvas is focusable and labelled.
  await page.focus('.view canvas.gl');
  assert.match(await page.getAttribute('.view canvas.gl', 'aria-label'), /t-SNE map of \d+ tokens/);
  await page.keyboard.press(']');
  await page.waitForFunction(() => window.__tokmap.state().layerPos === 2);
  await page.keyboard.press('[');
  await page.waitForFunction(() => window.__tokmap.state().layerPos === 1);
  // Trajectories draw lines across layers.
  await page.check('#trajectories');
  await page.evaluate(() => window.__tokmap.search('^ bank$'));
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({ path: path.join(artifacts, 'trajectories.png') });

  assert.deepEqual(errors, []);
  await page.close();
});

test('3D view: dragging rotates; side-by-side models; colour modes', async () => {
  const { page, errors } = await openPage(browser, report.url);
  await page.selectOption('#dims', '3');
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  assert.equal(await page.evaluate(() => window.__tokmap.state().dims), 3);
  const a = await canvasShot(page, '3d-before.png');
  assert.ok((await inkStats(page, a)).ink > 500);
  const box = await (await page.$('.view canvas.gl')).boundingBox();
  const i = 5;
  const p0 = await page.evaluate((k) => window.__tokmap.screenPosition(k), i);
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  for (let s = 1; s <= 8; s++) await page.mouse.move(box.x + box.width / 2 + s * 20, box.y + box.height / 2 + s * 5);
  await page.mouse.up();
  const p1 = await page.evaluate((k) => window.__tokmap.screenPosition(k), i);
  assert.ok(Math.hypot(p1.x - p0.x, p1.y - p0.y) > 2, 'the point should move on screen when rotating');
  const b = await canvasShot(page, '3d-after.png');
  assert.ok((await diffPixels(page, a, b)) > 200, 'dragging should change the 3D picture');
  // Hover still works in 3D.
  const p = await page.evaluate(() => window.__tokmap.screenPosition(2));
  await page.mouse.move(p.x, p.y);
  await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });

  // Every colour mode renders with a legend.
  for (const mode of ['text', 'model', 'position', 'kind', 'cluster', 'outlier', 'stability', 'overlap']) {
    await page.selectOption('#color-by', mode);
    assert.ok((await page.innerHTML('#legend')).length > 20, `legend for ${mode}`);
  }
  await page.selectOption('#color-by', 'cluster');
  await page.selectOption('#dims', '2');
  await page.check('#side-by-side');
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  assert.equal((await page.$$('.view canvas.gl')).length, 2);
  const right = await canvasShot(page, 'side-by-side-right.png', 1);
  assert.ok((await inkStats(page, right)).ink > 500);
  await page.selectOption('#perplexity', '15');
  await page.selectOption('#seed', '2');
  await page.screenshot({ path: path.join(artifacts, 'page-side-by-side.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('100,000 points: interactive (frame time while rotating and hovering)', { skip: !fs.existsSync(bigPath) && 'no web/dist/sample-big.json' }, async () => {
  const big = buildReport(bigPath);
  try {
    const t0 = Date.now();
    const { page, errors } = await openPage(browser, big.url);
    const loadMs = Date.now() - t0;
    assert.equal(await page.evaluate(() => window.__tokmap.N), 100000);
    await page.selectOption('#dims', '3');
    const png = await canvasShot(page, 'big-3d.png');
    assert.ok((await inkStats(page, png)).ink > 5000);
    // While rotating (level of detail: highlighted points + an even sample of 30k), then at full detail.
    const bench = await page.evaluate(() => window.__tokmap.benchmark(2000));
    const full = await page.evaluate(() => window.__tokmap.benchmark(2000, true));
    // Hover picking goes through the screen-space grid.
    const hoverMs = [];
    for (const k of [10, 20000, 55555, 99999]) {
      const p = await page.evaluate((j) => window.__tokmap.screenPosition(j), k);
      if (!p.visible) continue;
      const h0 = Date.now();
      await page.mouse.move(p.x, p.y);
      await page.waitForFunction(() => window.__tokmap.state().hover >= 0 && !document.querySelector('#tooltip').hidden, null, { timeout: 5000 });
      hoverMs.push(Date.now() - h0);
    }
    const pickMs = await page.evaluate(() => {
      const v = window.__tokmap.app.views[0];
      v.ensureGrid();
      const t = performance.now();
      for (let k = 0; k < 200; k++) v.pick((k * 37) % v.width, (k * 53) % v.height);
      return (performance.now() - t) / 200;
    });
    await page.screenshot({ path: path.join(artifacts, 'big-3d-page.png') });
    await page.selectOption('#dims', '2');
    const pan = await page.evaluate(() => window.__tokmap.benchmark(1500));
    const result = {
      points: 100000, load_ms: loadMs,
      rotate_3d_frame_ms: median(bench.intervals), rotate_3d_render_ms: median(bench.renders), rotate_3d_points_drawn: bench.lod || 100000,
      full_3d_frame_ms: median(full.intervals), full_3d_render_ms: median(full.renders),
      pan_2d_frame_ms: median(pan.intervals), pan_2d_render_ms: median(pan.renders),
      hover_ms: hoverMs, pick_ms: pickMs,
    };
    console.log(`# 100k points: load ${loadMs} ms; rotating 3D: median frame ${result.rotate_3d_frame_ms.toFixed(1)} ms ` +
      `(render ${result.rotate_3d_render_ms.toFixed(1)} ms, ${result.rotate_3d_points_drawn} points drawn while moving); ` +
      `full detail: ${result.full_3d_frame_ms.toFixed(1)} ms (render ${result.full_3d_render_ms.toFixed(1)} ms); ` +
      `panning 2D: ${result.pan_2d_frame_ms.toFixed(1)} ms; pick ${pickMs.toFixed(2)} ms; hover-to-tooltip ${hoverMs.join('/')} ms`);
    fs.writeFileSync(path.join(artifacts, 'frame-time.json'), JSON.stringify(result, null, 1) + '\n');
    assert.ok(pickMs < 5, `picking took ${pickMs} ms`);
    assert.ok(result.rotate_3d_render_ms < 400, `a frame while rotating took ${result.rotate_3d_render_ms} ms`);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    fs.rmSync(big.dir, { recursive: true, force: true });
  }
});

test('data holding "</script>" and non-ASCII text stays inside its element', async () => {
  const data = JSON.parse(fs.readFileSync(samplePath, 'utf8'));
  data.title = 'tricky </script><script>window.__pwned = 1</script> — ünïcödé';
  const tmp = path.join(artifacts, 'tricky-data.json');
  fs.writeFileSync(tmp, JSON.stringify(data));
  const r = buildReport(tmp);
  try {
    const { page, errors } = await openPage(browser, r.url);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.textContent('#title'), data.title);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    fs.rmSync(r.dir, { recursive: true, force: true });
  }
});
