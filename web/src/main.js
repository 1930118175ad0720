// tokmap report page: reads the JSON object of docs/REPORT_FORMAT.md from
// <script id="tokmap-data"> and draws it. All state lives in App.

import { ReportData, showToken } from './data.js';
import { View } from './view.js';
import { OKABE_ITO, OTHER, hexToRgb, viridis, cividis, rampCss } from './palette.js';
import { readLive, startLive } from './live.js';

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const fmt = (v, d = 3) => (v === null || v === undefined || !Number.isFinite(+v) ? '—' : (+v).toFixed(d));

const COLOR_MODES = [
  ['text', 'text'], ['model', 'model'], ['position', 'position in text'], ['kind', 'token kind'],
  ['cluster', 'cluster'], ['outlier', 'outlier score'], ['stability', 'stability (seeds)'],
  ['overlap', 'neighbourhood overlap'], ['change', 'change from previous layer'],
  ['lens-agree', 'agrees with final top-1'], ['lens-entropy', 'prediction entropy'],
];
// Colourings whose legend entries are categories (a click hides or shows that category).
const CATEGORICAL = new Set(['text', 'model', 'kind', 'cluster', 'lens-agree']);
// The logit lens's agreement categories: index into OKABE_ITO, label.
const LENS_AGREE = [[2, 'agrees with the final layer’s top-1'], [3, 'differs from it']];
const KIND_LABELS = { word: 'word start', continuation: 'continuation', punctuation: 'punctuation', number: 'number', special: 'special' };

/** Why a model has no logit lens in this report. */
function lensMissing(d) {
  if (d.tokens && d.tokens.some((t) => t.source === 'placed')) return 'reports of texts placed into an atlas (viz --atlas) have none';
  if (d.settings && d.settings.logit_lens === false) return 'the report was made with --no-logit-lens';
  if (d.settings && d.settings.logit_lens === true) return 'it has no causal LM head (an encoder such as BERT)';
  return 'this report has no logit lens (made by an older tokmap)';
}

class App {
  constructor(data) {
    this.data = data;
    const N = data.N;
    // The slider runs over the layers of the primary model (the one shown, or the first of
    // side-by-side views); other models show the layer the comparison data pair with it.
    this.layers = data.modelLayers[0] && data.modelLayers[0].length ? data.modelLayers[0] : data.layers;
    this.state = {
      model: 0,
      sideBySide: false,
      layerIdx: this.layers.length - 1,
      layerPos: this.layers.length - 1,
      perplexity: data.perplexities[Math.floor((data.perplexities.length - 1) / 2)],
      dims: data.dims.includes(2) ? 2 : data.dims[0],
      seed: 0,
      colorBy: data.texts.length > 1 && data.texts.length <= 8 ? 'text' : data.analysisIndex.size ? 'cluster' : 'kind',
      labels: N <= 3000,
      trajectories: false,
      selected: -1,
      projection: 'tsne',  // 'tsne' | 'pca': which coordinates the views show
    };
    // What this data opens with, so a live run can tell the user's choices from defaults.
    this.defaults = { colorBy: this.state.colorBy, labels: this.state.labels };
    // Never open on a degenerate map when the report has a usable one (docs/REPORT_FORMAT.md).
    const open = data.openingView(0, this.layers, this.state.layerIdx, this.state.perplexity, this.state.dims);
    this.openedAway = null;
    if (open.moved) {
      this.openedAway = { layer: this.layers[this.state.layerIdx], perplexity: this.state.perplexity, dims: this.state.dims };
      Object.assign(this.state, { layerIdx: open.layerIdx, layerPos: open.layerIdx, perplexity: open.perplexity, dims: open.dims });
    }
    this.cameras = { 2: { cx: 0, cy: 0, zoom: 1 }, 3: { yaw: 0.65, pitch: 0.3, dist: 5.2, target: [0, 0, 0] } };
    this.viewVersion = 0;
    this.hover = -1;
    this.searchMask = null;
    this.selMask = null;
    this.hlMask = new Uint8Array(N);
    this.hlActive = false;
    this.hlVersion = 0;
    this.views = [];
    this.renderQueued = false;
    this.frameTimes = [];
    this.staticOrder = labelOrder(data);
    this.layerCache = new Map();
    this.interacting = false;
    // Legend filters: per categorical colouring, the category keys whose tokens are hidden.
    this.filters = {};
  }

