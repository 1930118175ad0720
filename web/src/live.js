// Live mode: the page served by `tokmap serve` (docs/SERVE.md). The server fills
// <script id="tokmap-live"> with {"api": "/api/v1", "health": {...}}; the page then gets its
// maps from the API instead of from the file: texts and run settings above the map, progress
// streamed from the job's server-sent events, cancel, a download of the current report and a
// history of runs (localStorage) to go back to. Each run's data replaces the drawn data in
// place (main.js swapData) and the points move from their old places to the new ones.

import { matchTokens, alignMaps, animateViews } from './live-anim.js';
import { loadHistory, rememberRun, clearHistory, loadForm, saveForm } from './live-store.js';

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
export const ANIMATION_MS = 600;

const EXAMPLE = 'The bank of the river was muddy after the rain.\nShe went to the bank to deposit her savings.';

/** The live slot's object, or null in a static report (the literal placeholder, or null). */
export function readLive() {
  const el = document.getElementById('tokmap-live');
  if (!el) return null;
  try {
    const v = JSON.parse(el.textContent);
    return v && typeof v === 'object' && typeof v.api === 'string' ? v : null;
  } catch { return null; }
}

/** A fetch of the API that answers parsed JSON or throws the server's {"error"} line. */
async function api(url, init = {}) {
  const res = await fetch(url, {
    ...init,
    headers: init.body ? { 'Content-Type': 'application/json' } : {},
    credentials: 'same-origin',
    cache: 'no-store',
  });
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const err = new Error((body && body.error) || `the server answered ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

// ---------------------------------------------------------------- the form
function option(value, text) {
  const o = document.createElement('option');
  o.value = value; o.textContent = text;
  return o;
}

function buildPanel(health) {
  const models = health.models || [], atlases = health.atlases || [], limits = health.limits || {};
  const panel = document.createElement('section');
  panel.className = 'live';
  panel.id = 'live';
  panel.setAttribute('aria-label', 'Texts and run settings');
  panel.innerHTML = `
    <div class="live-texts">
      <label for="live-texts">Texts <span class="hint">one per line · Ctrl+Enter runs</span></label>
      <textarea id="live-texts" rows="4" spellcheck="false" placeholder="Type a sentence; each line is one text."></textarea>
      <div class="hint" id="live-count" aria-live="polite"></div>
    </div>
    <div class="live-settings" id="live-settings">
      <div class="ctl"><label for="live-atlas">Atlas</label><select id="live-atlas"></select></div>
      <div class="ctl map-only"><label for="live-model">Model</label><select id="live-model"></select></div>
      <div class="ctl map-only"><label for="live-compare">Compare with</label><select id="live-compare"></select></div>
      <div class="ctl map-only"><label for="live-layers">Layers</label><input id="live-layers" value="all" size="7" title="all, last, or layer numbers: 0, 3, -1"></div>
      <div class="ctl map-only"><label for="live-dims">Maps</label><select id="live-dims">
        <option value="2,3">2D + 3D</option><option value="2">2D</option><option value="3">3D</option></select></div>
      <div class="ctl map-only"><label for="live-perplexity">Perplexity</label><input id="live-perplexity" value="auto" size="7" title="auto, a number, or up to 5 numbers: 5, 30"></div>
      <div class="ctl map-only"><label for="live-iterations">Iterations</label><input id="live-iterations" type="number" min="1" max="${+limits.max_iterations || 2000}" value="750"></div>
      <div class="ctl map-only"><label for="live-seed">Seed</label><input id="live-seed" type="number" min="0" value="0"></div>
      <div class="ctl map-only"><label for="live-seeds">Seeds</label><input id="live-seeds" type="number" min="1" max="10" value="1" title="maps per layer with different seeds (stability)"></div>
      <div class="ctl map-only"><label for="live-highlight">Highlight</label><input id="live-highlight" size="10" placeholder="bank, river"></div>
      <div class="ctl map-only"><label for="live-lens">Logit lens</label><label class="check"><input type="checkbox" id="live-lens" checked> predictions</label></div>
    </div>
    <div class="live-actions">
      <div class="live-buttons">
        <button type="button" id="live-run" class="primary">Run</button>
        <button type="button" id="live-cancel" disabled>Cancel</button>
        <a id="live-download" class="button" download aria-disabled="true">Download report</a>
      </div>
      <div class="live-progress"><progress id="live-progress" max="1" value="0" aria-label="Progress of the run"></progress>
        <span id="live-status" role="status" aria-live="polite">Ready.</span></div>
      <p class="live-error" id="live-error" role="alert" hidden></p>
    </div>`;
  $('#live-atlas', panel).append(option('', 'none (new maps)'), ...atlases.map((a) => option(a.name, `${a.name} (${a.tokens} tokens)`)));
  $('#live-model', panel).append(...models.map((m) => option(m.name, m.name)));
  $('#live-compare', panel).append(option('', 'none'), ...models.map((m) => option(m.name, m.name)));
  return panel;
}

function buildHistoryPanel() {
  const sec = document.createElement('section');
  sec.className = 'panel live-runs';
  sec.innerHTML = `<h2>Runs</h2><ol class="live-history" id="live-history"></ol>
    <p class="note" id="live-history-empty">Finished runs appear here; click one to go back to it.</p>
    <button type="button" class="link" id="live-history-clear" hidden>forget the runs</button>`;
  return sec;
}

const numberList = (s) => s.split(/[\s,]+/).filter(Boolean).map(Number);

/** The form as a request body for POST /jobs, or throws a line saying what is wrong. */
function requestFrom(form) {
  const texts = form.texts.split('\n').map((t) => t.trim()).filter(Boolean);
  if (!texts.length) throw new Error('Type at least one text (one per line).');
  if (form.atlas) return { kind: 'atlas', atlas: form.atlas, texts };
  const body = { kind: 'map', texts };
  if (form.compare && form.compare !== form.model) body.models = [form.model, form.compare];
  else body.model = form.model;
  const layers = form.layers.trim().toLowerCase();
  if (layers === 'all' || layers === 'last' || layers === '') body.layers = layers || 'all';
  else {
    body.layers = numberList(layers);
    if (!body.layers.length || !body.layers.every(Number.isInteger)) throw new Error('Layers: "all", "last" or layer numbers such as 0, 3, -1.');
  }
  body.dims = form.dims.split(',').map(Number);
  const p = form.perplexity.trim().toLowerCase();
  if (p === '' || p === 'auto') body.perplexity = null;
  else {
    const ps = numberList(p);
    if (!ps.length || !ps.every((x) => Number.isFinite(x) && x > 0)) throw new Error('Perplexity: "auto", a number or a few numbers such as 5, 30.');
    body.perplexity = ps.length === 1 ? ps[0] : ps;
  }
  for (const [k, name] of [['iterations', 'Iterations'], ['seed', 'Seed'], ['seeds', 'Seeds']]) {
    const v = Number(form[k]);
    if (!Number.isInteger(v) || v < (k === 'seed' ? 0 : 1)) throw new Error(`${name}: a whole number${k === 'seed' ? ' ≥ 0' : ' ≥ 1'}.`);
    body[k] = v;
  }
  const hl = form.highlight.split(/[\s,]+/).filter(Boolean);
  if (hl.length) body.highlight = hl;
  body.logit_lens = !!form.lens;
  return body;
}

/** The form that would send `body` (to show a run from the history). */
function formFrom(body, current) {
  const f = { ...current, texts: (body.texts || []).join('\n'), atlas: body.kind === 'atlas' ? body.atlas : '' };
  if (body.kind !== 'atlas') {
    f.model = body.models ? body.models[0] : body.model;
    f.compare = body.models ? body.models[1] : '';
    f.layers = Array.isArray(body.layers) ? body.layers.join(', ') : body.layers || 'all';
    f.dims = (body.dims || [2, 3]).join(',');
    f.perplexity = body.perplexity === null || body.perplexity === undefined ? 'auto' : [].concat(body.perplexity).join(', ');
    f.iterations = String(body.iterations ?? 750);
    f.seed = String(body.seed ?? 0);
    f.seeds = String(body.seeds ?? 1);
    f.highlight = (body.highlight || []).join(', ');
    f.lens = body.logit_lens !== false;
  }
  return f;
}

const FIELDS = ['texts', 'atlas', 'model', 'compare', 'layers', 'dims', 'perplexity', 'iterations', 'seed', 'seeds', 'highlight', 'lens'];
const fieldEl = (k) => $(`#live-${k}`);

function readForm() {
  const f = {};
  for (const k of FIELDS) { const el = fieldEl(k); f[k] = el.type === 'checkbox' ? el.checked : el.value; }
  return f;
}

function writeForm(f) {
  for (const k of FIELDS) {
    const el = fieldEl(k);
    if (f[k] === undefined || f[k] === null) continue;
    if (el.type === 'checkbox') el.checked = !!f[k];
    else if (el.tagName === 'SELECT') { if ([...el.options].some((o) => o.value === String(f[k]))) el.value = String(f[k]); }
    else el.value = String(f[k]);
  }
  syncForm();
}

/** Settings an atlas run does not take are disabled; the text count follows the text area. */
function syncForm() {
  const atlas = !!fieldEl('atlas').value;
  for (const el of document.querySelectorAll('#live-settings .map-only')) {
    el.classList.toggle('off', atlas);
    for (const input of el.querySelectorAll('input, select')) input.disabled = atlas;
  }
  const n = fieldEl('texts').value.split('\n').filter((t) => t.trim()).length;
  $('#live-count').textContent = n === 1 ? '1 text' : `${n} texts`;
}

// ---------------------------------------------------------------- the controller
class Live {
  constructor(live, page) {
    this.base = live.api.replace(/\/$/, '');
    this.health = live.health || {};
    this.page = page;
    this.job = null;        // the job running now (its state)
    this.current = null;    // the run on screen: { id, request, title, ... }
    this.animationMs = ANIMATION_MS;
    this.animating = false;
    this.progress = 0;      // the animation's eased progress, for tests
    this.runs = loadHistory();
  }

  start() {
    const head = $('.page-head');
    head.after(buildPanel(this.health));
    $('.side').prepend(buildHistoryPanel());
    $('#title').textContent = 'tokmap live';
    $('#summary').textContent = `tokmap serve · ${(this.health.models || []).map((m) => m.name).join(', ')}` +
      ((this.health.atlases || []).length ? ` · atlas ${this.health.atlases.map((a) => a.name).join(', ')}` : '');
    const saved = loadForm();
    writeForm(saved || { texts: EXAMPLE });
    const area = fieldEl('texts');
    $('#live').addEventListener('input', () => { syncForm(); saveForm(readForm()); });
    $('#live').addEventListener('change', () => { syncForm(); saveForm(readForm()); });
    // Ctrl+Enter (Cmd+Enter) runs from anywhere in the panel; plain keys stay in the fields,
    // the report's own shortcuts ignore text fields (main.js onGlobalKey).
    $('#live').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.run(); }
    });
    $('#live-run').addEventListener('click', () => this.run());
    $('#live-cancel').addEventListener('click', () => this.cancel());
    $('#live-history').addEventListener('click', (e) => {
      const b = e.target.closest && e.target.closest('button[data-id]');
      if (b) this.open(this.runs.find((r) => r.id === b.dataset.id));
    });
    $('#live-history-clear').addEventListener('click', () => { clearHistory(); this.runs = []; this.renderHistory(); });
    this.renderHistory();
    this.setDownload(null);
    this.hook();
    if (this.runs.length) this.open(this.runs[0], { restoring: true });
    else this.showIntro();
    area.focus({ preventScroll: true });
  }

  /** window.__tokmap in live mode before any data, and .live on it afterwards. */
  hook() {
    if (!window.__tokmap || !window.__tokmap.app) window.__tokmap = { ready: true, empty: true };
    window.__tokmap.live = this;
    document.documentElement.dataset.ready = 'true';
  }

  showIntro() {
    // Nothing to draw yet: no map controls, and the note where the map will be.
    $('#views').hidden = true;
    $('#controls').hidden = true;
    const box = $('#empty');
    box.hidden = false;
    box.innerHTML = `<h2>No map yet</h2><p>Type one or more texts above (one per line) and press <b>Run</b> or Ctrl+Enter.
      With an atlas chosen, the texts’ tokens are placed into the atlas’s fixed map; without one, new maps are computed.</p>`;
  }

  setStatus(text, fraction = null) {
    $('#live-status').textContent = text;
    const bar = $('#live-progress');
    if (fraction === null) bar.removeAttribute('value'); else bar.value = Math.max(0, Math.min(1, fraction));
  }

  showError(message) {
    const el = $('#live-error');
    el.hidden = !message;
    el.textContent = message || '';
  }

  setBusy(busy) {
    $('#live-run').disabled = busy;
    $('#live-cancel').disabled = !busy;
    $('#live').classList.toggle('busy', busy);
  }

  setDownload(run) {
    const a = $('#live-download');
    if (run) {
      a.href = `${this.base}/jobs/${encodeURIComponent(run.id)}/report.html`;
      a.setAttribute('download', 'tokmap-report.html');
      a.removeAttribute('aria-disabled');
      a.title = 'The report of the run on screen, as one self-contained HTML file';
    } else {
      a.removeAttribute('href');
      a.setAttribute('aria-disabled', 'true');
      a.title = 'Run first';
    }
  }

  /** Runs the form (or `request`), follows its progress and draws the result. */
  async run(request = null, { replaces = null } = {}) {
    if (this.job) return;
    this.showError('');
    let body;
    try { body = request || requestFrom(readForm()); } catch (err) { this.showError(err.message); return; }
    // A re-run of the map on screen (an edit, a new text) starts from its layout, so the
    // picture stays recognisable (init_from, docs/SERVE.md); history re-runs keep what they had.
    const cur = this.current;
    if (!request && body.kind === 'map' && cur && cur.request.kind === 'map' &&
        JSON.stringify(cur.request.models || [cur.request.model]) === JSON.stringify(body.models || [body.model])) {
      body.init_from = cur.id;
    }
    this.setBusy(true);
    this.setStatus('Sending…', null);
    try {
      let job;
      try {
        job = await api(`${this.base}/jobs`, { method: 'POST', body: JSON.stringify(body) });
      } catch (err) {
        // The earlier job is no longer kept (404): start afresh.
        if (!body.init_from || err.status !== 404) throw err;
        delete body.init_from;
        job = await api(`${this.base}/jobs`, { method: 'POST', body: JSON.stringify(body) });
      }
      this.job = job;
      this.setStatus('Queued…', null);
      const final = await this.follow(job);
      if (final.status === 'done') {
        this.setStatus('Loading the result…', 1);
        const data = await api(`${this.base}/jobs/${encodeURIComponent(job.id)}/result`);
        const run = { id: job.id, request: body, title: data.title || body.texts[0], time: Date.now(), tokens: (data.tokens || []).length, texts: body.texts.length, seconds: final.seconds };
        this.runs = rememberRun(run, replaces);
        await this.show(data, run);
        this.setStatus(`Done: ${run.tokens.toLocaleString('en')} tokens in ${(+final.seconds || 0).toFixed(1)} s.`, 1);
      } else if (final.status === 'cancelled') {
        this.setStatus('Cancelled.', 0);
      } else {
        this.setStatus('Failed.', 0);
        this.showError(final.error || 'The run failed.');
      }
    } catch (err) {
      this.setStatus('Failed.', 0);
      this.showError(err.message);
    } finally {
      this.job = null;
      this.setBusy(false);
    }
  }

  /** Follows a job's server-sent events until it ends; polls if the stream breaks. */
  follow(job) {
    return new Promise((resolve) => {
      let over = false;
      const finish = (state) => { if (over) return; over = true; es.close(); resolve(state); };
      const es = new EventSource(job.events || `${this.base}/jobs/${encodeURIComponent(job.id)}/events`);
      const parse = (e) => { try { return JSON.parse(e.data); } catch { return null; } };
      es.addEventListener('progress', (e) => { const s = parse(e); if (s) this.showProgress(s); });
      for (const ev of ['done', 'failed', 'cancelled']) {
        es.addEventListener(ev, (e) => finish({ ...(parse(e) || {}), status: ev === 'done' ? 'done' : ev }));
      }
      es.onerror = () => {
        if (over || es.readyState !== EventSource.CLOSED) return;
        // The stream is gone for good: ask for the state until the job ends.
        const poll = async () => {
          if (over) return;
          try {
            const s = await api(`${this.base}/jobs/${encodeURIComponent(job.id)}`);
            this.showProgress(s);
            if (['done', 'failed', 'cancelled'].includes(s.status)) { finish(s); return; }
          } catch (err) { finish({ status: 'failed', error: err.message }); return; }
          setTimeout(poll, 500);
        };
        poll();
      };
    });
  }

  showProgress(s) {
    this.job = { ...this.job, ...s };
    if (s.status === 'queued') { this.setStatus('Queued…', null); return; }
    const total = +s.total || 0, done = +s.done || 0;
    const stage = s.stage || 'working';
    // A finished stage while the job still runs (the forward pass after "tokenize" reports no
    // count of its own): the bar goes indeterminate rather than sitting full.
    this.setStatus(total ? `${stage} ${done.toLocaleString('en')} / ${total.toLocaleString('en')}` : `${stage}…`, total && done < total ? done / total : null);
  }

  async cancel() {
    const job = this.job;
    if (!job) return;
    this.setStatus('Cancelling…', null);
    try { await api(`${this.base}/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' }); } catch (err) { this.showError(err.message); }
  }

  /** Goes back to a run of the history: its result if the server still has it, else runs it again. */
  async open(run, { restoring = false } = {}) {
    if (!run || this.job) return;
    this.showError('');
    writeForm(formFrom(run.request, readForm()));
    saveForm(readForm());
    this.setStatus(restoring ? 'Restoring the last run…' : 'Loading…', null);
    let data = null;
    try {
      data = await api(`${this.base}/jobs/${encodeURIComponent(run.id)}/result`);
    } catch (err) {
      if (err.status !== 404) { this.setStatus('Failed.', 0); this.showError(err.message); return; }
    }
    if (!data) {
      // The server has forgotten the job (restarted, or 32 newer jobs): runs are deterministic,
      // so the same request draws the same picture.
      await this.run(run.request, { replaces: run.id });
      return;
    }
    await this.show(data, run);
    this.setStatus(`Showing the run of ${new Date(run.time).toLocaleTimeString()}.`, 1);
  }

  /** Draws `data` in place of the current picture and animates the points there. */
  async show(data, run) {
    let swapped;
    // Shown before drawing: the views are sized from their boxes.
    $('#views').hidden = false;
    $('#controls').hidden = false;
    try {
      swapped = this.page.swapData(data, (next, prev) => {
        this.match = matchTokens(prev, next, this.page.tokenKey);
        if (prev && run.request.kind !== 'atlas') alignMaps(prev, next, this.match);
      });
    } catch (err) {
      this.showError(`This run could not be drawn: ${err.message}`);
      if (!this.current) this.showIntro();
      return;
    }
    this.current = run;
    this.setDownload(run);
    this.renderHistory();
    this.hook();
    if (swapped.prev) {
      this.animating = true;
      this.progress = 0;
      try {
        await animateViews(swapped.app, swapped.before, this.match, this.animationMs, (t) => { this.progress = t; });
      } finally {
        this.animating = false;
        this.progress = 1;
      }
    }
  }

  renderHistory() {
    const list = $('#live-history');
    list.innerHTML = this.runs.map((r) => {
      const when = new Date(r.time);
      const what = [r.request.kind === 'atlas' ? `atlas ${r.request.atlas}` : '', `${r.texts} text${r.texts === 1 ? '' : 's'}`, `${r.tokens} tokens`].filter(Boolean).join(' · ');
      const cur = this.current && this.current.id === r.id;
      return `<li><button type="button" class="history-item${cur ? ' current' : ''}" data-id="${esc(r.id)}"${cur ? ' aria-current="true"' : ''}>
        <span class="h-title">${esc(r.title)}</span><span class="where">${esc(when.toLocaleTimeString())} · ${esc(what)}</span></button></li>`;
    }).join('');
    $('#live-history-empty').hidden = this.runs.length > 0;
    $('#live-history-clear').hidden = this.runs.length === 0;
  }
}

/** Starts live mode; `page` gives main.js's swapData, showEmpty and tokenKey. */
export function startLive(live, page) {
  const l = new Live(live, page);
  l.start();
  return l;
}
