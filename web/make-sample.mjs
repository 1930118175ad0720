#!/usr/bin/env node
// Writes synthetic but structured report data (docs/REPORT_FORMAT.md):
//   web/sample-data.json        3 texts, ~60 tokens, 2 models (7 and 5 layers, paired by relative depth),
//                               2 perplexities, 2D+3D, 3 seeds; every map assessed, and one
//                               (demo-brown-gpt2, layer 2, perplexity 15, 3D) a degenerate straight line
//   web/dist/sample-big.json    100,000 tokens, one layer, one model (the performance check)
// Deterministic (seeded), so the committed sample does not change between runs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function rng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return next;
}
const r4 = (x) => Math.round(x * 1e4) / 1e4;
const enc = new TextEncoder();

/** A GPT-2-looking pre-tokenisation with byte offsets; long words split into two pieces. */
function tokenize(texts, idOf) {
  const tokens = [];
  texts.forEach((text, t) => {
    const re = / ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+/gu;
    let m, position = 0;
    while ((m = re.exec(text))) {
      const piece = m[0];
      if (/^\s+$/.test(piece)) continue;
      const start = enc.encode(text.slice(0, m.index)).length;
      const letters = /^ ?\p{L}+$/u.test(piece);
      const parts = letters && piece.trim().length > 6 ? [piece.slice(0, piece.length - 3), piece.slice(piece.length - 3)] : [piece];
      let off = start;
      parts.forEach((p, k) => {
        const len = enc.encode(p).length;
        let kind;
        if (k > 0) kind = 'continuation';
        else if (/^ ?\p{N}+$/u.test(p)) kind = 'number';
        else if (/^ ?\p{L}/u.test(p)) kind = p.startsWith(' ') || position === 0 ? 'word' : 'continuation';
        else kind = 'punctuation';
        tokens.push({ text: t, position, id: idOf(p), display: p, offset: [off, off + len], kind });
        off += len;
        position++;
      });
    }
  });
  return tokens;
}

function hashId(s) {
  let h = 2166136261;
  for (const c of s) h = Math.imul(h ^ c.codePointAt(0), 16777619);
  return (h >>> 0) % 50257;
}

function knn(vecs, k, metric = 'cosine') {
  const n = vecs.length;
  const norm = vecs.map((v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1);
  const out = [], dists = [];
  for (let i = 0; i < n; i++) {
    const cand = [];
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let d;
      if (metric === 'cosine') {
        let dot = 0;
        for (let q = 0; q < vecs[i].length; q++) dot += vecs[i][q] * vecs[j][q];
        d = 1 - dot / (norm[i] * norm[j]);
      } else {
        d = Math.sqrt(vecs[i].reduce((s, x, q) => s + (x - vecs[j][q]) ** 2, 0));
      }
      cand.push([d, j]);
    }
    cand.sort((a, b) => a[0] - b[0]);
    out.push(cand.slice(0, k).map((c) => c[1]));
    dists.push(cand.slice(0, k).map((c) => r4(c[0])));
  }
  return { neighbors: out, distances: dists };
}

/**
 * PCA of rows `vecs` (n, d) onto the top k axes by power iteration with deflation on the d x d
 * covariance (d is small here): { coords (n, k) flat, explained (k) shares of the variance }.
 */
function pcaOf(vecs, k) {
  const n = vecs.length, d = vecs[0].length;
  const mean = new Array(d).fill(0);
  for (const v of vecs) v.forEach((x, q) => { mean[q] += x / n; });
  const X = vecs.map((v) => v.map((x, q) => x - mean[q]));
  const C = Array.from({ length: d }, (_, a) => Array.from({ length: d }, (_, b) => X.reduce((s, r) => s + r[a] * r[b], 0)));
  const total = C.reduce((s, row, a) => s + row[a], 0);
  const axes = [], explained = [];
  for (let c = 0; c < k; c++) {
    let v = Array.from({ length: d }, (_, q) => 1 + q);
    let lambda = 0;
    for (let it = 0; it < 500; it++) {
      const w = C.map((row) => row.reduce((s, x, q) => s + x * v[q], 0));
      lambda = Math.sqrt(w.reduce((s, x) => s + x * x, 0)) || 1;
      v = w.map((x) => x / lambda);
    }
    let arg = 0;
    v.forEach((x, q) => { if (Math.abs(x) > Math.abs(v[arg])) arg = q; });
    if (v[arg] < 0) v = v.map((x) => -x);
    axes.push(v);
    explained.push(total > 0 ? lambda / total : 0);
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) C[a][b] -= lambda * v[a] * v[b];
  }
  return { coords: X.flatMap((r) => axes.map((v) => r.reduce((s, x, q) => s + x * v[q], 0))), explained };
}