  /** A fixed random permutation of the points (for the level-of-detail sample). */
  lodOrder() {
    if (!this._lodOrder) {
      const n = this.data.N, o = new Uint32Array(n);
      for (let i = 0; i < n; i++) o[i] = i;
      let s = 12345;
      for (let i = n - 1; i > 0; i--) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        const j = s % (i + 1);
        const t = o[i]; o[i] = o[j]; o[j] = t;
      }
      this._lodOrder = o;
    }
    return this._lodOrder;
  }

  /** Marks the view as moving; the full-detail frame follows once it has been still a moment. */
  touch() {
    this.interacting = true;
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => { this.interacting = false; this.requestRender(); }, 160);
  }

  camera() {
    return this.cameras[this.state.dims];
  }

  /**
   * Builds the page. `prev` (live mode) is the App this one replaces: its view settings are
   * carried over where the new data has them (see carryOver), and its camera is kept.
   */
  start(prev = null) {
    const carried = prev ? this.carryOver(prev) : null;
    this.buildChrome();
    this.buildViews();
    const hl = this.data.settings.highlight;
    if (carried && carried.search) {
      $('#search').value = carried.search;
      this.applySearch(carried.search);
    } else if (Array.isArray(hl) && hl.length) {
      const pattern = `^\\s?(${hl.map((w) => String(w).trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`;
      $('#search').value = pattern;
      this.applySearch(pattern);
      // The tokens tokmap matched, including the sub-token runs of a word the tokenizer splits.
      const extra = this.data.settings.highlight_tokens;
      if (Array.isArray(extra) && extra.length && this.searchMask) {
        for (const i of extra) if (i >= 0 && i < this.data.N && !this.searchMask[i]) { this.searchMask[i] = 1; this.searchCount++; }
        $('#search-status').textContent = this.searchCount === 1 ? '1 match' : `${this.searchCount.toLocaleString('en')} matches`;
        this.updateHighlight();
      }
    }
    if (carried && carried.selected >= 0) this.select(carried.selected);
    this.refreshAll(!carried || !carried.camera);
    activeApp = this;
    listenOnce();
  }

  /**
   * Takes over what still applies from the App this one replaces (live mode, a new run):
   * dims, layer, perplexity, projection, model, seed, colouring, toggles, search, the selected
   * token (matched by text and byte offset) and the camera. Returns what start() must reapply.
   */
  carryOver(prev) {
    const d = this.data, s = this.state, p = prev.state;
    prev.dispose();
    if (d.dims.includes(p.dims)) s.dims = p.dims;
    if (d.perplexities.includes(p.perplexity)) s.perplexity = p.perplexity;
    if (p.projection === 'pca' && d.pcaIndex.size) s.projection = 'pca';
    if (p.model < d.models.length && d.models[p.model] === prev.data.models[p.model]) s.model = p.model;
    s.sideBySide = p.sideBySide && d.models.length > 1;
    if (p.seed < d.maxSeeds) s.seed = p.seed;
    // Colouring and labels follow the data (text colouring for a few texts, no labels on
    // thousands of points) unless the user picked them.
    const chose = (k) => p[k] !== prev.defaults[k];
    if (chose('labels')) s.labels = p.labels;
    s.trajectories = p.trajectories;
    this.layers = d.modelLayers[this.primaryModel()] && d.modelLayers[this.primaryModel()].length ? d.modelLayers[this.primaryModel()] : d.layers;
    const layer = prev.currentLayer(), at = this.layers.indexOf(layer);
    if (at >= 0) { s.layerIdx = s.layerPos = at; }
    if (chose('colorBy') && this.colorModes().some(([m]) => m === p.colorBy)) s.colorBy = p.colorBy;
    const sameDims = s.dims === p.dims;
    if (sameDims) this.cameras = prev.cameras;
    let selected = -1;
    if (p.selected >= 0) {
      const key = tokenKey(prev.data, p.selected);
      for (let i = 0; i < d.N && selected < 0; i++) if (tokenKey(d, i) === key) selected = i;
    }
    const search = ($('#search') && $('#search').value) || '';
    return { camera: sameDims, selected, search };
  }

  /** Stops this App's timers and frees its WebGL contexts (browsers allow only a few). */
  dispose() {
    this.playing = false;
    clearTimeout(this.settleTimer);
    for (const v of this.views) {
      v.gl.getExtension('WEBGL_lose_context')?.loseContext();
      v.el.remove();
    }
    this.views = [];
    this.disposed = true;
  }

  // ---------------------------------------------------------------- chrome (controls, panels)
  buildChrome() {
    const d = this.data, s = this.state;
    document.title = d.title;
    $('#title').textContent = d.title;
    $('#created').textContent = d.createdWith;
    $('#summary').textContent = [
      d.settings.points === 'spans' ? `${d.N.toLocaleString('en')} spans aligned across tokenizers` : `${d.N.toLocaleString('en')} tokens`, `${d.texts.length} text${d.texts.length === 1 ? '' : 's'}`,
      `${d.models.length} model${d.models.length === 1 ? '' : 's'}`,
      `layer${d.layers.length === 1 ? '' : 's'} ${d.layers.length > 1 ? `${d.layers[0]}–${d.layers[d.layers.length - 1]}` : d.layers[0]}`,
      d.settings.metric ? `${d.settings.metric} distance` : '',
    ].filter(Boolean).join(' · ');

    const bar = $('#controls');
    bar.innerHTML = '';
    const group = (label, control, id) => {
      const g = document.createElement('div');
      g.className = 'ctl';
      const l = document.createElement('label');
      l.textContent = label;
      l.htmlFor = id;
      g.append(l, control);
      bar.append(g);
      return g;
    };
    const select = (id, options, value, onChange) => {
      const el = document.createElement('select');
      el.id = id;
      for (const [v, t] of options) {
        const o = document.createElement('option');
        o.value = String(v); o.textContent = t;
        el.append(o);
      }
      el.value = String(value);
      el.addEventListener('change', () => onChange(el.value));
      return el;
    };

    // Layer slider + play
    const layerBox = document.createElement('div');
    layerBox.className = 'layer-box';
    const slider = document.createElement('input');
    Object.assign(slider, { type: 'range', id: 'layer', min: 0, max: this.layers.length - 1, step: 1, value: s.layerIdx });
    slider.disabled = this.layers.length < 2;
    slider.setAttribute('aria-valuetext', `layer ${this.layers[s.layerIdx]}`);
    slider.addEventListener('input', () => this.goToLayer(+slider.value));
    const out = document.createElement('output');
    out.id = 'layer-value';
    out.htmlFor = 'layer';
    const play = document.createElement('button');
    play.id = 'play';
    play.type = 'button';
    play.textContent = '▶';
    play.title = 'Play through the layers';
    play.setAttribute('aria-label', 'Play through the layers');
    play.disabled = this.layers.length < 2;
    play.addEventListener('click', () => this.togglePlay());
    layerBox.append(slider, out, play);
    group('Layer', layerBox, 'layer').classList.add('ctl-layer');

    if (d.perplexities.length > 1) {
      group('Perplexity', select('perplexity', d.perplexities.map((p) => [p, String(p)]), s.perplexity, (v) => { s.perplexity = +v; this.refreshAll(); }), 'perplexity');
    }
    if (d.dims.length > 1) {
      group('View', select('dims', d.dims.map((k) => [k, `${k}D`]), s.dims, (v) => { s.dims = +v; this.hideTooltip(); this.refreshAll(); }), 'dims');
    }
    if (d.pcaIndex.size) {
      group('Projection', select('projection', [['tsne', 't-SNE'], ['pca', 'PCA']], s.projection, (v) => { s.projection = v; this.hideTooltip(); this.refreshAll(); }), 'projection');
    }
    if (d.models.length > 1) {
      const g = group('Model', select('model', d.models.map((m, i) => [i, m]), s.model, (v) => this.changeModels(() => { s.model = +v; })), 'model');
      const sb = checkbox('side-by-side', 'side by side', s.sideBySide, (on) => this.changeModels(() => { s.sideBySide = on; $('#model').disabled = on; }));
      g.append(sb);
    }
    if (d.maxSeeds > 1) {
      group('Seed', select('seed', d.seedLabels.map((v, k) => [k, `seed ${v}${k === 0 ? ' (main)' : ''}`]), 0, (v) => { s.seed = +v; this.refreshAll(false); }), 'seed');
    }
    group('Colour by', select('color-by', this.colorModes(), s.colorBy, (v) => { s.colorBy = v; this.refreshColors(); this.requestRender(); }), 'color-by');

    const searchBox = document.createElement('div');
    searchBox.className = 'search-box';
    const search = document.createElement('input');
    Object.assign(search, { type: 'search', id: 'search', placeholder: 'regex, e.g. ^ ?bank$', spellcheck: false, autocomplete: 'off' });
    search.setAttribute('aria-describedby', 'search-status');
    let timer = 0;
    search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => this.applySearch(search.value), 120); });
    search.addEventListener('keydown', (e) => { if (e.key === 'Escape') { search.value = ''; this.applySearch(''); } });
    const status = document.createElement('span');
    status.id = 'search-status';
    status.className = 'search-status';
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');
    searchBox.append(search, status);
    group('Search', searchBox, 'search').classList.add('ctl-search');

    const toggles = document.createElement('div');
    toggles.className = 'toggles';
    toggles.append(
      checkbox('labels', 'labels', s.labels, (on) => { s.labels = on; this.requestRender(); }),
      checkbox('trajectories', 'trajectories', s.trajectories, (on) => { s.trajectories = on; this.requestRender(); }),
    );
    group('Show', toggles, 'labels');
  }

  /** The colourings this data can show. */
  colorModes() {
    const d = this.data;
    return COLOR_MODES.filter(([m]) => (m === 'change' ? d.changeIndex.size > 0 : m.startsWith('lens-') ? d.lensModels.size > 0
      : (m !== 'model' && m !== 'overlap') || (d.models.length > 1 && (m === 'model' || d.pairs.length > 0))));
  }

  buildViews() {
    const host = $('#views');
    for (const v of this.views) v.el.remove();
    this.views = [];
    const d = this.data, s = this.state;
    const models = s.sideBySide ? d.models.map((_, i) => i).slice(0, 4) : [s.model];
    host.dataset.count = String(models.length);
    models.forEach((m, k) => {
      const v = new View(this, host, k);
      v.model = m;
      const reset = document.createElement('button');
      reset.type = 'button';
      reset.className = 'reset-view';
      reset.textContent = 'reset view';
      reset.title = 'Frame all points again (0 or double-click)';
      reset.addEventListener('click', () => this.resetCamera());
      // A warning over the picture itself when its map is poor or degenerate.
      v.banner = document.createElement('div');
      v.banner.className = 'map-warning';
      v.banner.hidden = true;
      v.banner.setAttribute('role', 'alert');
      v.el.append(reset, v.banner);
      this.attachInput(v);
      this.views.push(v);
    });
    this.viewVersion++;
  }

  refreshAll(refit = true) {
    this.updatePositions();
    if (refit) this.resetCamera();
    this.refreshColors();
    this.updateLayerLabel();
    this.updateTrust();
    this.updateSelectionPanel();
    this.requestRender();
  }

  // ---------------------------------------------------------------- positions and layers
  /** The model whose layers the slider runs over. */
  primaryModel() {
    return this.state.sideBySide ? 0 : this.state.model;
  }

  /** The primary model's layer at the (rounded) slider position. */
  currentLayer() {
    return this.layers[Math.min(this.layers.length - 1, Math.max(0, this.roundedLayerIdx()))];
  }

  /** The layer model `model` shows while the primary model shows `layer`, and the pair behind it. */
  viewLayer(model, layer) {
    const paired = this.data.pairedLayer(this.primaryModel(), layer, model);
    return paired || { layer, pair: null, unpaired: true };
  }

  mapFor(view, layerIdx) {
    const s = this.state;
    const L = this.layers.length;
    const layer = this.layers[Math.max(0, Math.min(L - 1, layerIdx))];
    const own = this.viewLayer(view.model, layer).layer;
    // PCA: the linear view of the same layer (drawn like a map; see ReportData.pcaMap).
    const pca = s.projection === 'pca' ? this.data.pcaMapNearLayer(view.model, own, s.dims) : null;
    return pca || this.data.mapNearLayer(view.model, own, s.perplexity, s.dims);
  }

  /** Switches model or side-by-side (in `change`), keeping the layer at matching depth. */
  changeModels(change) {
    const d = this.data, fromModel = this.primaryModel(), fromLayer = this.currentLayer();
    change();
    const prim = this.primaryModel();
    this.layers = d.modelLayers[prim] && d.modelLayers[prim].length ? d.modelLayers[prim] : d.layers;
    const paired = d.pairedLayer(fromModel, fromLayer, prim);
    const target = paired ? paired.layer : fromLayer;
    let idx = 0;
    this.layers.forEach((l, k) => { if (Math.abs(l - target) < Math.abs(this.layers[idx] - target)) idx = k; });
    this.playing = false;
    $('#play').textContent = '▶';
    $('#play').setAttribute('aria-label', 'Play through the layers');
    this.state.layerIdx = idx;
    this.state.layerPos = idx;
    this.layerTarget = idx;
    const slider = $('#layer');
    slider.max = String(this.layers.length - 1);
    slider.value = String(idx);
    slider.disabled = this.layers.length < 2;
    $('#play').disabled = this.layers.length < 2;
    this.hideTooltip();
    this.buildViews();
    this.refreshAll();
  }

  seedFor(map) {
    return Math.min(this.state.seed, this.data.seedCount(map) - 1);
  }

  updatePositions() {
    const L = this.layers.length;
    const pos = Math.min(L - 1, Math.max(0, this.state.layerPos));
    const a = Math.floor(pos), b = Math.min(L - 1, a + 1), t = pos - a;
    for (const v of this.views) {
      const ma = this.mapFor(v, a), mb = this.mapFor(v, b);
      if (!ma || !mb) continue;
      v.setPositions(this.data.coords(ma, this.seedFor(ma)), this.data.coords(mb, this.seedFor(mb)));
      v.tween.t = t;
      v.currentMap = this.mapFor(v, Math.round(pos));
      const s = this.state;
      const primary = this.layers[Math.round(pos)];
      const link = v.model === this.primaryModel() ? null : this.viewLayer(v.model, primary);
      v.pairedWith = link && link.pair ? primary : null;
      const pca = v.currentMap.pca === true;
      v.caption.textContent = [
        this.data.models[v.model],
        `layer ${v.currentMap.layer}` + (link ? (link.pair ? ` (paired with layer ${primary})` : ' (no paired layer)') : ''),
        pca ? `PCA, ${explainedText(v.currentMap.explained)}` : `perplexity ${v.currentMap.perplexity}`,
        `${s.dims}D`, !pca && this.data.maxSeeds > 1 ? `seed ${this.data.seedLabels[this.seedFor(v.currentMap)]}` : '',
      ].filter(Boolean).join(' · ');
      this.updateBanner(v);
      v.canvas.setAttribute('aria-label', `${s.dims}D ${pca ? 'PCA view' : 't-SNE map'} of ${this.data.N} tokens, ${v.caption.textContent}. ` +
        (s.dims === 2 ? 'Drag to pan, wheel to zoom.' : 'Drag to rotate, wheel to zoom.') + ' Arrow keys move the view, [ and ] change layer.');
    }
    this.viewVersion++;
    this.layerCache.clear();
  }

  roundedLayerIdx() {
    return Math.round(this.state.layerPos);
  }

  goToLayer(idx, animate = true) {
    const L = this.layers.length;
    idx = Math.max(0, Math.min(L - 1, idx));
    this.state.layerIdx = idx;
    $('#layer').value = String(idx);
    if (!animate) {
      this.state.layerPos = idx;
      this.onLayerMoved();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.layerTarget = idx;
      this.layerDone = resolve;
      if (!this.animating) {
        this.animating = true;
        this.lastTick = performance.now();
        requestAnimationFrame((t) => this.tick(t));
      }
    });
  }

  tick(now) {
    if (this.disposed) return;
    const s = this.state;
    const dt = Math.min(0.1, (now - this.lastTick) / 1000);
    this.lastTick = now;
    const diff = this.layerTarget - s.layerPos;
    const speed = Math.max(2.2, Math.abs(diff) * 2);
    if (Math.abs(diff) <= speed * dt) s.layerPos = this.layerTarget;
    else s.layerPos += Math.sign(diff) * speed * dt;
    if (s.layerPos !== this.layerTarget) this.touch();
    this.onLayerMoved();
    if (s.layerPos !== this.layerTarget) {
      requestAnimationFrame((t) => this.tick(t));
      return;
    }
    this.animating = false;
    const done = this.layerDone;
    this.layerDone = null;
    if (this.playing) {
      if (s.layerIdx < this.layers.length - 1) {
        setTimeout(() => { if (this.playing) this.goToLayer(s.layerIdx + 1); }, 350);
      } else this.togglePlay(false);
    }
    if (done) done();
  }

  onLayerMoved() {
    const before = this.colorLayer;
    this.updatePositions();
    if (this.roundedLayerIdx() !== before) {
      this.refreshColors();
      this.updateTrust();
      this.updateSelectionPanel();
    }
    this.updateLayerLabel();
    if (this.hover >= 0) this.showTooltip(this.hover, this.tooltipView, null);
    this.requestRender();
  }

  togglePlay(force) {
    this.playing = force === undefined ? !this.playing : force;
    const btn = $('#play');
    btn.textContent = this.playing ? '❚❚' : '▶';
    btn.setAttribute('aria-label', this.playing ? 'Pause' : 'Play through the layers');
    if (this.playing) {
      const s = this.state;
      if (s.layerIdx >= this.layers.length - 1) this.goToLayer(0, false);
      this.goToLayer(this.state.layerIdx + 1);
    }
  }

  updateLayerLabel() {
    const layers = this.layers;
    const layer = this.currentLayer();
    const out = $('#layer-value');
    out.textContent = `${layer}`;
    out.title = `hidden state ${layer} of ${layers[0]}–${layers[layers.length - 1]}` +
      (this.data.models.length > 1 ? ` (${this.data.models[this.primaryModel()]})` : '');
    $('#layer').setAttribute('aria-valuetext', `layer ${layer}`);
  }

  /** All layers' coordinates for one view (for trajectories). */
  layerCoordsForView(view) {
    const s = this.state;
    const k = `${view.model}|${s.perplexity}|${s.dims}|${s.seed}`;
    let list = this.layerCache.get(k);
    if (!list) {
      list = [];
      this.data.layers.forEach((layer) => {
        const m = this.data.map(view.model, layer, s.perplexity, s.dims);
        if (m) list.push({ layer, coords: this.data.coords(m, this.seedFor(m)) });
      });
      this.layerCache.set(k, list);
    }
    return list;
  }

  // ---------------------------------------------------------------- colours and highlights
  refreshColors() {
    this.colorLayer = this.roundedLayerIdx();
    for (const v of this.views) v.setColors(this.colorsFor(v));
    this.updateLegend();
  }

  colorsFor(view) {
    const d = this.data, N = d.N, s = this.state;
    const out = new Uint8Array(N * 4);
    const map = view.currentMap;
    const layer = map ? map.layer : this.currentLayer();
    const analysis = d.analysis(view.model, layer);
    const oi = OKABE_ITO.map(hexToRgb), other = hexToRgb(OTHER);
    let colorOf;
    this.legendInfo = null;
    switch (s.colorBy) {
      case 'text': colorOf = (i) => (d.textIndex[i] < 8 ? oi[d.textIndex[i]] : other); break;
      case 'model': colorOf = () => oi[view.model % 8]; break;
      case 'position': { const mx = Math.max(1, d.maxPosition); colorOf = (i) => viridis(d.position[i] / mx); break; }
      case 'kind': colorOf = (i) => oi[d.kind[i]]; break;
      case 'cluster': {
        const cl = analysis && analysis.cluster;
        if (!cl) { colorOf = () => other; break; }
        const rank = clusterRanks(cl);
        colorOf = (i) => { const r = rank.get(cl[i]); return r !== undefined && r < 7 ? oi[r] : other; };
        break;
      }
      case 'outlier': {
        const o = analysis && analysis.outlier;
        if (!o) { colorOf = () => other; break; }
        const hi = outlierScale(o);
        colorOf = (i) => viridis(Math.max(0, o[i]) / hi);
        break;
      }
      case 'stability': {
        const ps = map && map.point_stability;
        colorOf = ps ? (i) => cividis(ps[i]) : () => other;
        break;
      }
      case 'overlap': {
        const pair = this.pairFor(view);
        const ov = pair && pair.overlap;
        colorOf = ov ? (i) => viridis(ov[i] === null ? NaN : +ov[i]) : () => other;
        break;
      }
      case 'lens-agree': {
        const lens = d.lens(view.model, layer);
        colorOf = lens ? (i) => oi[LENS_AGREE[lens.top_ids[i][0] === lens.final_top1[i] ? 0 : 1][0]] : () => other;
        break;
      }
      case 'lens-entropy': {
        // 0 (certain) to ln(vocabulary) (uniform): the same scale at every layer.
        const lens = d.lens(view.model, layer);
        const hi = lens ? Math.log(Math.max(2, lens.vocab_size)) : 1;
        colorOf = lens ? (i) => viridis(lens.entropy[i] === null ? NaN : lens.entropy[i] / hi) : () => other;
        break;
      }
      case 'change': {
        // The first mapped layer has nothing before it: grey, as the legend says.
        const ch = d.change(view.model, layer);
        const jac = ch && ch.jaccard;
        colorOf = jac ? (i) => viridis(jac[i] === null ? NaN : +jac[i]) : () => other;
        break;
      }
      default: colorOf = () => oi[0];
    }
    const hidden = this.filters[s.colorBy];
    const keyOf = hidden && hidden.size ? this.categoryKey(view, s.colorBy, analysis) : null;
    let visible = 0;
    for (let i = 0; i < N; i++) {
      const c = colorOf(i);
      out[i * 4] = c[0]; out[i * 4 + 1] = c[1]; out[i * 4 + 2] = c[2];
      if (keyOf && hidden.has(keyOf(i))) { out[i * 4 + 3] = 4; continue; }
      // An atlas report (viz --atlas) shows the reference faded and the placed tokens on top.
      out[i * 4 + 3] = i === s.selected ? 3 : this.hlActive ? (this.hlMask[i] ? 2 : 1) : (d.tokens[i].source === 'atlas' ? 1 : 0);
      visible++;
    }
    view.visibleCount = visible;
    return out;
  }

  /**
   * The legend category of each token under a categorical colouring, as the string key the
   * legend entry carries: a text (texts 9 and on share one entry), the model, a token kind, a
   * cluster id (the smaller clusters share one entry). Null for continuous colourings.
   */
  categoryKey(view, mode, analysis) {
    const d = this.data;
    switch (mode) {
      case 'text': return (i) => String(Math.min(d.textIndex[i], 8));
      case 'model': { const k = String(view.model); return () => k; }
      case 'kind': return (i) => String(d.kind[i]);
      case 'cluster': {
        const cl = analysis && analysis.cluster;
        if (!cl) return () => '';
        const rank = clusterRanks(cl);
        return (i) => (rank.get(cl[i]) < 7 ? String(cl[i]) : 'small');
      }
      case 'lens-agree': {
        const lens = this.data.lens(view.model, view.currentMap ? view.currentMap.layer : this.currentLayer());
        if (!lens) return () => 'none';
        return (i) => (lens.top_ids[i][0] === lens.final_top1[i] ? '0' : '1');
      }
      default: return null;
    }
  }

  /** Whether token i is hidden by a legend filter in this view. */
  isFiltered(view, i) {
    return !!view.colors && view.colors[i * 4 + 3] === 4;
  }

  onLegendClick(e) {
    const btn = e.target.closest && e.target.closest('button');
    if (!btn) return;
    const mode = this.state.colorBy;
    if (btn.id === 'show-all') {
      delete this.filters[mode];
      this.applyFilters('Showing every token');
      return;
    }
    if (!btn.classList.contains('legend-item')) return;
    const key = btn.dataset.key;
    const set = this.filters[mode] || (this.filters[mode] = new Set());
    const hide = !set.has(key);
    if (hide) set.add(key); else set.delete(key);
    if (!set.size) delete this.filters[mode];
    const label = btn.querySelector('.lbl')?.textContent || key;
    this.applyFilters(`${hide ? 'Hidden' : 'Shown again'}: ${label}`, key);
  }

  applyFilters(message, focusKey = null) {
    this.refreshColors();
    if (this.hover >= 0 && this.views.some((v) => this.isFiltered(v, this.hover))) this.hideTooltip();
    this.viewVersion++;
    this.requestRender();
    const shown = this.views.reduce((a, v) => a + (v.visibleCount ?? this.data.N), 0);
    const total = this.data.N * this.views.length;
    this.announce(`${message}. ${shown.toLocaleString('en')} of ${total.toLocaleString('en')} points shown.`);
    // The legend was rebuilt: keep the keyboard where it was.
    const again = focusKey !== null ? $(`#legend button.legend-item[data-key="${CSS.escape(focusKey)}"]`) : $('#legend #show-all');
    if (again) again.focus({ preventScroll: true });
  }

  /**
   * The comparison pair behind a view at the current layer: for a paired model the pair that
   * chose its layer; for the primary model the pair with the first other model shown (or, in
   * the single view, the first other model with one).
   */
  pairFor(view) {
    const d = this.data, prim = this.primaryModel(), layer = this.currentLayer();
    if (view.model !== prim) { const r = d.pairedLayer(prim, layer, view.model); return r ? r.pair : null; }
    const others = (this.state.sideBySide ? this.views.map((v) => v.model) : d.models.map((_, m) => m)).filter((m) => m !== prim);
    for (const m of others) { const r = d.pairedLayer(prim, layer, m); if (r && r.pair) return r.pair; }
    return null;
  }

  updateHighlight() {
    const N = this.data.N;
    const m = this.hlMask;
    m.fill(0);
    let active = false;
    if (this.searchMask) { active = true; for (let i = 0; i < N; i++) m[i] |= this.searchMask[i]; }
    if (this.selMask) { active = true; for (let i = 0; i < N; i++) m[i] |= this.selMask[i]; }
    this.hlActive = active;
    this.hlVersion++;
    this.labelCache = null;
    this.trajCache = null;
    this.refreshColors();
    this.requestRender();
  }

  isHighlighted(i) { return this.hlActive && this.hlMask[i] === 1; }
  isVisibleState(i) { return !this.hlActive || this.hlMask[i] === 1; }

  applySearch(pattern) {
    const status = $('#search-status');
    const input = $('#search');
    if (!pattern) {
      this.searchMask = null;
      status.textContent = '';
      input.removeAttribute('aria-invalid');
      this.updateHighlight();
      return;
    }
    let re;
    try {
      re = new RegExp(pattern, /[A-Z]/.test(pattern.replace(/\\./g, '')) ? '' : 'i');
    } catch (err) {
      status.textContent = 'not a valid regular expression';
      status.className = 'search-status invalid';
      status.title = String(err.message || err);
      input.setAttribute('aria-invalid', 'true');
      return;
    }
    input.removeAttribute('aria-invalid');
    const d = this.data, mask = new Uint8Array(d.N);
    let count = 0;
    for (let i = 0; i < d.N; i++) {
      if (re.test(String(d.tokens[i].display))) { mask[i] = 1; count++; }
    }
    this.searchMask = mask;
    this.searchCount = count;
    status.className = 'search-status';
    status.title = '';
    status.textContent = count === 1 ? '1 match' : `${count.toLocaleString('en')} matches`;
    this.updateHighlight();
  }

  select(i) {
    const d = this.data;
    if (i < 0) {
      this.state.selected = -1;
      this.selMask = null;
    } else {
      this.state.selected = i;
      const mask = new Uint8Array(d.N);
      for (const j of d.occurrences(i)) mask[j] = 1;
      this.selMask = mask;
    }
    this.updateHighlight();
    this.updateSelectionPanel();
    this.announce(i < 0 ? 'Selection cleared' : `Selected ${showToken(d.tokens[i].display)}: ${d.occurrences(i).length} occurrence(s)`);
  }

  labelCandidates() {
    if (this.labelCache) return this.labelCache;
    let list;
    if (this.hlActive) {
      list = [];
      if (this.state.selected >= 0) list.push(this.state.selected);
      for (const i of this.staticOrder) if (this.hlMask[i] && i !== this.state.selected) list.push(i);
      list = list.slice(0, 3000);
    } else list = this.staticOrder.slice(0, 3000);
    this.labelCache = list;
    return list;
  }

  trajectoryTokens() {
    if (this.state.selected >= 0 || this.searchMask) {
      const out = [];
      for (let i = 0; i < this.data.N && out.length < 60; i++) if (this.hlMask[i]) out.push(i);
      return out;
    }
    return this.hover >= 0 ? [this.hover] : [];
  }

  tokenCss(view, i) {
    const c = view.colors;
    return `rgb(${c[i * 4]},${c[i * 4 + 1]},${c[i * 4 + 2]})`;
  }

  // ---------------------------------------------------------------- legend, trust panel, selection
  updateLegend() {
    const d = this.data, s = this.state, box = $('#legend');
    const view = this.views[0];
    const layer = view && view.currentMap ? view.currentMap.layer : this.currentLayer();
    const analysis = view ? d.analysis(view.model, layer) : null;
    const hidden = this.filters[s.colorBy] || new Set();
    const items = [];
    // Categorical entries are toggle buttons: a click hides or shows that category's tokens.
    const sw = (hex, label, title, key) => {
      const off = hidden.has(key);
      return `<li><button type="button" class="legend-item${off ? ' off' : ''}" data-key="${esc(key)}" aria-pressed="${off ? 'false' : 'true'}"
        title="${esc(`${off ? 'Show' : 'Hide'} these tokens${title ? ` — ${title}` : ''}`)}"><span class="sw" style="background:${hex}"></span><span class="lbl">${esc(label)}</span></button></li>`;
    };
    const gradient = (fn, lo, hi, note) => `<div class="ramp" style="background:${rampCss(fn)}"></div><div class="ramp-ticks"><span>${esc(lo)}</span><span>${esc(hi)}</span></div>${note ? `<p class="note">${note}</p>` : ''}`;
    let html = '';
    switch (s.colorBy) {
      case 'text':
        d.texts.slice(0, 8).forEach((t, k) => items.push(sw(OKABE_ITO[k], `${k + 1}. ${t.length > 42 ? t.slice(0, 40) + '…' : t}`, t, String(k))));
        if (d.texts.length > 8) items.push(sw(OTHER, `texts 9–${d.texts.length}`, '', '8'));
        break;
      case 'model':
        d.models.forEach((m, k) => items.push(sw(OKABE_ITO[k % 8], m, '', String(k))));
        break;
      case 'kind': {
        const present = new Set(d.kind);
        d.kinds.forEach((k, idx) => { if (present.has(idx)) items.push(sw(OKABE_ITO[idx], KIND_LABELS[k], '', String(idx))); });
        break;
      }
      case 'cluster': {
        const cl = analysis && analysis.cluster;
        if (!cl) { html = '<p class="note">No clusters in this report.</p>'; break; }
        const ranks = [...clusterRanks(cl).entries()].sort((a, b) => a[1] - b[1]);
        const sizes = new Map();
        for (const c of cl) sizes.set(c, (sizes.get(c) || 0) + 1);
        ranks.slice(0, 7).forEach(([c, r]) => items.push(sw(OKABE_ITO[r], `cluster ${c} · ${sizes.get(c)} tokens`, '', String(c))));
        if (ranks.length > 7) items.push(sw(OTHER, `${ranks.length - 7} smaller clusters`, '', 'small'));
        html = `<p class="note">Louvain clusters of layer ${layer}'s hidden states (not of the map)${this.views.length > 1 ? `, ${esc(d.models[view.model])}; each view has its own` : ''}.</p>`;
        break;
      }
      case 'position':
        html = gradient(viridis, 'first token', `position ${d.maxPosition}`);
        break;
      case 'outlier': {
        const o = analysis && analysis.outlier;
        html = o ? gradient(viridis, '≤ 0', `≥ ${outlierScale(o).toFixed(1)}`, 'Robust z-score of the distance to the nearest neighbours in the original space.') : '<p class="note">No outlier scores in this report.</p>';
        break;
      }
      case 'stability': {
        const ps = view && view.currentMap && view.currentMap.point_stability;
        html = ps ? gradient(cividis, '0 (moves)', '1 (stable)', 'Agreement of each token’s map neighbourhood across seeds.') : '<p class="note">Per-token stability needs several seeds (<code>--seeds 3</code>).</p>';
        break;
      }
      case 'lens-agree': {
        const lens = view ? d.lens(view.model, layer) : null;
        if (!lens) { html = `<p class="note">No next-token predictions for ${esc(d.models[view ? view.model : 0])}: ${lensMissing(d)}.</p>`; break; }
        LENS_AGREE.forEach(([c, label], k) => items.push(sw(OKABE_ITO[c], label, '', String(k))));
        let same = 0;
        for (let i = 0; i < d.N; i++) same += lens.top_ids[i][0] === lens.final_top1[i] ? 1 : 0;
        html = `<p class="note">Logit lens: layer ${layer}'s state through the final norm and the output head; its most likely next token is the final layer's (${lens.final_layer}) for ${same} of ${d.N} points.</p>`;
        break;
      }
      case 'lens-entropy': {
        const lens = view ? d.lens(view.model, layer) : null;
        if (!lens) { html = `<p class="note">No next-token predictions for ${esc(d.models[view ? view.model : 0])}: ${lensMissing(d)}.</p>`; break; }
        html = gradient(viridis, '0 (certain)', `ln ${lens.vocab_size} = ${Math.log(lens.vocab_size).toFixed(1)} (uniform)`,
          `Entropy in nats of layer ${layer}'s next-token distribution (logit lens: final norm and output head applied to the layer's state).`);
        break;
      }
      case 'overlap': {
        const pairs = [...new Set(this.views.map((v) => this.pairFor(v)).filter(Boolean))];
        if (!pairs.length) {
          html = `<p class="note">No comparison at layer ${this.currentLayer()} of ${esc(d.models[this.primaryModel()])}: the report pairs no layer of another model with it.</p>`;
          break;
        }
        const k = pairs[0].k;
        const what = pairs.map((p) => `${esc(d.models[p.a])} layer ${p.layer_a} vs ${esc(d.models[p.b])} layer ${p.layer_b}: mean <b>${fmt(p.mean, 2)}</b>`).join('<br>');
        html = gradient(viridis, '0 (none shared)', `1 (all${k ? ` ${k}` : ''} shared)`,
          `Share of each token’s ${k ? `${k} ` : ''}nearest neighbours in one model’s hidden states that are also its nearest in the other’s (${esc(d.settings.metric || 'model')} distance, the same tokens).`) +
          `<p class="note pair-means">${what}</p>`;
        break;
      }
      case 'change': {
        const changes = [...new Set(this.views.map((v) => d.change(v.model, v.currentMap ? v.currentMap.layer : layer)).filter(Boolean))];
        if (!changes.length) {
          html = `<p class="note change-none">Layer ${layer} is the first mapped layer of ${esc(d.models[view ? view.model : 0])}: nothing to compare it with (grey).</p>`;
          break;
        }
        const k = changes[0].k;
        const what = changes.map((c) => `${esc(d.models[c.model])} layer ${c.previous_layer} → ${c.layer}: mean <b>${fmt(c.mean, 2)}</b>`).join('<br>');
        html = gradient(viridis, '0 (all new)', '1 (unchanged)',
          `Jaccard index of each token’s ${k} nearest neighbours in the previous mapped layer and in this one (${esc(d.settings.metric || 'model')} distance in the model’s hidden states, not in the map).`) +
          `<p class="note change-means">${what}</p>`;
        break;
      }
    }
    if (this.hlActive) html += '<p class="note">Highlighted tokens are drawn larger; the rest are faded.</p>';
    let filter = '';
    if (CATEGORICAL.has(s.colorBy) && items.length) {
      const shown = this.views.reduce((a, v) => a + (v.visibleCount ?? d.N), 0), total = d.N * this.views.length;
      filter = `<p class="legend-filter"><button type="button" id="show-all" class="link"${hidden.size ? '' : ' disabled'}>show all</button>
        <span class="note" id="filter-status">${hidden.size ? `${shown.toLocaleString('en')} of ${total.toLocaleString('en')} points shown` : 'click an entry to hide its tokens'}</span></p>`;
    }
    box.innerHTML = (items.length ? `<ul class="swatches">${items.join('')}</ul>` : '') + filter + html;
  }

  /** The warning banner over a view: shown for poor and degenerate maps, with the first reason. */
  updateBanner(view) {
    const b = view.banner;
    if (!b) return;
    const m = view.currentMap;
    const a = m ? this.data.assessment(m, this.seedFor(m)) : null;
    const bad = a && (a.rating === 'degenerate' || a.rating === 'poor');
    b.hidden = !bad;
    b.className = `map-warning${bad ? ` ${a.rating}` : ''}`;
    if (!bad) { b.textContent = ''; b.dataset.rating = ''; return; }
    b.dataset.rating = a.rating;
    // A degenerate map interrupts (alert); a poor one is announced politely.
    b.setAttribute('role', a.rating === 'degenerate' ? 'alert' : 'status');
    const head = a.rating === 'degenerate' ? 'Degenerate map: it shows nothing of the data.' : 'Poor map: read it with care.';
    const text = `⚠ ${head} ${a.reasons && a.reasons.length ? sentence(a.reasons[0]) : ''}`;
    if (b.textContent !== text) b.textContent = text;
  }

  updateTrust() {
    const d = this.data, view = this.views[0], box = $('#trust');
    if (!view || !view.currentMap) { box.innerHTML = ''; this.updateChanges(); return; }
    const m = view.currentMap;
    if (m.pca) {
      box.innerHTML = this.pcaHtml(m) + this.outliersHtml(m);
      for (const b of box.querySelectorAll('button[data-token]')) b.addEventListener('click', () => this.select(+b.dataset.token));
      this.updateChanges();
      return;
    }
    const a = d.assessment(m, this.seedFor(m));
    const ratings = (a && a.ratings) || {};
    // Old reports (no assessment) keep the page's own grades; tiny ones never get neighbour grades.
    const meaningful = a ? a.neighbors_meaningful !== false : d.N >= 12;
    const grade = (v, good, fair) => (v === null || v === undefined ? 'na' : v >= good ? 'good' : v >= fair ? 'fair' : 'poor');
    const rated = (name, v, good, fair) => (!meaningful ? 'nm' : a ? (ratings[name] || 'na') : grade(v, good, fair));
    const GRADE_TEXT = { na: '', nm: 'not meaningful', good: 'good', fair: 'fair', poor: 'poor', degenerate: 'degenerate' };
    const row = (label, v, g, help, bar = true, extra = '') => `
      <tr class="${g}" data-metric="${esc(label)}"><th scope="row" title="${esc(help)}">${label}</th>
      <td class="num">${fmt(v)}</td>
      <td>${extra || (bar && v !== null && v !== undefined ? `<span class="meter" aria-hidden="true"><span style="width:${Math.max(0, Math.min(1, v)) * 100}%"></span></span>` : '')}</td>
      <td class="grade">${GRADE_TEXT[g] ?? g}</td></tr>`;
    const k = m.k ?? 10;
    const klRatio = a && Number.isFinite(+a.kl_ratio) && a.kl_ratio !== null ? +a.kl_ratio : null;
    const klGrade = ratings.kl ? (ratings.kl === 'degenerate' ? 'degenerate' : ratings.kl) : 'na';
    const nmHelp = `Not meaningful with ${d.N} tokens: k is lowered to ${k} and a random map already scores about ${fmt(a ? a.random_trustworthiness : 0.5, 2)}.`;
    const rows = [
      row('KL divergence', m.kl, klGrade,
        'Final Kullback–Leibler divergence of the optimisation; lower is better. Rated by its share of the KL of a map with every point in one place (same P): 100% means the map explains nothing.',
        false, klRatio !== null ? `<span class="meter" aria-hidden="true" title="share of a point map’s KL explained"><span style="width:${Math.max(0, Math.min(1, 1 - klRatio)) * 100}%"></span></span>` : '') +
        (klRatio !== null ? `<tr class="sub"><td colspan="4" class="hint kl-ratio">${fmt(100 * klRatio, 0)}% of a point map’s KL (${fmt(m.kl_uniform, 2)})</td></tr>` : ''),
      row('Trustworthiness', m.trustworthiness, rated('trustworthiness', m.trustworthiness, 0.9, 0.8), meaningful ? `Are neighbours in the map also neighbours in the original space? (1 = yes; a random map scores ${fmt(a ? a.random_trustworthiness : 0.5, 2)})` : nmHelp),
      row('Continuity', m.continuity, rated('continuity', m.continuity, 0.9, 0.8), meaningful ? 'Are neighbours in the original space kept together in the map? (1 = yes)' : nmHelp),
      row(`${k}-NN preserved`, m.knn_preservation, rated('knn_preservation', m.knn_preservation, 0.5, 0.3), meaningful ? `Fraction of each token’s ${k} nearest neighbours that are also its ${k} nearest in the map.` : nmHelp),
      m.stability === null || m.stability === undefined
        ? `<tr class="na"><th scope="row">Stability</th><td class="num">—</td><td colspan="2" class="hint">one seed; run with <code>--seeds 3</code></td></tr>`
        : row('Stability (seeds)', m.stability, grade(m.stability, 0.7, 0.5), 'Agreement of neighbourhoods between maps made with different random seeds.'),
    ];
    let html = `<p class="trust-what">${esc(d.models[m.model] ?? '')}, layer ${m.layer}, perplexity ${m.perplexity}, ${m.dims}D${d.maxSeeds > 1 ? `, seed ${esc(d.seedLabels[this.seedFor(m)])}` : ''}</p>`;
    if (a) {
      const reasons = (a.reasons || []).map((r) => `<li>${esc(sentence(r))}</li>`).join('');
      html += `<div class="verdict ${esc(a.rating)}" id="map-rating" data-rating="${esc(a.rating)}">
        <p><span class="badge">${esc(a.rating)}</span> ${esc(VERDICT[a.rating] || '')}</p>${reasons ? `<ul class="reasons">${reasons}</ul>` : ''}</div>`;
    } else if (!meaningful) {
      html += `<p class="note not-meaningful">With ${d.N} tokens the neighbour numbers below are not meaningful.</p>`;
    }
    // Said while the page still shows the map it opened on.
    if (this.openedAway && !this.openedAway.shown) this.openedAway.shown = m;
    if (this.openedAway && this.openedAway.shown === m) {
      const o = this.openedAway;
      html += `<p class="note opened-away">Opened here because the default view (layer ${o.layer}, perplexity ${o.perplexity}, ${o.dims}D) is degenerate.</p>`;
    }
    html += `<table class="metrics">${rows.join('')}</table>`;
    const others = d.degenerateMaps().filter((x) => x !== m && x.model === m.model);
    if (others.length) {
      const names = others.slice(0, 8).map((x) => `layer ${x.layer} · p ${x.perplexity} · ${x.dims}D`).join('; ');
      html += `<p class="note degenerate-list">Degenerate elsewhere in this report (${others.length}): ${esc(names)}${others.length > 8 ? '; …' : ''}.</p>`;
    }
    for (const pair of new Set(this.views.map((v) => this.pairFor(v)).filter(Boolean))) {
      html += `<p class="note overlap-mean">Neighbourhood overlap ${esc(d.models[pair.a])} (layer ${pair.layer_a}) vs ${esc(d.models[pair.b])} (layer ${pair.layer_b}): <b>${fmt(pair.mean, 2)}</b></p>`;
    }
    html += this.outliersHtml(m);
    box.innerHTML = html;
    for (const b of box.querySelectorAll('button[data-token]')) b.addEventListener('click', () => this.select(+b.dataset.token));
    this.updateChanges();
  }

  outliersHtml(m) {
    const d = this.data, an = d.analysis(m.model, m.layer);
    if (!an || !Array.isArray(an.top_outliers) || !an.top_outliers.length) return '';
    return `<h3>Top outliers</h3><ol class="outliers">${an.top_outliers.slice(0, 8).map((i) =>
      tokenItem(d, i, `z ${fmt(an.outlier?.[i], 1)}`)).join('')}</ol>`;
  }

  /** The trust panel of a PCA view: what PCA keeps that t-SNE does not, and its explained variance. */
  pcaHtml(m) {
    const d = this.data, ex = m.explained || [];
    const total = ex.reduce((a, v) => a + (+v || 0), 0);
    const rows = ex.map((v, k) => `<tr data-axis="${k + 1}"><th scope="row">PC${k + 1}</th><td class="num">${fmt(100 * v, 1)}%</td>
      <td><span class="meter" aria-hidden="true"><span style="width:${Math.max(0, Math.min(1, +v || 0)) * 100}%"></span></span></td></tr>`).join('');
    return `<p class="trust-what">${esc(d.models[m.model] ?? '')}, layer ${m.layer}, PCA, ${this.state.dims}D</p>
      <div class="pca-info" id="pca-info" data-explained="${esc(ex.map((v) => fmt(v, 4)).join(','))}">
      <p>A linear projection onto the top principal axes of layer ${m.layer}’s hidden states: distances and directions keep their global meaning (how far apart groups are, what lies between), which t-SNE does not; local neighbourhoods are kept far worse.</p>
      <table class="metrics explained"><caption>Share of the variance shown</caption>${rows}
      <tr class="total"><th scope="row">together</th><td class="num" id="pca-explained-total">${fmt(100 * total, 1)}%</td><td></td></tr></table>
      ${total < 0.5 ? `<p class="note">Most of the variance (${fmt(100 * (1 - total), 0)}%) lies along other axes: points close here may be far apart in the model.</p>` : ''}</div>`;
  }

  /**
   * The "What changed" panel: the tokens whose neighbourhood changed most from the previous
   * mapped layer (per view's model) and, with comparison data, the tokens whose neighbourhoods
   * differ most between the models at matched depth. Entries select their token.
   */
  updateChanges() {
    const d = this.data, box = $('#changes');
    if (!box) return;
    const layer = this.currentLayer();
    let html = '';
    const seen = new Set();
    for (const v of this.views) {
      const l = v.currentMap ? v.currentMap.layer : layer;
      const c = d.change(v.model, l);
      if (seen.has(`${v.model}|${l}`)) continue;
      seen.add(`${v.model}|${l}`);
      const who = d.models.length > 1 ? `${esc(d.models[v.model])}: ` : '';
      if (!c) {
        html += `<p class="note">${who}layer ${l} is the first mapped layer; nothing before it to compare.</p>`;
        continue;
      }
      const top = (c.most_changed || []).slice(0, 10);
      html += `<h3>${who}Moved most between layer ${c.previous_layer} and ${c.layer}</h3>
        <p class="note">Jaccard index of the ${c.k} nearest neighbours in the model’s space (0 = all new); mean ${fmt(c.mean, 2)}.</p>
        <ol class="moved" data-model="${c.model}" data-layer="${c.layer}">${top.map((i) => tokenItem(d, i, `J ${fmt(c.jaccard[i], 2)}`)).join('')}</ol>`;
    }
    for (const pair of new Set(this.views.map((v) => this.pairFor(v)).filter(Boolean))) {
      const order = Array.isArray(pair.most_changed) && pair.most_changed.length ? pair.most_changed : rankLowest(pair.overlap);
      html += `<h3>Most different: ${esc(d.models[pair.a])} layer ${pair.layer_a} vs ${esc(d.models[pair.b])} layer ${pair.layer_b}</h3>
        <p class="note">Share of the ${pair.k} nearest neighbours the models share (0 = none); mean ${fmt(pair.mean, 2)}.</p>
        <ol class="moved-models" data-a="${pair.a}" data-b="${pair.b}" data-layer-a="${pair.layer_a}">${order.slice(0, 10).map((i) => tokenItem(d, i, `overlap ${fmt(pair.overlap[i], 2)}`)).join('')}</ol>`;
    }
    box.innerHTML = html || '<p class="note">No layer-change data in this report.</p>';
    for (const b of box.querySelectorAll('button[data-token]')) b.addEventListener('click', () => this.select(+b.dataset.token));
  }

  updateSelectionPanel() {
    const d = this.data, i = this.state.selected, box = $('#selection');
    if (i < 0) {
      box.innerHTML = '<p class="note">Click a point to highlight every occurrence of its token; hover for details.</p>';
      return;
    }
    const occ = d.occurrences(i);
    const items = occ.slice(0, 12).map((j) => {
      const c = d.context(j, 40);
      return `<li><button type="button" class="occ" data-token="${j}">${esc(c.before)}<mark>${esc(c.token)}</mark>${esc(c.after)}</button></li>`;
    });
    box.innerHTML = `<p><span class="tok">${esc(showToken(d.tokens[i].display))}</span> · ${occ.length} occurrence${occ.length === 1 ? '' : 's'}
      <button type="button" id="clear-selection" class="link">clear</button></p>
      <ol class="occurrences">${items.join('')}</ol>${occ.length > 12 ? `<p class="note">and ${occ.length - 12} more</p>` : ''}`;
    $('#clear-selection').addEventListener('click', () => this.select(-1));
    for (const b of box.querySelectorAll('button.occ')) {
      b.addEventListener('mouseenter', () => { this.hover = +b.dataset.token; this.requestRender(); });
      b.addEventListener('focus', () => { this.hover = +b.dataset.token; this.requestRender(); });
      b.addEventListener('mouseleave', () => { this.hover = -1; this.requestRender(); });
    }
  }

  announce(text) {
    $('#announce').textContent = text;
  }

  // ---------------------------------------------------------------- tooltip
  showTooltip(i, view, ev) {
    const d = this.data, tip = $('#tooltip'), t = d.tokens[i];
    if (!t || !view) return;
    const map = view.currentMap;
    const layer = map ? map.layer : this.currentLayer();
    const a = d.analysis(view.model, layer);
    const c = d.context(i);
    const pair = d.pairs.length ? this.pairFor(view) : null;
    const facts = [
      `text ${t.text + 1}`, `position ${t.position}`, `layer ${layer}`, KIND_LABELS[t.kind] || t.kind,
      t.source ? (t.source === 'placed' ? `placed, confidence ${fmt(map && Array.isArray(map.confidence) ? map.confidence[i] : t.confidence, 2)}` : 'atlas') : '',
      d.models.length > 1 ? d.models[view.model] : '',
      a && a.cluster ? `cluster ${a.cluster[i]}` : '',
      a && a.outlier ? `outlier z ${fmt(a.outlier[i], 1)}` : '',
      map && map.point_stability ? `stability ${fmt(map.point_stability[i], 2)}` : '',
      (() => { const ch = d.change(view.model, layer); return ch && ch.jaccard[i] !== null ? `change ${fmt(ch.jaccard[i], 2)} (from layer ${ch.previous_layer})` : ''; })(),
      pair && pair.overlap[i] !== null ? `overlap ${fmt(pair.overlap[i], 2)} (${pair.a === view.model ? d.models[pair.b] : d.models[pair.a]} layer ${pair.a === view.model ? pair.layer_b : pair.layer_a})` : '',
    ].filter(Boolean);
    let nn = '';
    if (a && a.neighbors && a.neighbors[i]) {
      const dist = a.neighbor_distances && a.neighbor_distances[i];
      nn = `<div class="tt-h">Nearest in layer ${layer}'s hidden states</div><ol class="tt-nn">${a.neighbors[i].slice(0, 5).map((j, k) =>
        `<li><span class="tok">${esc(showToken(d.tokens[j]?.display))}</span> <span class="where">t${(d.tokens[j]?.text ?? 0) + 1}:${d.tokens[j]?.position}</span>${dist ? `<span class="num">${fmt(dist[k], 3)}</span>` : ''}</li>`).join('')}</ol>`;
    }
    // Models that tokenize differently: the point is a span; each model's own tokens of it.
    const pieces = Array.isArray(t.pieces) && t.pieces.length
      ? `<ul class="tt-pieces">${t.pieces.map((list, m) =>
        `<li><span class="where">${esc(d.models[m] ?? `model ${m + 1}`)}</span> ${(list || []).map((p) =>
          `<span class="tok" title="id ${esc(String(p.id))}">${esc(showToken(p.display))}</span>`).join(' + ')}</li>`).join('')}</ul>`
      : '';
    // The logit lens: what the model would predict next from this layer's state (a span: from
    // its last token).
    const lens = d.lens(view.model, layer);
    let predictions = '';
    if (!lens && d.settings && d.settings.logit_lens === true) {
      predictions = `<div class="tt-facts tt-no-lens">No next-token predictions: ${esc(lensMissing(d))}.</div>`;
    }
    if (lens) {
      const agrees = lens.top_ids[i][0] === lens.final_top1[i];
      predictions = `<div class="tt-h">Next-token predictions at this layer${Array.isArray(t.pieces) && t.pieces.length ? ' (after the span)' : ''}</div><ol class="tt-lens">${lens.top_ids[i].map((id, k) =>
        `<li><span class="tok" title="id ${id}">${esc(showToken(lens.tokens[id] ?? `#${id}`))}</span><span class="num">${fmt(lens.top_probs[i][k], 3)}</span></li>`).join('')}</ol>
        <div class="tt-facts">entropy ${fmt(lens.entropy[i], 2)} nats · ${agrees ? 'agrees with' : 'differs from'} the final layer’s top-1${agrees ? '' : ` (<span class="tok">${esc(showToken(lens.tokens[lens.final_top1[i]] ?? `#${lens.final_top1[i]}`))}</span>)`}</div>`;
    }
    tip.innerHTML = `<div class="tt-token"><span class="tok">${esc(showToken(t.display))}</span></div>${pieces}
      <div class="tt-context">${esc(c.before)}<mark>${esc(c.token)}</mark>${esc(c.after)}</div>
      <div class="tt-facts">${facts.map(esc).join(' · ')}</div>${nn}${predictions}`;
    tip.hidden = false;
    if (ev) this.tooltipAnchor = [ev.clientX, ev.clientY];
    this.tooltipView = view;
    const [mx, my] = this.tooltipAnchor || [0, 0];
    const r = tip.getBoundingClientRect();
    let x = mx + 16, y = my + 16;
    if (x + r.width > window.innerWidth - 8) x = mx - r.width - 16;
    if (y + r.height > window.innerHeight - 8) y = my - r.height - 16;
    tip.style.left = `${Math.max(4, x)}px`;
    tip.style.top = `${Math.max(4, y)}px`;
  }

  hideTooltip() {
    $('#tooltip').hidden = true;
    if (this.hover >= 0) { this.hover = -1; this.requestRender(); }
  }

  // ---------------------------------------------------------------- input
  attachInput(view) {
    const c = view.canvas;
    let drag = null;
    const local = (e) => { const r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    c.addEventListener('pointerdown', (e) => {
      c.focus({ preventScroll: true });
      drag = { x: e.clientX, y: e.clientY, moved: false };
      c.setPointerCapture?.(e.pointerId);
    });
    c.addEventListener('pointermove', (e) => {
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (!drag.moved && Math.hypot(dx, dy) < 3) return;
        drag.moved = true;
        drag.x = e.clientX; drag.y = e.clientY;
        this.moveCamera(view, dx, dy);
        $('#tooltip').hidden = true;
        this.hover = -1;
        return;
      }
      if (this.animating) return;
      const [x, y] = local(e);
      const i = view.pick(x, y);
      if (i !== this.hover) {
        this.hover = i;
        this.requestRender();
      }
      if (i >= 0) { this.showTooltip(i, view, e); c.style.cursor = 'pointer'; } else { $('#tooltip').hidden = true; c.style.cursor = ''; }
    });
    c.addEventListener('pointerup', (e) => {
      if (drag && !drag.moved) {
        const [x, y] = local(e);
        const i = view.pick(x, y);
        this.select(i === this.state.selected ? -1 : i);
      }
      drag = null;
    });
    c.addEventListener('pointerleave', () => { if (!drag) this.hideTooltip(); });
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const [x, y] = local(e);
      this.zoomAt(view, x, y, Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)));
    }, { passive: false });
    c.addEventListener('dblclick', () => this.resetCamera());
    c.addEventListener('keydown', (e) => this.onViewKey(view, e));
  }

  moveCamera(view, dx, dy) {
    const cam = this.camera();
    if (this.state.dims === 2) {
      const s = view.pixelsPerUnit();
      cam.cx -= dx / s; cam.cy += dy / s;
    } else {
      cam.yaw += dx * 0.008;
      cam.pitch = Math.max(-1.5, Math.min(1.5, cam.pitch + dy * 0.008));
    }
    this.touch();
    this.viewVersion++;
    this.requestRender();
  }

  zoomAt(view, x, y, factor) {
    const cam = this.camera();
    if (this.state.dims === 2) {
      const s0 = view.pixelsPerUnit();
      const wx = cam.cx + (x - view.width / 2) / s0, wy = cam.cy - (y - view.height / 2) / s0;
      cam.zoom = Math.max(0.2, Math.min(200, cam.zoom * factor));
      const s1 = view.pixelsPerUnit();
      cam.cx = wx - (x - view.width / 2) / s1; cam.cy = wy + (y - view.height / 2) / s1;
    } else cam.dist = Math.max(1.5, Math.min(40, cam.dist / factor));
    this.touch();
    this.viewVersion++;
    this.requestRender();
  }

  /** Frames every layer's points of the shown maps (so the layer animation stays in view). */
  resetCamera() {
    const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    let w = Infinity, h = Infinity;
    for (const v of this.views) {
      v.resize();
      w = Math.min(w, v.width); h = Math.min(h, v.height);
      for (const { coords } of this.layerCoordsForView(v)) {
        for (let i = 0; i < coords.length; i += 3) for (let k = 0; k < 3; k++) {
          const x = coords[i + k];
          if (x < lo[k]) lo[k] = x;
          if (x > hi[k]) hi[k] = x;
        }
      }
    }
    if (!Number.isFinite(lo[0]) || !Number.isFinite(w)) { lo.fill(-1); hi.fill(1); w = h = 600; }
    const c = lo.map((x, k) => (x + hi[k]) / 2);
    const dx = Math.max(1e-3, hi[0] - lo[0]), dy = Math.max(1e-3, hi[1] - lo[1]);
    const zoom = (Math.min((0.88 * w) / dx, (0.86 * h - 30) / dy) * 3.1) / Math.max(1, Math.min(w, h));
    this.cameras[2] = { cx: c[0], cy: c[1] + 12 / Math.max(1e-6, (zoom * Math.min(w, h)) / 3.1), zoom: Math.max(0.2, zoom) };
    const r = Math.max(1e-3, 0.5 * Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]));
    const aspect = w / Math.max(1, h);
    this.cameras[3] = { yaw: 0.65, pitch: 0.3, dist: (r / Math.sin((19 * Math.PI) / 180)) * (aspect < 1 ? 1 / aspect : 1) * 0.72, target: c };
    this.viewVersion++;
    this.requestRender();
  }

  onViewKey(view, e) {
    const step = 40;
    const k = e.key;
    if (k === 'ArrowLeft') this.moveCamera(view, step, 0);
    else if (k === 'ArrowRight') this.moveCamera(view, -step, 0);
    else if (k === 'ArrowUp') this.moveCamera(view, 0, step);
    else if (k === 'ArrowDown') this.moveCamera(view, 0, -step);
    else if (k === '+' || k === '=') this.zoomAt(view, view.width / 2, view.height / 2, 1.25);
    else if (k === '-' || k === '_') this.zoomAt(view, view.width / 2, view.height / 2, 0.8);
    else if (k === '0') this.resetCamera();
    else return;
    e.preventDefault();
  }

  onGlobalKey(e) {
    const tag = (e.target && e.target.tagName) || '';
    if (/INPUT|SELECT|TEXTAREA/.test(tag) && e.key !== 'Escape') return;
    if (e.key === '/') { e.preventDefault(); $('#search').focus(); }
    else if (e.key === '[') this.goToLayer(this.state.layerIdx - 1);
    else if (e.key === ']') this.goToLayer(this.state.layerIdx + 1);
    else if (e.key === 'l' || e.key === 'L') { const c = $('#labels'); c.checked = !c.checked; c.dispatchEvent(new Event('change')); }
    else if (e.key === 't' || e.key === 'T') { const c = $('#trajectories'); c.checked = !c.checked; c.dispatchEvent(new Event('change')); }
    else if (e.key === 'Escape') { if (this.state.selected >= 0) this.select(-1); this.hideTooltip(); }
  }

  // ---------------------------------------------------------------- rendering
  requestRender() {
    if (this.renderQueued || this.disposed) return;
    this.renderQueued = true;
    requestAnimationFrame(() => { this.renderQueued = false; this.renderNow(); });
  }

  renderNow() {
    const t0 = performance.now();
    for (const v of this.views) v.render();
    this.lastRenderMs = performance.now() - t0;
  }
}

