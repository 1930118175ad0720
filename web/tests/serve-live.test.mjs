// The live page of `tokmap serve`, driven as a person would: type a sentence and run, add one
// and see the points move, cancel a long run, reload and find the history, place texts into
// the austen atlas, download the report. Needs TOKMAP_BINARY; skipped otherwise. Only the
// test's own server (http://127.0.0.1:PORT) may be reached.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { launch, openPage, artifacts, webDir, closeAll } from './browser.mjs';

const binary = process.env.TOKMAP_BINARY;
const skip = !binary ? 'TOKMAP_BINARY not set' : false;
const repo = path.join(webDir, '..');
let server, base, browser, page, errors;

/** Starts `tokmap serve` on a free port; resolves with its address (the first stdout line). */
function startServer() {
  // Two models of different depth (for the comparison) and the austen atlas.
  const child = spawn(binary, ['serve', '--port', '0', '--model', 'demo-brown-gpt2', '--model', 'demo-brown-gpt2-small',
    '--atlas', path.join(repo, 'samples', 'austen.tokmap-atlas'), '-q'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => { stderr += b; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b) => {
      out += b;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl).trim());
    });
    exited.then((e) => reject(new Error(`tokmap serve exited (${e.code ?? e.signal}) before printing its address: ${stderr}`)));
    // unref: a pending timer would keep the test process alive after the tests.
    setTimeout(() => reject(new Error('tokmap serve printed no address within 60 s')), 60000).unref();
  });
  return { child, exited, url, stderr: () => stderr };
}

/** GET/DELETE on the server from the test itself (no Origin header, Host 127.0.0.1:PORT). */
async function http(route, init) {
  const res = await fetch(new URL(route, base), init);
  return res;
}

const live = (fn, arg) => page.evaluate(fn, arg);
/** Waits until no job runs and a run is on screen (`id` other than `notId`). */
async function runFinished(notId = null, timeout = 120000) {
  await page.waitForFunction((not) => {
    const l = window.__tokmap && window.__tokmap.live;
    return l && !l.job && !l.animating && l.current && l.current.id !== not && window.__tokmap.app;
  }, notId, { timeout });
  return live(() => ({ id: __tokmap.live.current.id, N: __tokmap.app.data.N, texts: __tokmap.app.data.texts }));
}

before(async () => {
  if (skip) return;
  fs.mkdirSync(artifacts, { recursive: true });
  server = startServer();
  base = await server.url;
  assert.match(base, /^http:\/\/127\.0\.0\.1:\d+\/?$/);
  const origin = new URL(base).origin;
  browser = await launch({ allow: [origin + '/'] });
  ({ page, errors } = await openPage(browser, base));
});

after(async () => {
  if (skip) return;
  if (page) {
    // 4xx answers the page expects (a refused run) are logged by Chromium as resource errors.
    const real = errors.filter((e) => !/Failed to load resource/.test(e));
    assert.deepEqual(real, [], 'no page errors');
  }
  await closeAll(browser);
  if (server) {
    server.child.kill('SIGTERM');
    const { code, signal } = await server.exited;
    assert.equal(signal, null, `tokmap serve died of ${signal}: ${server.stderr()}`);
    assert.equal(code, 0, `tokmap serve exited ${code}: ${server.stderr()}`);
  }
});

/** Screen positions of every token in view 0 right now (client pixels). */
const screenAll = () => live(() => {
  const app = __tokmap.app, v = app.views[0];
  v.resize(); v.updateMatrix();
  const r = v.canvas.getBoundingClientRect();
  return Array.from({ length: app.data.N }, (_, i) => { const [x, y] = v.projectIndex(i); return [r.left + x, r.top + y]; });
});

