// Live mode: from one run's picture to the next. Tokens of both runs are matched by text and
// byte offset; a recomputed 2D map is turned (rotation or reflection, t-SNE does not care) to
// line up with the previous one so the picture stays recognisable; then every point moves
// from where it was to where it now is, and new tokens fly out from their nearest neighbour in
// their own text.

/** For each token of `data`, the index of the same token in `prev` or -1. */
export function matchTokens(prev, data, tokenKey) {
  const match = new Int32Array(data.N).fill(-1);
  if (!prev) return match;
  const old = new Map();
  for (let i = 0; i < prev.N; i++) old.set(tokenKey(prev, i), i);
  for (let i = 0; i < data.N; i++) { const j = old.get(tokenKey(data, i)); if (j !== undefined) match[i] = j; }
  return match;
}

/**
 * Turns each 2D t-SNE map of `data` (seed 0, in the page's normalised coordinates) by the
 * rotation or reflection plus shift that best lays its matched tokens onto the same map of
 * `prev` (orthogonal Procrustes; scale stays, both are normalised). Edits the cached
 * coordinates the page draws, so everything downstream sees the turned map.
 */
export function alignMaps(prev, data, match) {
  let turned = 0;
  for (const m of data.mapIndex.values()) {
    if (m.dims !== 2) continue;
    const model = prev.models.indexOf(data.models[m.model]);
    const pm = model >= 0 ? prev.map(model, m.layer, m.perplexity, 2) : null;
    if (!pm) continue;
    const a = data.coords(m, 0), b = prev.coords(pm, 0);
    const pairs = [];
    for (let i = 0; i < data.N; i++) if (match[i] >= 0) pairs.push(i);
    if (pairs.length < 3) continue;
    let ax = 0, ay = 0, bx = 0, by = 0;
    for (const i of pairs) { ax += a[i * 3]; ay += a[i * 3 + 1]; bx += b[match[i] * 3]; by += b[match[i] * 3 + 1]; }
    const n = pairs.length;
    ax /= n; ay /= n; bx /= n; by /= n;
    // Best angle without and with a mirror (y -> -y) first; keep whichever fits better.
    let best = null;
    for (const flip of [1, -1]) {
      let c = 0, s = 0;
      for (const i of pairs) {
        const x = a[i * 3] - ax, y = flip * (a[i * 3 + 1] - ay);
        const u = b[match[i] * 3] - bx, v = b[match[i] * 3 + 1] - by;
        c += x * u + y * v; s += x * v - y * u;
      }
      const fit = Math.hypot(c, s);
      if (!best || fit > best.fit + 1e-9) best = { fit, flip, cos: c / (fit || 1), sin: s / (fit || 1) };
    }
    if (!best.fit) continue;
    const { flip, cos, sin } = best;
    for (let i = 0; i < data.N; i++) {
      const x = a[i * 3] - ax, y = flip * (a[i * 3 + 1] - ay);
      a[i * 3] = bx + cos * x - sin * y;
      a[i * 3 + 1] = by + sin * x + cos * y;
    }
    turned++;
  }
  return turned;
}

/** Where each new token starts: its old place, or that of its nearest matched neighbour in its text. */
function startPositions(data, match, old, to) {
  const n = data.N, from = new Float32Array(n * 3);
  const copy = (i, src, j) => { from[i * 3] = src[j * 3]; from[i * 3 + 1] = src[j * 3 + 1]; from[i * 3 + 2] = src[j * 3 + 2]; };
  const order = [...Array(n).keys()].sort((x, y) => data.textIndex[x] - data.textIndex[y] || data.position[x] - data.position[y]);
  const anchor = new Int32Array(n).fill(-1);
  for (const dir of [1, -1]) {
    let last = -1, text = -1;
    for (let k = dir > 0 ? 0 : n - 1; k >= 0 && k < n; k += dir) {
      const i = order[k];
      if (data.textIndex[i] !== text) { text = data.textIndex[i]; last = -1; }
      if (match[i] >= 0) last = match[i];
      else if (anchor[i] < 0) anchor[i] = last;
    }
  }
  for (let i = 0; i < n; i++) {
    if (match[i] >= 0) copy(i, old, match[i]);
    else if (anchor[i] >= 0) copy(i, old, anchor[i]);
    else copy(i, to, i);
  }
  return from;
}

const ease = (t) => (t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2);

/**
 * Moves the views of `app` from the positions in `before` ([{ model, positions }], those the
 * replaced page showed) to their own, over `ms`. `onFrame(t)` sees the eased progress.
 * Resolves when done, or at once when there is nothing to animate. Any layer change, model
 * switch or new data ends it early: the view then simply shows its own positions.
 */
export function animateViews(app, before, match, ms, onFrame = () => {}) {
  const runs = [];
  app.views.forEach((v, k) => {
    const prev = before.find((b) => b.model === app.data.models[v.model]) || before[k] || before[0];
    if (!prev || !v.tween.a) return;
    const n = app.data.N, to = new Float32Array(n * 3), p = [0, 0, 0];
    for (let i = 0; i < n; i++) { v.position(i, p); to[i * 3] = p[0]; to[i * 3 + 1] = p[1]; to[i * 3 + 2] = p[2]; }
    const from = startPositions(app.data, match, prev.positions, to);
    v.setPositions(from, to);
    v.tween.t = 0;
    runs.push({ v, to });
  });
  if (!runs.length || !(ms > 0)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const step = (now) => {
      const live = runs.filter((r) => r.v.tween.b === r.to && !app.disposed);
      const t = Math.min(1, (now - t0) / ms);
      for (const r of live) r.v.tween.t = ease(t);
      app.viewVersion++;
      onFrame(ease(t));
      if (t < 1 && live.length) {
        app.renderNow();
        requestAnimationFrame(step);
        return;
      }
      // Back to the page's own layer positions (identical to `to` at the end).
      if (live.length) app.updatePositions();
      app.requestRender();
      resolve(true);
    };
    requestAnimationFrame(step);
  });
}