const VERDICT = {
  good: 'The map keeps the data’s neighbourhoods.',
  fair: 'Usable, with the caveats below.',
  poor: 'Read it with care: see below.',
  degenerate: 'This map shows nothing of the data; do not read structure into it.',
};

/** A reason from the assessment as a sentence: capital first letter, full stop. */
/** One clickable token of a ranked list (outliers, moved most). */
function tokenItem(d, i, value) {
  return `<li><button type="button" data-token="${i}" class="token-link">${esc(showToken(d.tokens[i]?.display))}</button>
         <span class="where">text ${(d.tokens[i]?.text ?? 0) + 1}, pos ${d.tokens[i]?.position}</span>
         <span class="num">${esc(value)}</span></li>`;
}

/** Token indices by ascending value, ties by index, missing values last (reports without a ranking). */
function rankLowest(values) {
  const key = (i) => (values[i] === null || !Number.isFinite(+values[i]) ? Infinity : +values[i]);
  return [...values.keys()].sort((a, b) => (key(a) === key(b) ? a - b : key(a) < key(b) ? -1 : 1));
}

/** "63.2% of the variance (PC1 41.0%, PC2 22.2%)". */
function explainedText(explained) {
  const ex = explained || [];
  if (!ex.length) return 'explained variance unknown';
  const total = ex.reduce((a, v) => a + (+v || 0), 0);
  return `${fmt(100 * total, 1)}% of the variance (${ex.map((v, k) => `PC${k + 1} ${fmt(100 * v, 1)}%`).join(', ')})`;
}