function robustZ(values) {
  const s = [...values].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)];
  const mad = [...values].map((v) => Math.abs(v - med)).sort((a, b) => a - b)[Math.floor(s.length / 2)] || 1e-9;
  return values.map((v) => (v - med) / (1.4826 * mad));
}

function kmeans(vecs, k, rand, iters = 15) {
  const n = vecs.length, d = vecs[0].length;
  let centers = Array.from({ length: k }, (_, c) => vecs[Math.floor((c * n) / k)].slice());
  const assign = new Array(n).fill(0);
  for (let it = 0; it < iters; it++) {
    for (let i = 0; i < n; i++) {
      let best = 0, bd = Infinity;
      centers.forEach((c, ci) => { const dd = c.reduce((s, x, q) => s + (x - vecs[i][q]) ** 2, 0); if (dd < bd) { bd = dd; best = ci; } });
      assign[i] = best;
    }
    centers = centers.map((c, ci) => {
      const m = vecs.filter((_, i) => assign[i] === ci);
      return m.length ? c.map((_, q) => m.reduce((s, v) => s + v[q], 0) / m.length) : vecs[Math.floor(rand() * n)].slice();
    });
  }
  return assign;
}

function smallSample() {
  const rand = rng(7);
  const texts = [
    'The bank of the river was muddy after the storm, so we walked along the bank until the bridge.',
    'She deposited 250 dollars at the bank before the café on Rue Lépine closed; the clerk smiled.',
    'Rivers flood every spring: the banks overflow, the fields drown, and the village waits for summer.',
  ];
  const tokens = tokenize(texts, hashId);
  const N = tokens.length;
  const models = ['demo-brown-gpt2', 'demo-brown-gpt2-small'];
  const layers = [0, 1, 2, 3, 4, 5, 6];
  const modelLayers = [layers, [0, 1, 2, 3, 4]]; // the second model is shallower, as in tokmap viz
  const perplexities = [5, 15];
  const seeds = [0, 1, 2];
  const D = 8; // latent "hidden state" dimension
  const vec = () => Array.from({ length: D }, () => rand.normal());
  const keyOf = (t) => t.display.trim().toLowerCase().replace(/s$/, '');
  const wordCenter = new Map();
  for (const t of tokens) if (!wordCenter.has(keyOf(t))) wordCenter.set(keyOf(t), vec());
  const kindCenter = { word: vec(), continuation: vec(), punctuation: vec(), number: vec(), special: vec() };
  const textCenter = texts.map(() => vec());
  // "sense" groups in the deep layers: finance vs river vs weather/other
  const senseOf = (t) => (/bank|river|bridge|flood|field|mud/.test(keyOf(t)) ? (t.text === 1 ? 0 : 1) : /dollar|deposit|clerk|café|250/.test(keyOf(t)) ? 0 : /storm|spring|summer|drown|overflow/.test(keyOf(t)) ? 2 : 3);
  const senseCenter = [vec(), vec(), vec(), vec()];
  const own = tokens.map(() => vec());

  const maps = [], analysis = [];
  const pairs = [], changes = [], pca = [];
  models.forEach((modelName, model) => {
    const rot = model === 0 ? 0 : 0.5;
    const ownLayers = modelLayers[model];
    const hidden = ownLayers.map((layer) => {
      const f = layer / (ownLayers.length - 1);
      return tokens.map((t, i) => {
        const w = wordCenter.get(keyOf(t)), k = kindCenter[t.kind], tc = textCenter[t.text], sc = senseCenter[senseOf(t)];
        const v = new Array(D).fill(0).map((_, q) =>
          (1 - f) * (1.6 * w[q] + 0.7 * k[q]) + f * (1.2 * tc[q] + 1.5 * sc[q] + 0.3 * k[q]) + (0.15 + 0.35 * f * (1 + 0.5 * model)) * own[i][q]);
        if (t.position === 0) v[0] += 6 + 3 * f; // the first token's outsized norm
        return v;
      });
    });
    // What changed between layers and the PCA views (docs/REPORT_FORMAT.md), computed from the
    // latent states without drawing random numbers, so everything else stays as it was.
    ownLayers.forEach((layer, li) => {
      const H = hidden[li];
      const view = pcaOf(H, 3);
      pca.push({ model, layer, dims: 3, coords: view.coords.map(r4), explained: view.explained.map(r4) });
      if (li === 0) return;
      const k = Math.min(10, N - 1);
      const a = knn(hidden[li - 1], k).neighbors, b = knn(H, k).neighbors;
      const jaccard = a.map((x, i) => { const s = x.filter((j) => b[i].includes(j)).length; return r4(s / (2 * k - s)); });
      const most_changed = jaccard.map((j, i) => [j, i]).sort((p, q) => p[0] - q[0] || p[1] - q[1]).slice(0, 20).map((p) => p[1]);
      changes.push({ model, layer, previous_layer: ownLayers[li - 1], k, jaccard, mean: r4(jaccard.reduce((x, y) => x + y, 0) / N), most_changed });
    });
    ownLayers.forEach((layer, li) => {
      const H = hidden[li];
      const { neighbors, distances } = knn(H, 5);
      const meanD = H.map((_, i) => {
        const all = H.map((w, j) => (j === i ? Infinity : Math.sqrt(w.reduce((s, x, q) => s + (x - H[i][q]) ** 2, 0)))).sort((a, b) => a - b);
        return (all[0] + all[1] + all[2] + all[3] + all[4]) / 5;
      });
      const outlier = robustZ(meanD).map((z) => r4(z));
      const top = outlier.map((z, i) => [z, i]).sort((a, b) => b[0] - a[0]).slice(0, 6).map((p) => p[1]);
      analysis.push({ model, layer, neighbors, neighbor_distances: distances, cluster: kmeans(H, 5, rand), outlier, top_outliers: top });
      const f = layer / (ownLayers.length - 1);
      for (const perplexity of perplexities) {
        for (const dims of [2, 3]) {
          const spread = perplexity === 5 ? 1.35 : 1.0;
          const base = H.map((v, i) => {
            const p = [v[0] * 0.2 + v[1], v[2] + 0.3 * v[3], v[4] + 0.3 * v[5]].slice(0, dims).map((x) => x * 9 * spread);
            const c = Math.cos(rot), s = Math.sin(rot);
            return dims === 2 ? [c * p[0] - s * p[1], s * p[0] + c * p[1]] : [c * p[0] - s * p[2], p[1], s * p[0] + c * p[2]];
          });
          const coords = base.flat().map(r4);
          const jitter = tokens.map((t) => 1 + (t.kind === 'punctuation' ? 3 : 0) + 2 * rand());
          const seed_coords = seeds.slice(1).map(() => base.flatMap((p, i) => p.map((x) => r4(x + rand.normal() * jitter[i] * (1 + f))))) ;
          const point_stability = jitter.map((j) => r4(Math.max(0, Math.min(1, 1.08 - j / 5 + 0.05 * rand.normal()))));
          maps.push({
            model, layer, perplexity, dims, coords, seed_coords,
            kl: r4(0.35 + 0.5 * (1 - f) + (perplexity === 5 ? 0.2 : 0) + 0.05 * rand()),
            trustworthiness: r4(0.78 + 0.15 * f + (dims === 3 ? 0.02 : 0) + 0.02 * rand()),
            continuity: r4(0.8 + 0.12 * f + 0.02 * rand()),
            knn_preservation: r4(0.32 + 0.3 * f + 0.04 * rand()),
            stability: r4(point_stability.reduce((a, b) => a + b, 0) / N),
            point_stability,
          });
        }
      }
    });
  });
  // Assessments (docs/REPORT_FORMAT.md, "Map assessment"), derived from the numbers above without
  // drawing more random values; then one map collapsed onto a line, as a broken optimiser leaves it.
  for (const m of maps) {
    m.k = 10;
    m.kl_uniform = r4(m.kl / 0.3);
    m.assessment = assessSample(m, N);
    m.seed_kl = m.seed_coords.map(() => m.kl);
    m.seed_assessments = m.seed_coords.map(() => ({ ...assessSample(m, N), ratings: { ...assessSample(m, N).ratings, trustworthiness: null, continuity: null, knn_preservation: null } }));
  }
  const line = maps.find((m) => m.model === 0 && m.layer === 2 && m.perplexity === 15 && m.dims === 3);
  const lineCoords = (shift) => tokens.flatMap((_, i) => { const t = ((i * 37) % N) / N * 40 - 20 + shift; return [r4(t), r4(2 * t), r4(-t + 1e-3 * (i % 3))]; });
  line.coords = lineCoords(0);
  line.seed_coords = line.seed_coords.map((_, s) => lineCoords(s + 1));
  line.kl = r4(0.97 * line.kl_uniform);
  line.trustworthiness = 0.71;
  const lineAssessment = {
    rating: 'degenerate', flags: ['line', 'uniform_kl', 'low_trustworthiness'],
    reasons: ['the 3D map is a straight line (its width is 0.0% of its length): a collapsed optimisation, not structure',
      `KL ${line.kl.toFixed(3)} is 97% of the KL of a map with every point in one place (${line.kl_uniform.toFixed(3)}): the map explains next to nothing of P`,
      'trustworthiness 0.71 (good from 0.90)'],
    effective_dims: 1, spread: [18.9, 0.0005, 0.0001], coincident_fraction: 0, kl_ratio: 0.97, random_trustworthiness: 0.51,
    neighbors_meaningful: true, ratings: { kl: 'degenerate', trustworthiness: 'poor', continuity: 'good', knn_preservation: 'fair' },
  };
  line.assessment = lineAssessment;
  line.seed_kl = line.seed_coords.map(() => line.kl);
  line.seed_assessments = line.seed_coords.map(() => ({ ...lineAssessment, ratings: { ...lineAssessment.ratings, trustworthiness: null, continuity: null, knn_preservation: null } }));

  // Matching relative depth, as tokmap viz pairs them: layer l of 6 with round(l * 4 / 6) of 4.
  // Overlap is a share of k = 10 neighbours, so a multiple of 0.1.
  layers.forEach((layer) => {
    const overlap = tokens.map(() => Math.round(10 * Math.min(1, Math.max(0, 0.45 + 0.25 * rand.normal()))) / 10);
    const layer_b = Math.round((layer * 4) / 6);
    const most_changed = overlap.map((o, i) => [o, i]).sort((p, q) => p[0] - q[0] || p[1] - q[1]).slice(0, 20).map((p) => p[1]);
    pairs.push({ a: 0, b: 1, layer_a: layer, layer_b, k: 10, overlap, mean: r4(overlap.reduce((a, b) => a + b, 0) / N), most_changed });
  });
  return {
    version: 1,
    title: `tokmap — ${models.join(' vs ')}, ${texts.length} texts, ${N} tokens`,
    created_with: 'tokmap 0.1.0 viz --model demo-brown-gpt2 --model demo-brown-gpt2-small --file sample.txt --layers all --dims 2,3 --perplexity 5,15 --seeds 3 --highlight bank --out report',
    texts, models, layers, perplexities, seeds, dims: [2, 3], tokens, maps, analysis,
    comparison: { pairs }, changes, pca,
    settings: { metric: 'cosine', normalize: 'center', exclude_first: false, highlight: ['bank'] },
  };
}