test('live page: type a sentence, run, see the map', { skip }, async () => {
  assert.equal(await live(() => document.querySelector('#tokmap-data').textContent.trim()), 'null');
  assert.ok(await page.locator('#live-texts').isVisible());
  assert.match(await page.locator('#empty').textContent(), /No map yet/);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-live-empty.png') });
  await page.locator('#live-texts').fill('');
  // Typing goes to the text area: '/', 'l', '[' are the report's keys but must stay text here.
  await page.locator('#live-texts').pressSequentially('The river/bank was quiet [in the] morning light.');
  assert.equal(await page.locator('#live-texts').inputValue(), 'The river/bank was quiet [in the] morning light.');
  assert.equal(await live(() => document.activeElement.id), 'live-texts');
  await page.locator('#live-dims').selectOption('2');
  await page.keyboard.press('Control+Enter');
  const run = await runFinished();
  assert.ok(run.N >= 8, `tokens drawn: ${run.N}`);
  assert.deepEqual(run.texts, ['The river/bank was quiet [in the] morning light.']);
  assert.equal(await live(() => __tokmap.visibleCount(0)), run.N);
  const summary = await page.locator('#summary').textContent();
  assert.match(summary, new RegExp(`^${run.N} tokens · 1 text · 1 model`));
  assert.equal(await page.locator('#title').textContent(), await live(() => __tokmap.app.data.title));
  assert.match(await page.locator('#live-status').textContent(), /^Done/);
  assert.equal(await page.locator('#live-history li').count(), 1);
  // Points are on the canvas: many pixels differ from the paper colour.
  const inked = await live(() => {
    const v = __tokmap.app.views[0], gl = v.gl;
    __tokmap.render();
    const px = new Uint8Array(gl.drawingBufferWidth * gl.drawingBufferHeight * 4);
    gl.readPixels(0, 0, gl.drawingBufferWidth, gl.drawingBufferHeight, gl.RGBA, gl.UNSIGNED_BYTE, px);
    let n = 0;
    for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i] - 255) + Math.abs(px[i + 1] - 254) + Math.abs(px[i + 2] - 250) > 60) n++;
    return n;
  });
  assert.ok(inked > run.N * 10, `inked pixels: ${inked}`);
  // A run the page refuses itself, and one the server refuses: both shown inline.
  await page.locator('#live-perplexity').fill('lots');
  await page.locator('#live-run').click();
  assert.match(await page.locator('#live-error').textContent(), /Perplexity/);
  await page.locator('#live-perplexity').fill('auto');
  await page.locator('#live-layers').fill('99');
  await page.locator('#live-run').click();
  await page.waitForFunction(() => !document.querySelector('#live-error').hidden && !__tokmap.live.job);
  assert.ok((await page.locator('#live-error').textContent()).length > 5);
  assert.equal(await live(() => __tokmap.live.current.id), run.id, 'a refused run keeps the picture');
  await page.locator('#live-layers').fill('all');
});

