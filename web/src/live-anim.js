// Live mode: from one run's picture to the next. Tokens of both runs are matched by text and
// byte offset; a recomputed map is turned (rotation or mirror image, t-SNE does not care) to
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
 * Turns each t-SNE map of `data` (every seed, in the page's normalised coordinates) by the
 * rotation or mirror image plus shift that best lays its matched tokens onto the same map of
 * `prev` (orthogonal Procrustes; scale stays, both are normalised). Edits the cached
 * coordinates the page draws, so everything downstream sees the turned map. Returns how many
 * maps were turned.
 */
export function alignMaps(prev, data, match) {
  const pairs = [];
  for (let i = 0; i < data.N; i++) if (match[i] >= 0) pairs.push(i);
  if (pairs.length < 3) return 0;
  let turned = 0;
  for (const m of data.mapIndex.values()) {
    const model = prev.models.indexOf(data.models[m.model]);
    const pm = model >= 0 ? prev.map(model, m.layer, m.perplexity, m.dims) : null;
    if (!pm) continue;
    for (let seed = 0; seed < Math.min(data.seedCount(m), prev.seedCount(pm)); seed++) {
      if (alignOne(data.coords(m, seed), prev.coords(pm, seed), pairs, match, m.dims, data.N)) turned++;
    }
  }
  return turned;
}

/** Lays `a` (N, 3) onto `b` at the matched pairs, in place; `dims` 2 or 3. */
function alignOne(a, b, pairs, match, dims, n) {
  const ca = [0, 0, 0], cb = [0, 0, 0];
  for (const i of pairs) for (let k = 0; k < 3; k++) { ca[k] += a[i * 3 + k]; cb[k] += b[match[i] * 3 + k]; }
  for (let k = 0; k < 3; k++) { ca[k] /= pairs.length; cb[k] /= pairs.length; }
  // The last axis mirrored or not; the rotation that fits best for each; keep the better one.
  let best = null;
  for (const flip of [1, -1]) {
    const S = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
    for (const i of pairs) {
      const x = [a[i * 3] - ca[0], a[i * 3 + 1] - ca[1], a[i * 3 + 2] - ca[2]];
      x[dims - 1] *= flip;
      for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) S[r][c] += x[r] * (b[match[i] * 3 + c] - cb[c]);
    }
    const fit = dims === 2 ? rotation2(S) : rotation3(S);
    if (!best || fit.score > best.score + 1e-9) best = { ...fit, flip };
  }
  if (!(best.score > 0)) return false;
  const R = best.R, x = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) x[k] = a[i * 3 + k] - ca[k];
    x[dims - 1] *= best.flip;
    for (let r = 0; r < dims; r++) a[i * 3 + r] = cb[r] + R[r][0] * x[0] + R[r][1] * x[1] + R[r][2] * x[2];
  }
  return true;
}

/** The 2D rotation R maximising sum y . R x, from S = sum x y^T; score is that sum. */
function rotation2(S) {
  const c = S[0][0] + S[1][1], s = S[0][1] - S[1][0], h = Math.hypot(c, s) || 1;
  return { score: Math.hypot(c, s), R: [[c / h, -s / h, 0], [s / h, c / h, 0], [0, 0, 1]] };
}

/** The 3D rotation maximising sum y . R x (Horn's quaternion method), from S = sum x y^T. */
function rotation3(S) {
  const [[xx, xy, xz], [yx, yy, yz], [zx, zy, zz]] = S;
  const N = [
    [xx + yy + zz, yz - zy, zx - xz, xy - yx],
    [yz - zy, xx - yy - zz, xy + yx, zx + xz],
    [zx - xz, xy + yx, -xx + yy - zz, yz + zy],
    [xy - yx, zx + xz, yz + zy, -xx - yy + zz],
  ];
  const { values, vectors } = jacobi4(N);
  let k = 0;
  for (let j = 1; j < 4; j++) if (values[j] > values[k]) k = j;
  const [q0, q1, q2, q3] = vectors.map((row) => row[k]);
  return {
    score: values[k],
    R: [
      [q0 * q0 + q1 * q1 - q2 * q2 - q3 * q3, 2 * (q1 * q2 - q0 * q3), 2 * (q1 * q3 + q0 * q2)],
      [2 * (q2 * q1 + q0 * q3), q0 * q0 - q1 * q1 + q2 * q2 - q3 * q3, 2 * (q2 * q3 - q0 * q1)],
      [2 * (q3 * q1 - q0 * q2), 2 * (q3 * q2 + q0 * q1), q0 * q0 - q1 * q1 - q2 * q2 + q3 * q3],
    ],
  };
}

/** Eigenvalues and eigenvectors (columns) of a symmetric 4x4 matrix, by cyclic Jacobi. */
function jacobi4(M) {
  const A = M.map((r) => r.slice()), V = [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((c) => (r === c ? 1 : 0)));
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < 4; p++) for (let q = p + 1; q < 4; q++) off += A[p][q] * A[p][q];
    if (off < 1e-22) break;
    for (let p = 0; p < 4; p++) for (let q = p + 1; q < 4; q++) {
      if (Math.abs(A[p][q]) < 1e-300) continue;
      const theta = (A[q][q] - A[p][p]) / (2 * A[p][q]);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let k = 0; k < 4; k++) {
        const akp = A[k][p], akq = A[k][q];
        A[k][p] = c * akp - s * akq; A[k][q] = s * akp + c * akq;
      }
      for (let k = 0; k < 4; k++) {
        const apk = A[p][k], aqk = A[q][k];
        A[p][k] = c * apk - s * aqk; A[q][k] = s * apk + c * aqk;
      }
      for (let k = 0; k < 4; k++) {
        const vkp = V[k][p], vkq = V[k][q];
        V[k][p] = c * vkp - s * vkq; V[k][q] = s * vkp + c * vkq;
      }
    }
  }
  return { values: [0, 1, 2, 3].map((k) => A[k][k]), vectors: V };
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