/** A plausible assessment of a healthy synthetic map, from its numbers (same grades as src/analysis). */
function assessSample(m, N) {
  const grade = (v, good, fair) => (v >= good ? 'good' : v >= fair ? 'fair' : 'poor');
  const ratio = m.kl / m.kl_uniform;
  const ratings = {
    kl: ratio < 0.5 ? 'good' : ratio < 0.75 ? 'fair' : 'poor',
    trustworthiness: grade(m.trustworthiness, 0.9, 0.8),
    continuity: grade(m.continuity, 0.9, 0.8),
    knn_preservation: grade(m.knn_preservation, 0.5, 0.3),
  };
  const order = ['good', 'fair', 'poor', 'degenerate'];
  const reasons = [], flags = [];
  for (const name of ['trustworthiness', 'continuity']) {
    if (ratings[name] !== 'good') { flags.push(`low_${name}`); reasons.push(`${name} ${m[name].toFixed(2)} (good from 0.90)`); }
  }
  const rating = order[Math.max(order.indexOf(ratings.kl), order.indexOf(ratings.trustworthiness), order.indexOf(ratings.continuity))];
  return {
    rating, flags, reasons, effective_dims: m.dims, spread: m.dims === 2 ? [14, 10] : [14, 11, 9], coincident_fraction: 0,
    kl_ratio: r4(ratio), random_trustworthiness: r4(1 - ((N - 11) * (N - 10)) / ((N - 1) * (2 * N - 31))), neighbors_meaningful: N >= 12, ratings,
  };
}

