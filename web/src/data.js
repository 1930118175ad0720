// Reads and indexes the report object of docs/REPORT_FORMAT.md. Nothing else in the page
// looks at the raw JSON.

const KINDS = ['word', 'continuation', 'punctuation', 'number', 'special'];
export const RATINGS = ['good', 'fair', 'poor', 'degenerate'];

export class ReportData {
  constructor(raw) {
    if (!raw || typeof raw !== 'object') throw new Error('the report data is not an object');
    if (raw.version !== 1) throw new Error(`unsupported report format version ${raw.version}`);
    if (!Array.isArray(raw.tokens) || !Array.isArray(raw.maps)) throw new Error('the report has no tokens or maps');
    this.raw = raw;
    this.title = raw.title || 'tokmap report';
    this.createdWith = raw.created_with || '';
    this.texts = raw.texts || [];
    this.models = raw.models && raw.models.length ? raw.models : ['model'];
    this.tokens = raw.tokens;
    this.N = raw.tokens.length;
    this.settings = raw.settings || {};
    this.comparison = raw.comparison || null;

    const maps = raw.maps.filter((m) => {
      const ok = Array.isArray(m.coords) && m.coords.length === this.N * m.dims && (m.dims === 2 || m.dims === 3);
      if (!ok) console.warn('tokmap: skipping a map with inconsistent coordinates', m.model, m.layer, m.dims);
      return ok;
    });
    if (!maps.length) throw new Error('the report has no usable maps');
    const uniq = (xs) => [...new Set(xs)].sort((a, b) => a - b);
    this.layers = uniq(raw.layers && raw.layers.length ? raw.layers : maps.map((m) => m.layer)).filter((l) => maps.some((m) => m.layer === l));
    this.perplexities = uniq(maps.map((m) => m.perplexity));
    this.dims = uniq(maps.map((m) => m.dims));
    this.mapIndex = new Map();
    for (const m of maps) this.mapIndex.set(key(m.model, m.layer, m.perplexity, m.dims), m);
    this.analysisIndex = new Map();
    for (const a of raw.analysis || []) this.analysisIndex.set(`${a.model}|${a.layer}`, a);
    // Each model's own layers (models of different depth: a 6-layer and a 4-layer model).
    this.modelLayers = this.models.map((_, m) => uniq(maps.filter((x) => x.model === m).map((x) => x.layer)));
    this.pairs = this.comparison && Array.isArray(this.comparison.pairs)
      ? this.comparison.pairs.filter((p) => p && Array.isArray(p.overlap) && p.overlap.length === this.N && p.a !== p.b)
      : [];
    // The logit lens (causal LMs only): per model, its layers' next-token predictions.
    this.lensIndex = new Map();
    this.lensModels = new Map();
    for (const l of Array.isArray(raw.lens) ? raw.lens : []) {
      if (!l || !Array.isArray(l.layers) || !Array.isArray(l.final_top1) || l.final_top1.length !== this.N) continue;
      this.lensModels.set(l.model, l);
      for (const layer of l.layers) {
        if (layer && Array.isArray(layer.top_ids) && layer.top_ids.length === this.N) this.lensIndex.set(`${l.model}|${layer.layer}`, layer);
      }
    }
    // Neighbourhood change between consecutive mapped layers, and the PCA views, by model|layer.
    this.changeIndex = new Map();
    for (const c of Array.isArray(raw.changes) ? raw.changes : []) {
      if (c && Array.isArray(c.jaccard) && c.jaccard.length === this.N) this.changeIndex.set(`${c.model}|${c.layer}`, c);
    }
    this.pcaIndex = new Map();
    for (const v of Array.isArray(raw.pca) ? raw.pca : []) {
      if (v && Array.isArray(v.coords) && v.dims >= 1 && v.coords.length === this.N * v.dims) this.pcaIndex.set(`${v.model}|${v.layer}`, v);
    }
    this._pcaMaps = new Map();
    this.maxSeeds = Math.max(1, ...maps.map((m) => 1 + (Array.isArray(m.seed_coords) ? m.seed_coords.length : 0)));
    this.seedLabels = raw.seeds && raw.seeds.length >= this.maxSeeds ? raw.seeds.slice(0, this.maxSeeds) : [...Array(this.maxSeeds).keys()];

    // Per-token derived values.
    this.textIndex = new Int32Array(this.N);
    this.position = new Int32Array(this.N);
    this.kind = new Int32Array(this.N);
    this.keys = new Array(this.N);
    let maxPos = 0;
    for (let i = 0; i < this.N; i++) {
      const t = this.tokens[i];
      // A token of incomplete UTF-8 bytes ("<0xE6><0x9D>") is shown as the character its
      // neighbours complete ("label"); the byte form stays in t.bytesDisplay.
      if (typeof t.label === 'string' && t.label) { t.bytesDisplay = t.display; t.display = t.label; }
      this.textIndex[i] = t.text | 0;
      this.position[i] = t.position | 0;
      maxPos = Math.max(maxPos, t.position | 0);
      const k = KINDS.indexOf(t.kind);
      this.kind[i] = k < 0 ? 4 : k;
      this.keys[i] = displayKey(t.display);
    }
    this.maxPosition = maxPos;
    this.kinds = KINDS;
    this._bytes = new Map();
    this._norm = new Map();
    this._occurrences = null;
  }