function sentence(text) {
  const t = String(text ?? '').trim();
  if (!t) return '';
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

function checkbox(id, label, checked, onChange) {
  const wrap = document.createElement('label');
  wrap.className = 'check';
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.id = id;
  box.checked = checked;
  box.addEventListener('change', () => onChange(box.checked));
  wrap.append(box, document.createTextNode(' ' + label));
  return wrap;
}

function clusterRanks(cl) {
  const sizes = new Map();
  for (const c of cl) sizes.set(c, (sizes.get(c) || 0) + 1);
  const order = [...sizes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return new Map(order.map(([c], r) => [c, r]));
}

function outlierScale(o) {
  const v = Array.from(o, (x) => +x).filter(Number.isFinite).sort((a, b) => a - b);
  const p99 = v.length ? v[Math.floor(0.99 * (v.length - 1))] : 3;
  return Math.max(3, p99);
}

/** Static label priority: word starts first, then a deterministic shuffle so labels spread out. */
function labelOrder(d) {
  const N = d.N, idx = new Int32Array(N), pri = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    idx[i] = i;
    let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
    h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
    const kind = d.kind[i];
    pri[i] = (kind === 0 ? 0 : kind === 1 ? 1 : kind === 3 ? 2 : 3) + (h >>> 0) / 4294967296;
  }
  return Array.from(idx).sort((a, b) => pri[a] - pri[b]);
}

/** A token's identity across runs: its text (with which copy of that text) and byte offsets. */
export function tokenKey(d, i) {
  const t = d.tokens[i];
  return `${d.textKeys ? d.textKeys[t.text] : t.text}|${t.offset ? t.offset.join(',') : t.position}|${t.source || ''}`;
}

// The page-wide listeners are added once and talk to the App on screen (live mode replaces it).
let activeApp = null, listening = false;
function listenOnce() {
  if (listening) return;
  listening = true;
  $('#legend').addEventListener('click', (e) => activeApp.onLegendClick(e));
  window.addEventListener('resize', () => { activeApp.viewVersion++; activeApp.requestRender(); });
  document.addEventListener('keydown', (e) => activeApp.onGlobalKey(e));
}

// ---------------------------------------------------------------- boot
function readEmbedded() {
  const el = document.getElementById('tokmap-data');
  if (!el) return null;
  const text = el.textContent.trim();
  if (!text || text.startsWith('/*')) return null; // the template, not yet filled in
  return JSON.parse(text);
}

function showEmpty(message, detail) {
  $('#title').textContent = 'tokmap report';
  const box = $('#empty');
  box.hidden = false;
  box.innerHTML = `<h2>${esc(message)}</h2><p>${detail}</p>
    <p><label>Open a report data file (JSON): <input type="file" id="open-json" accept=".json,application/json"></label></p>`;
  $('#open-json').addEventListener('change', async (e) => {
    const f = e.target.files && e.target.files[0];
    if (!f) return;
    try { boot(JSON.parse(await f.text())); } catch (err) { showEmpty('That file could not be read', esc(err.message)); }
  });
  window.__tokmap = { ready: true, empty: true };
}

function boot(raw) {
  $('#empty').hidden = true;
  let data;
  try {
    data = new ReportData(raw);
  } catch (err) {
    showEmpty('This report’s data could not be read', esc(err.message));
    return;
  }
  const app = new App(data);
  try {
    app.start();
  } catch (err) {
    showEmpty('The map could not be drawn', esc(err.message));
    return;
  }
  installHook(app);
}

/**
 * Live mode: draws `raw` in place of the App on screen (or as the first one), keeping the view
 * settings that still apply; `prepare(data, prevData)` may adjust the new data first. Returns
 * { app, prev, before }: prev the replaced App (disposed), before its views' last positions
 * ([{ model, positions }]) to animate from. Throws when the data cannot be drawn.
 */
function swapData(raw, prepare = () => {}) {
  const data = new ReportData(raw);
  // Two copies of the same text are told apart by their order among equal texts.
  const seen = new Map();
  data.textKeys = data.texts.map((t) => { const n = seen.get(t) || 0; seen.set(t, n + 1); return `${n}:${t}`; });
  const prev = activeApp;
  prepare(data, prev ? prev.data : null);
  const before = prev ? prev.views.map((v) => ({ model: prev.data.models[v.model], positions: snapshotPositions(v) })) : [];
  $('#empty').hidden = true;
  const app = new App(data);
  app.start(prev);
  const hook = window.__tokmap || {};
  installHook(app);
  if (hook.live) window.__tokmap.live = hook.live;
  return { app, prev, before };
}

/** The positions a view shows right now, as (N, 3) in normalised map space. */
function snapshotPositions(v) {
  const n = v.app.data.N, out = new Float32Array(n * 3), p = [0, 0, 0];
  for (let i = 0; i < n; i++) { v.position(i, p); out[i * 3] = p[0]; out[i * 3 + 1] = p[1]; out[i * 3 + 2] = p[2]; }
  return out;
}

function installHook(app) {
  window.__tokmap = {
    ready: true,
    app,
    N: app.data.N,
    state: () => ({ ...app.state, layer: app.currentLayer(), views: app.views.length, hover: app.hover }),
    /** The layer each view shows (side by side, the paired layers). */
    viewLayers: () => app.views.map((v) => (v.currentMap ? v.currentMap.layer : null)),
    /** Colour of point i in view v as [r, g, b], and whether a legend filter hides it. */
    color: (i, v = 0) => Array.from(app.views[v].colors.subarray(i * 4, i * 4 + 3)),
    hidden: (i, v = 0) => app.isFiltered(app.views[v], i),
    visibleCount: (v = 0) => app.views[v].visibleCount,
    /** Client (page) coordinates of point i in view v, after the next frame. */
    screenPosition(i, v = 0) {
      const view = app.views[v];
      app.renderNow();
      const [x, y, , visible] = view.projectIndex(i);
      const r = view.canvas.getBoundingClientRect();
      return { x: r.left + x, y: r.top + y, visible };
    },
    position: (i, v = 0) => Array.from(app.views[v].position(i)),
    setLayer: (idx, animate = false) => app.goToLayer(idx, animate),
    select: (i) => app.select(i),
    search: (p) => { $('#search').value = p; app.applySearch(p); return app.searchCount; },
    highlighted: () => { const out = []; for (let i = 0; i < app.data.N; i++) if (app.isHighlighted(i)) out.push(i); return out; },
    placedLabels: () => app.views.map((v) => v.placedLabels || 0),
    render: () => app.renderNow(),
    /** Rotates (3D) or pans (2D) every frame for ms milliseconds; returns frame intervals and render times. */
    benchmark(ms = 2000, full = false) {
      return new Promise((resolve) => {
        const intervals = [], renders = [];
        const t0 = performance.now();
        let last = t0;
        const view = app.views[0];
        const step = (now) => {
          intervals.push(now - last);
          last = now;
          const r0 = performance.now();
          const cam = app.camera();
          if (app.state.dims === 3) cam.yaw += 0.03; else cam.cx += 4 / view.pixelsPerUnit();
          app.viewVersion++;
          app.interacting = !full;
          app.renderNow();
          const px = new Uint8Array(4);
          view.gl.readPixels(0, 0, 1, 1, view.gl.RGBA, view.gl.UNSIGNED_BYTE, px); // wait for the GPU
          renders.push(performance.now() - r0);
          if (now - t0 < ms) requestAnimationFrame(step);
          else { app.interacting = false; app.requestRender(); } if (now - t0 >= ms) resolve({ intervals: intervals.slice(1), renders, lod: view.lodActive ? view.lodCount : 0 });
        };
        requestAnimationFrame(step);
      });
    },
  };
  document.documentElement.dataset.ready = 'true';
}

async function main() {
  const live = readLive();
  if (live) {
    startLive(live, { swapData, showEmpty, tokenKey });
    return;
  }
  let raw = null;
  try {
    raw = readEmbedded();
  } catch (err) {
    showEmpty('This report’s data could not be read', esc(err.message));
    return;
  }
  if (!raw && /^https?:$/.test(location.protocol)) {
    // Development: the bare template served over HTTP loads web/sample-data.json.
    for (const url of ['sample-data.json', '../sample-data.json']) {
      try {
        const res = await fetch(url);
        if (res.ok) { raw = await res.json(); break; }
      } catch { /* try the next one */ }
    }
  }
  if (!raw) {
    showEmpty('No data in this page', 'This is tokmap’s report template. <code>tokmap viz … --out DIR</code> writes it with the maps filled in.');
    return;
  }
  boot(raw);
}

main();
