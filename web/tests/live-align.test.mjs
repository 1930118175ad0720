// The live page's alignment of a recomputed map to the previous one (src/live-anim.js): a map
// that is the old one turned, mirrored and shifted comes back onto the old one. No browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReportData } from '../src/data.js';
import { matchTokens, alignMaps } from '../src/live-anim.js';

function rng(seed) { let s = seed >>> 0; return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1; }

function report(n, dims, coords) {
  return new ReportData({
    version: 1, title: 't', texts: ['abcdefghijklmnopqrstuvwxyz'], models: ['m'], layers: [0],
    tokens: Array.from({ length: n }, (_, i) => ({ text: 0, position: i, display: 'x', kind: 'word', offset: [i, i + 1] })),
    maps: [{ model: 0, layer: 0, perplexity: 5, dims, coords }],
  });
}
const key = (d, i) => `${d.tokens[i].text}|${d.tokens[i].offset.join(',')}`;

for (const dims of [2, 3]) {
  for (const mirror of [false, true]) {
    test(`${dims}D map ${mirror ? 'mirrored, ' : ''}turned and shifted comes back onto the previous one`, () => {
      const r = rng(dims * 7 + (mirror ? 1 : 0)), n = 40;
      const old = Array.from({ length: n * dims }, r);
      // A rotation (about a tilted axis in 3D), an optional mirror, a shift.
      const a = 1.1, c = Math.cos(a), s = Math.sin(a);
      const moved = [];
      for (let i = 0; i < n; i++) {
        const p = old.slice(i * dims, i * dims + dims);
        if (mirror) p[0] = -p[0];
        const q = dims === 2 ? [c * p[0] - s * p[1], s * p[0] + c * p[1]]
          : [c * p[0] - s * p[1], s * p[0] + c * p[1], p[2]];
        if (dims === 3) { const y = q[1], z = q[2]; q[1] = c * y - s * z; q[2] = s * y + c * z; }
        moved.push(...q.map((v, k) => v + 0.3 * (k + 1)));
      }
      const prev = report(n, dims, old), next = report(n + 5, dims, [...moved, ...Array.from({ length: 5 * dims }, r)]);
      // The 5 extra tokens of the new run are unmatched (their offsets are past the old ones).
      const match = matchTokens(prev, next, key);
      assert.equal(match.filter((j) => j >= 0).length, n);
      assert.equal(alignMaps(prev, next, match), 1);
      const A = next.coords(next.map(0, 0, 5, dims)), B = prev.coords(prev.map(0, 0, 5, dims));
      // Normalisation differs (the new map has 5 more points), so compare shapes up to scale.
      let err = 0, size = 0, sa = 0, sb = 0;
      const ca = [0, 0, 0], cb = [0, 0, 0];
      for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) { ca[k] += A[i * 3 + k] / n; cb[k] += B[i * 3 + k] / n; }
      for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) { sa += (A[i * 3 + k] - ca[k]) ** 2; sb += (B[i * 3 + k] - cb[k]) ** 2; }
      sa = Math.sqrt(sa); sb = Math.sqrt(sb);
      for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) {
        err += ((A[i * 3 + k] - ca[k]) / sa - (B[i * 3 + k] - cb[k]) / sb) ** 2;
        size += ((B[i * 3 + k] - cb[k]) / sb) ** 2;
      }
      assert.ok(Math.sqrt(err / size) < 1e-3, `relative error ${Math.sqrt(err / size)}`);
    });
  }
}