function bigSample(N = 100000) {
  const rand = rng(11);
  const words = ('the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if more no out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three').split(' ');
  const tokens = [], texts = [];
  const clusters = 40;
  const centers3 = Array.from({ length: clusters }, () => [rand.normal() * 30, rand.normal() * 30, rand.normal() * 30]);
  const centers2 = Array.from({ length: clusters }, () => [rand.normal() * 40, rand.normal() * 40]);
  const clusterOf = [];
  const perText = 250;
  for (let t = 0; tokens.length < N; t++) {
    let text = '';
    for (let p = 0; p < perText && tokens.length < N; p++) {
      const w = (p === 0 ? '' : ' ') + (p % 17 === 16 ? ',' : words[Math.floor(Math.pow(rand(), 2) * words.length)]);
      const display = w === ' ,' ? ',' : w;
      const start = text.length;
      text += display;
      const kind = display === ',' ? 'punctuation' : 'word';
      tokens.push({ text: t, position: p, id: hashId(display), display, offset: [start, start + display.length], kind });
      clusterOf.push(Math.floor(rand() * clusters));
    }
    texts.push(text);
  }
  const c2 = [], c3 = [];
  for (let i = 0; i < N; i++) {
    const k = clusterOf[i], s = 4 + (k % 5) * 1.5;
    c2.push(r4(centers2[k][0] + rand.normal() * s), r4(centers2[k][1] + rand.normal() * s));
    c3.push(r4(centers3[k][0] + rand.normal() * s), r4(centers3[k][1] + rand.normal() * s), r4(centers3[k][2] + rand.normal() * s));
  }
  const members = Array.from({ length: clusters }, () => []);
  clusterOf.forEach((k, i) => members[k].push(i));
  const neighbors = [], neighbor_distances = [], outlier = [];
  for (let i = 0; i < N; i++) {
    const m = members[clusterOf[i]];
    neighbors.push(Array.from({ length: 5 }, () => m[Math.floor(rand() * m.length)]));
    let d = 0.05 + 0.1 * rand();
    neighbor_distances.push(Array.from({ length: 5 }, () => r4((d += 0.02 * rand()))));
    outlier.push(r4(Math.abs(rand.normal()) * (rand() < 0.01 ? 4 : 1)));
  }
  const top = outlier.map((z, i) => [z, i]).sort((a, b) => b[0] - a[0]).slice(0, 10).map((p) => p[1]);
  const common = { model: 0, layer: 12, perplexity: 30, kl: 2.41, trustworthiness: 0.912, continuity: 0.934, knn_preservation: 0.41, stability: null, point_stability: null };
  return {
    version: 1,
    title: `tokmap — synthetic, ${texts.length} texts, ${N.toLocaleString('en')} tokens`,
    created_with: 'web/make-sample.mjs (synthetic performance sample)',
    texts, models: ['synthetic-gpt2'], layers: [12], perplexities: [30], seeds: [0], dims: [2, 3], tokens,
    maps: [{ ...common, dims: 2, coords: c2 }, { ...common, dims: 3, coords: c3 }],
    analysis: [{ model: 0, layer: 12, neighbors, neighbor_distances, cluster: clusterOf, outlier, top_outliers: top }],
    settings: { metric: 'cosine', normalize: 'center', exclude_first: true, highlight: [] },
  };
}

const t0 = Date.now();
const small = smallSample();
fs.writeFileSync(path.join(here, 'sample-data.json'), JSON.stringify(small) + '\n');
const bigPath = path.join(here, 'dist', 'sample-big.json');
if (process.argv.includes('--no-big')) {
  console.log(`web: sample-data.json (${small.tokens.length} tokens, ${small.maps.length} maps)`);
} else {
  fs.mkdirSync(path.dirname(bigPath), { recursive: true });
  const big = bigSample();
  fs.writeFileSync(bigPath, JSON.stringify(big) + '\n');
  console.log(`web: sample-data.json (${small.tokens.length} tokens, ${small.maps.length} maps), dist/sample-big.json (${big.tokens.length} tokens, ${(fs.statSync(bigPath).size / 1e6).toFixed(1)} MB) in ${Date.now() - t0} ms`);
}