test('live page: add a sentence, run again, points move to their new places', { skip }, async () => {
  const first = await live(() => __tokmap.live.current.id);
  const oldScreen = await screenAll();
  await page.locator('#live-texts').press('End');
  await page.locator('#live-texts').pressSequentially('\nShe walked along the bank of the river at dawn.');
  // Record every token's screen position on every frame of the animation (made slower than
  // the page's 0.6 s so that a loaded machine's few frames still catch it mid-way).
  await live(() => {
    __tokmap.live.animationMs = 1500;
    window.__frames = [];
    const loop = () => {
      const l = __tokmap.live;
      if (l.animating && __tokmap.app) {
        const app = __tokmap.app, v = app.views[0];
        v.resize(); v.updateMatrix();
        const r = v.canvas.getBoundingClientRect();
        window.__frames.push({ t: l.progress, match: Array.from(l.match), pos: Array.from({ length: app.data.N }, (_, i) => { const [x, y] = v.projectIndex(i); return [r.left + x, r.top + y]; }) });
      }
      if (!window.__stopFrames) requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  });
  // The re-run asks the server to start from the map on screen (init_from).
  const posted = page.waitForRequest((r) => r.url().endsWith('/api/v1/jobs') && r.method() === 'POST');
  await page.locator('#live-run').click();
  assert.equal(JSON.parse((await posted).postData()).init_from, first);
  const run = await runFinished(first);
  await live(() => { window.__stopFrames = true; __tokmap.live.animationMs = 600; });
  assert.deepEqual(run.texts.length, 2);
  const frames = await live(() => window.__frames);
  assert.ok(frames.length >= 3, `animation frames recorded: ${frames.length}`);
  const end = await screenAll();
  // Where the new data puts each token (its own map coordinates, projected).
  const expected = await live(() => {
    const app = __tokmap.app, v = app.views[0], m = v.currentMap, c = app.data.coords(m, app.seedFor(m));
    v.resize(); v.updateMatrix();
    const r = v.canvas.getBoundingClientRect();
    return Array.from({ length: app.data.N }, (_, i) => { const [x, y] = v.project([c[i * 3], c[i * 3 + 1], c[i * 3 + 2]]); return [r.left + x, r.top + y]; });
  });
  const dist = (a, b) => Math.hypot(a[0] - b[0], a[1] - b[1]);
  for (let i = 0; i < run.N; i++) assert.ok(dist(end[i], expected[i]) < 0.5, `token ${i} ends at its new position`);
  // The matched token that moved most: it starts where it was, passes in between, ends at its new place.
  const match = frames[0].match;
  let best = -1;
  for (let i = 0; i < run.N; i++) if (match[i] >= 0 && (best < 0 || dist(oldScreen[match[i]], end[i]) > dist(oldScreen[match[best]], end[best]))) best = i;
  assert.ok(best >= 0, 'tokens of the first text are matched');
  const travel = dist(oldScreen[match[best]], end[best]);
  assert.ok(travel > 4, `the most-moved token travels ${travel.toFixed(1)} px`);
  const mid = frames.find((f) => f.t > 0.15 && f.t < 0.85);
  assert.ok(mid, `a frame in mid-animation (t: ${frames.map((f) => f.t.toFixed(2)).join(' ')})`);
  const p = mid.pos[best];
  assert.ok(dist(p, oldScreen[match[best]]) > 0.5 && dist(p, end[best]) > 0.5, 'in between its old and new place');
  const startGap = dist(frames[0].pos[best], oldScreen[match[best]]);
  assert.ok(startGap < travel * (frames[0].t + 0.1) + 1, `starts near its old place: ${startGap.toFixed(1)} px off at t ${frames[0].t.toFixed(2)}, travel ${travel.toFixed(1)} px`);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-live-map.png') });
  assert.equal(await page.locator('#live-history li').count(), 2);
});

test('live page: cancel a long run', { skip }, async () => {
  const shown = await live(() => __tokmap.live.current.id);
  const saved = await page.locator('#live-texts').inputValue();
  const lines = fs.readFileSync(path.join(repo, 'samples', 'sentences.txt'), 'utf8').trim().split('\n');
  const many = [0, 1, 2, 3].flatMap((k) => lines.map((l) => (k ? `${l} (${k})` : l)));
  await page.locator('#live-texts').fill(many.join('\n'));
  await page.locator('#live-iterations').fill('2000');
  await page.locator('#live-dims').selectOption('2,3');
  await page.locator('#live-run').click();
  await page.waitForFunction(() => __tokmap.live.job && __tokmap.live.job.status === 'running', null, { timeout: 60000 });
  const id = await live(() => __tokmap.live.job.id);
  assert.ok(await page.locator('#live-cancel').isEnabled());
  await page.locator('#live-cancel').click();
  await page.waitForFunction(() => !__tokmap.live.job, null, { timeout: 30000 });
  assert.match(await page.locator('#live-status').textContent(), /cancelled/i);
  const state = await (await http(`/api/v1/jobs/${id}`)).json();
  assert.equal(state.status, 'cancelled');
  assert.equal(await live(() => __tokmap.live.current.id), shown, 'the picture stays');
  assert.equal(await page.locator('#live-history li').count(), 2, 'a cancelled run is not in the history');
  // Back to the shown run's texts and settings for the reload.
  await page.locator('#live-texts').fill(saved);
  await page.locator('#live-iterations').fill('750');
  await page.locator('#live-dims').selectOption('2');
});

test('live page: reload shows the history and the last run', { skip }, async () => {
  const last = await live(() => ({ id: __tokmap.live.current.id, N: __tokmap.app.data.N }));
  await page.reload({ waitUntil: 'load' });
  const run = await runFinished();
  assert.equal(run.id, last.id);
  assert.equal(run.N, last.N);
  assert.equal(await page.locator('#live-history li').count(), 2);
  assert.equal(await page.locator('#live-history .history-item.current').getAttribute('data-id'), last.id);
  assert.equal((await page.locator('#live-texts').inputValue()).split('\n').length, 2);
  // Going back to the first run from the history.
  await page.locator('#live-history li:last-child button').click();
  await page.waitForFunction((id) => __tokmap.live.current.id !== id && !__tokmap.live.animating, last.id);
  assert.equal(await live(() => __tokmap.app.data.texts.length), 1);
  await page.locator('#live-history li:first-child button').click();
  await page.waitForFunction((id) => __tokmap.live.current.id === id && !__tokmap.live.animating, last.id);
});

test('live page: place the texts into the atlas', { skip }, async () => {
  const before = await live(() => __tokmap.live.current.id);
  await page.locator('#live-atlas').selectOption('austen');
  assert.ok(await page.locator('#live-perplexity').isDisabled(), 'map-only settings are off with an atlas');
  await page.locator('#live-run').click();
  const run = await runFinished(before);
  const counts = await live(() => {
    const t = __tokmap.app.data.tokens;
    return { atlas: t.filter((x) => x.source === 'atlas').length, placed: t.filter((x) => x.source === 'placed').length };
  });
  assert.ok(counts.atlas >= 1000, `atlas points: ${counts.atlas}`);
  assert.ok(counts.placed >= 10, `placed points: ${counts.placed}`);
  assert.equal(counts.atlas + counts.placed, run.N);
  assert.equal(await live(() => __tokmap.visibleCount(0)), run.N);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-live.png') });
});

test('live page: the download is the current run as one report file', { skip }, async () => {
  const href = await page.locator('#live-download').getAttribute('href');
  const id = await live(() => __tokmap.live.current.id);
  assert.equal(href, `/api/v1/jobs/${id}/report.html`);
  const res = await http(href);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.match(res.headers.get('content-disposition') || '', /attachment/);
  const html = await res.text();
  const m = html.match(/<script type="application\/json" id="tokmap-data">([\s\S]*?)<\/script>/);
  assert.ok(m, 'the data slot');
  const data = JSON.parse(m[1]);
  const shown = await live(() => ({ texts: __tokmap.app.data.raw.texts, N: __tokmap.app.data.N, maps: __tokmap.app.data.raw.maps.map((x) => [x.layer, x.dims, x.coords.length]) }));
  assert.deepEqual(data.texts, shown.texts);
  assert.equal(data.tokens.length, shown.N);
  assert.deepEqual(data.maps.map((x) => [x.layer, x.dims, x.coords.length]), shown.maps);
  // A static report: the live slot holds null (or its placeholder), so the file opens as a report.
  const slot = html.match(/<script type="application\/json" id="tokmap-live">([\s\S]*?)<\/script>/);
  assert.ok(slot, 'the live slot');
  assert.ok(['null', '/*TOKMAP_LIVE*/null'].includes(slot[1].trim()), `live slot: ${slot[1].slice(0, 80)}`);
});

test('live page: compare two models, side by side', { skip }, async () => {
  const before = await live(() => __tokmap.live.current.id);
  await page.locator('#live-atlas').selectOption('');
  await page.locator('#live-compare').selectOption('demo-brown-gpt2-small');
  await page.locator('#live-run').click();
  await runFinished(before);
  assert.deepEqual(await live(() => __tokmap.app.data.models), ['demo-brown-gpt2', 'demo-brown-gpt2-small']);
  await page.locator('#side-by-side').check();
  assert.equal(await live(() => __tokmap.app.views.length), 2);
  await page.screenshot({ path: path.join(artifacts, 'tokmap-live-compare.png') });
  assert.ok(await page.locator('#color-by option[value="overlap"]').count(), 'neighbourhood overlap colouring');
  assert.ok(await page.locator('#color-by option[value="lens-agree"]').count(), 'logit lens colouring');
  await page.locator('#live-compare').selectOption('');
});

test('live page: a run the server has forgotten is run again on reload', { skip }, async () => {
  // As after a server restart (or 32 newer jobs): the history's id answers 404.
  const first = await live(() => {
    const h = JSON.parse(localStorage.getItem('tokmap.live.history'));
    const run = { ...h[h.length - 1], id: '0000000000000000', time: Date.now() };
    localStorage.setItem('tokmap.live.history', JSON.stringify([run, ...h]));
    return run;
  });
  assert.equal((await http(`/api/v1/jobs/${first.id}/result`)).status, 404);
  await page.reload({ waitUntil: 'load' });
  const run = await runFinished(first.id);
  assert.deepEqual(run.texts, first.request.texts);
  const ids = await live(() => __tokmap.live.runs.map((r) => r.id));
  assert.ok(!ids.includes(first.id), 'the forgotten id is replaced by the new run');
  assert.equal(ids[0], run.id);
});