  map(model, layer, perplexity, dims) {
    return this.mapIndex.get(key(model, layer, perplexity, dims)) || null;
  }

  /** The map for this layer or, failing that, for the nearest layer that has one. */
  mapNear(model, layerIdx, perplexity, dims) {
    for (let d = 0; d < this.layers.length; d++) {
      for (const s of [layerIdx - d, layerIdx + d]) {
        if (s < 0 || s >= this.layers.length) continue;
        const m = this.map(model, this.layers[s], perplexity, dims);
        if (m) return m;
      }
    }
    return null;
  }

  analysis(model, layer) {
    return this.analysisIndex.get(`${model}|${layer}`) || null;
  }

  /**
   * The logit lens of a model at a layer: { layer, top_ids, top_probs, entropy, final_top1,
   * vocab_size, tokens } or null (no lens: an encoder, or an older report).
   */
  lens(model, layer) {
    const l = this.lensModels.get(model), at = this.lensIndex.get(`${model}|${layer}`);
    return l && at ? { ...at, final_top1: l.final_top1, final_layer: l.final_layer, vocab_size: l.vocab_size, tokens: l.tokens || {} } : null;
  }

  /** Coordinates of one map and seed, centred and scaled to unit RMS radius, as (N, 3). */
  coords(map, seed = 0) {
    const k = `${key(map.model, map.layer, map.perplexity, map.dims)}|${seed}`;
    let out = this._norm.get(k);
    if (out) return out;
    const src = seed > 0 && map.seed_coords && map.seed_coords[seed - 1] ? map.seed_coords[seed - 1] : map.coords;
    const n = this.N, d = map.dims;
    // Centre on the per-axis median and scale so that 95% of the points lie within radius 1
    // and every point within radius 1.45 (robust to a few far outliers, nothing off-screen).
    const mean = [0, 0, 0];
    const col = new Float64Array(n);
    for (let j = 0; j < d; j++) {
      for (let i = 0; i < n; i++) col[i] = +src[i * d + j] || 0;
      col.sort();
      mean[j] = n ? col[n >> 1] : 0;
    }
    const rad = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let ss = 0;
      for (let j = 0; j < d; j++) { const v = (+src[i * d + j] || 0) - mean[j]; ss += v * v; }
      rad[i] = Math.sqrt(ss);
    }
    rad.sort();
    const r = n ? Math.max(rad[Math.min(n - 1, Math.floor(0.95 * n))], rad[n - 1] / 1.45) : 1;
    const scale = r > 0 ? 1 / r : 1;
    out = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) {
      const v = ((+src[i * d + j] || 0) - mean[j]) * scale;
      out[i * 3 + j] = Number.isFinite(v) ? v : 0;
    }
    this._norm.set(k, out);
    return out;
  }

  /**
   * The assessment of one map and seed (docs/REPORT_FORMAT.md, "Map assessment"), or null for
   * reports written before assessments existed.
   */
  assessment(map, seed = 0) {
    if (!map) return null;
    if (seed > 0 && Array.isArray(map.seed_assessments) && map.seed_assessments[seed - 1]) return map.seed_assessments[seed - 1];
    return map.assessment && typeof map.assessment === 'object' ? map.assessment : null;
  }

  /** 0 good … 3 degenerate; -1 when the map has no assessment. */
  ratingRank(map, seed = 0) {
    const a = this.assessment(map, seed);
    return a ? RATINGS.indexOf(a.rating) : -1;
  }

  /** Every map whose first seed is rated degenerate, in report order. */
  degenerateMaps() {
    return [...this.mapIndex.values()].filter((m) => this.ratingRank(m) === 3);
  }

  /**
   * Where the page should open: the default (layer index, perplexity, dims) unless that map is
   * degenerate and some map of the model is not. Then the nearest usable map: not poor if
   * possible, then the nearest layer, the same dims, the same perplexity, the better rating.
   * Returns { layerIdx, perplexity, dims, moved } (`moved`: it differs from the default).
   */
  openingView(model, layers, layerIdx, perplexity, dims) {
    const start = { layerIdx, perplexity, dims, moved: false };
    const first = this.mapNearLayer(model, layers[layerIdx], perplexity, dims);
    if (!first || this.ratingRank(first) < 3) return start;
    let best = null, bestKey = null;
    layers.forEach((layer, idx) => {
      for (const p of this.perplexities) {
        for (const d of this.dims) {
          const m = this.map(model, layer, p, d);
          const rank = m ? this.ratingRank(m) : -1;
          if (rank < 0 || rank >= 3) continue;
          const key = [rank >= 2 ? 1 : 0, Math.abs(idx - layerIdx), d === dims ? 0 : 1, p === perplexity ? 0 : 1, rank];
          if (!bestKey || lexLess(key, bestKey)) {
            best = { layerIdx: idx, perplexity: p, dims: d, moved: true };
            bestKey = key;
          }
        }
      }
    });
    return best || start;
  }

  /** How token neighbourhoods changed from the previous mapped layer to `layer`, or null. */
  change(model, layer) {
    return this.changeIndex.get(`${model}|${layer}`) || null;
  }

  /**
   * The PCA view of (model, layer) in `dims` dimensions as a map-like object ({ model, layer,
   * dims, coords, pca: true, explained }; perplexity 'PCA'), so the page draws it like a t-SNE
   * map; null when the report has none. A 2D view is the first two axes of the stored ones.
   */
  pcaMap(model, layer, dims) {
    const k = `${model}|${layer}|${dims}`;
    if (this._pcaMaps.has(k)) return this._pcaMaps.get(k);
    const v = this.pcaIndex.get(`${model}|${layer}`);
    let out = null;
    if (v) {
      const d = Math.min(dims, v.dims), n = this.N;
      const coords = new Array(n * d);
      for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) coords[i * d + j] = v.coords[i * v.dims + j];
      out = { model, layer, perplexity: 'PCA', dims: d, coords, pca: true, explained: (v.explained || []).slice(0, d) };
    }
    this._pcaMaps.set(k, out);
    return out;
  }

  /** The PCA view of this model nearest to the given layer number (its own layers). */
  pcaMapNearLayer(model, layer, dims) {
    const exact = this.pcaMap(model, layer, dims);
    if (exact) return exact;
    let best = null, bestD = Infinity;
    for (const l of this.modelLayers[model] || []) {
      const m = this.pcaMap(model, l, dims);
      if (m && Math.abs(l - layer) < bestD) { best = m; bestD = Math.abs(l - layer); }
    }
    return best;
  }

  seedCount(map) {
    return 1 + (Array.isArray(map.seed_coords) ? map.seed_coords.length : 0);
  }

  /** The token's text split around the token (offsets are byte offsets into UTF-8). */
  context(i, radius = 90) {
    const t = this.tokens[i];
    const text = this.texts[t.text] ?? '';
    let bytes = this._bytes.get(t.text);
    if (!bytes) { bytes = new TextEncoder().encode(text); this._bytes.set(t.text, bytes); }
    const [a, b] = Array.isArray(t.offset) ? t.offset : [0, 0];
    const dec = new TextDecoder('utf-8');
    const lo = Math.max(0, Math.min(a, bytes.length)), hi = Math.max(lo, Math.min(b, bytes.length));
    let before = dec.decode(bytes.subarray(0, lo));
    const token = dec.decode(bytes.subarray(lo, hi));
    let after = dec.decode(bytes.subarray(hi));
    if (before.length > radius) before = '…' + before.slice(before.length - radius).replace(/^\S*\s/, '');
    if (after.length > radius) after = after.slice(0, radius).replace(/\s\S*$/, '') + '…';
    return { before, token, after };
  }

  /** Every token index that shares token i's display string (trimmed). */
  occurrences(i) {
    if (!this._occurrences) {
      this._occurrences = new Map();
      for (let j = 0; j < this.N; j++) {
        const k = this.keys[j];
        let list = this._occurrences.get(k);
        if (!list) this._occurrences.set(k, (list = []));
        list.push(j);
      }
    }
    return this._occurrences.get(this.keys[i]) || [i];
  }

  /** The map of this model nearest to the given layer number (the model's own layers). */
  mapNearLayer(model, layer, perplexity, dims) {
    const exact = this.map(model, layer, perplexity, dims);
    if (exact) return exact;
    const own = this.modelLayers[model] || [];
    let best = null, bestD = Infinity;
    for (const l of own) {
      const m = this.map(model, l, perplexity, dims);
      const dist = Math.abs(l - layer);
      if (m && dist < bestD) { best = m; bestD = dist; }
    }
    return best;
  }

  /**
   * The layer of model `other` that comparison data pair with layer `layer` of model `model`
   * (matching relative depth: layer 6 of a 6-layer model with layer 4 of a 4-layer one), and
   * the pair, in either direction; null when the report pairs none.
   */
  pairedLayer(model, layer, other) {
    if (model === other) return { layer, pair: null };
    const fwd = this.pairs.find((p) => p.a === model && p.b === other && p.layer_a === layer);
    if (fwd) return { layer: fwd.layer_b, pair: fwd };
    // The other way round several layers of the deeper model may pair with one of the
    // shallower: take the one at the nearest relative depth (the lower one on a tie).
    const back = this.pairs.filter((p) => p.a === other && p.b === model && p.layer_b === layer);
    if (!back.length) return null;
    const depth = (m) => { const ls = this.modelLayers[m] || []; return Math.max(1, ls.length ? ls[ls.length - 1] : 1); };
    const want = (layer * depth(other)) / depth(model);
    back.sort((p, q) => Math.abs(p.layer_a - want) - Math.abs(q.layer_a - want) || p.layer_a - q.layer_a);
    return { layer: back[0].layer_a, pair: back[0] };
  }

  /** Comparison pairs that involve this model at this layer, in either direction. */
  pairsAt(model, layer) {
    return this.pairs.filter((p) => (p.a === model && p.layer_a === layer) || (p.b === model && p.layer_b === layer));
  }

  /** The first pair for model a's layer (kept for callers that know only a layer). */
  comparisonPair(layer) {
    return this.pairs.find((p) => p.layer_a === layer) || null;
  }
}

export function displayKey(display) {
  const s = String(display ?? '');
  const t = s.trim();
  return t.length ? t : s;
}

/** Human-readable form of a token's display string: a leading space becomes a small marker. */
export function showToken(display) {
  const s = String(display ?? '');
  return s.replace(/^ /, '\u2423').replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5');
}

function lexLess(a, b) {
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return a[k] < b[k];
  return false;
}

function key(model, layer, perplexity, dims) {
  return `${model}|${layer}|${perplexity}|${dims}`;
}
