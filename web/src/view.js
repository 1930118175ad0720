// One WebGL scatter view (2D or 3D) with a 2D overlay for labels, trajectories and rings.
// Cameras live in the app so that side-by-side views move together.
// Per-point state rides in the colour's alpha byte: 0 normal, 1 faded, 2 highlighted,
// 3 selected, 4 hidden by a legend filter (not drawn, picked, labelled or traced).

const VS = `
attribute vec3 a_posA;
attribute vec3 a_posB;
attribute vec4 a_color;
uniform mat4 u_mvp;
uniform float u_t;
uniform float u_size;
uniform float u_persp;
uniform vec3 u_bg;
uniform float u_fade;
varying vec3 v_color;
varying float v_state;
void main() {
  float st = floor(a_color.a * 255.0 + 0.5);
  if (st > 3.5) {
    // Hidden by a legend filter: outside the clip volume, so the point is discarded.
    gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
    gl_PointSize = 1.0;
    v_color = vec3(0.0);
    v_state = st;
    return;
  }
  vec3 p = mix(a_posA, a_posB, u_t);
  vec4 c = u_mvp * vec4(p, 1.0);
  float s = u_size;
  if (u_persp > 0.0) s *= clamp(u_persp / c.w, 0.45, 2.5);
  if (st > 1.5) s *= 1.55;
  if (st > 2.5) s *= 1.3;
  gl_PointSize = max(s, 1.0);
  // Highlighted points are drawn in front; faded ones behind.
  if (st > 1.5) c.z -= 0.05 * c.w;
  else if (st > 0.5) c.z += 0.05 * c.w;
  gl_Position = c;
  vec3 col = a_color.rgb;
  if (st > 0.5 && st < 1.5) col = mix(col, u_bg, u_fade);
  v_color = col;
  v_state = st;
}`;

const FS = `
precision mediump float;
varying vec3 v_color;
varying float v_state;
uniform float u_outline;
void main() {
  vec2 d = gl_PointCoord * 2.0 - 1.0;
  float r = dot(d, d);
  if (r > 1.0) discard;
  vec3 col = v_color;
  float ring = smoothstep(0.55, 0.85, r);
  float o = u_outline;
  if (v_state > 2.5) { o = 1.0; col = mix(col, vec3(0.0), ring * 0.9); }
  else col = mix(col, col * 0.55, ring * o);
  gl_FragColor = vec4(col, 1.0);
}`;

export const BG = [255, 254, 250];
export const LOD_POINTS = 30000;

export class View {
  constructor(app, host, index) {
    this.app = app;
    this.index = index;
    this.el = document.createElement('div');
    this.el.className = 'view';
    this.caption = document.createElement('div');
    this.caption.className = 'view-caption';
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'gl';
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'img');
    this.overlay = document.createElement('canvas');
    this.overlay.className = 'overlay';
    this.overlay.setAttribute('aria-hidden', 'true');
    this.el.append(this.canvas, this.overlay, this.caption);
    host.append(this.el);
    this.ctx = this.overlay.getContext('2d');
    // Multisampling doubles the cost of software rendering (SwiftShader); big maps go without.
    const opts = { antialias: app.data.N <= 20000, preserveDrawingBuffer: true, premultipliedAlpha: false, alpha: false };
    this.gl = this.canvas.getContext('webgl2', opts) || this.canvas.getContext('webgl', opts);
    if (!this.gl) throw new Error('WebGL is not available in this browser');
    this.initGL();
    this.model = 0;
    this.pairKey = '';
    this.tween = { a: null, b: null, t: 0 };
    this.mvp = new Float32Array(16);
    this.width = 1; this.height = 1; this.dpr = 1;
    this.gridVersion = -1;
  }

  initGL() {
    const gl = this.gl;
    const sh = (type, src) => {
      const s = gl.createShader(type);
      gl.shaderSource(s, src);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error('shader: ' + gl.getShaderInfoLog(s));
      return s;
    };
    const p = gl.createProgram();
    gl.attachShader(p, sh(gl.VERTEX_SHADER, VS));
    gl.attachShader(p, sh(gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error('program: ' + gl.getProgramInfoLog(p));
    this.prog = p;
    this.loc = {};
    for (const a of ['a_posA', 'a_posB', 'a_color']) this.loc[a] = gl.getAttribLocation(p, a);
    for (const u of ['u_mvp', 'u_t', 'u_size', 'u_persp', 'u_bg', 'u_fade', 'u_outline']) this.loc[u] = gl.getUniformLocation(p, u);
    this.bufA = gl.createBuffer();
    this.bufB = gl.createBuffer();
    this.bufC = gl.createBuffer();
    this.bufIdx = gl.createBuffer();
    this.lodCount = 0;
    this.uintIndex = typeof WebGL2RenderingContext !== 'undefined' && gl instanceof WebGL2RenderingContext ? true : !!gl.getExtension('OES_element_index_uint');
  }

  /** Positions of two consecutive layers (Float32Array (N,3)); the shader mixes them. */
  setPositions(a, b) {
    const gl = this.gl;
    if (a !== this.tween.a) { gl.bindBuffer(gl.ARRAY_BUFFER, this.bufA); gl.bufferData(gl.ARRAY_BUFFER, a, gl.DYNAMIC_DRAW); }
    if (b !== this.tween.b) { gl.bindBuffer(gl.ARRAY_BUFFER, this.bufB); gl.bufferData(gl.ARRAY_BUFFER, b, gl.DYNAMIC_DRAW); }
    this.tween.a = a; this.tween.b = b;
  }

  setColors(rgba) {
    const gl = this.gl;
    gl.bindBuffer(gl.ARRAY_BUFFER, this.bufC);
    gl.bufferData(gl.ARRAY_BUFFER, rgba, gl.DYNAMIC_DRAW);
    this.colors = rgba;
    this.buildLod();
  }

  /**
   * Level of detail while the view moves: with very many points, frames drawn during a drag
   * show every highlighted point plus an even random sample of the rest; the full set is drawn
   * as soon as the motion stops.
   */
  buildLod() {
    const n = this.app.data.N, budget = LOD_POINTS;
    if (n <= budget || !this.uintIndex) { this.lodCount = 0; return; }
    const order = this.app.lodOrder();
    const idx = new Uint32Array(budget);
    let k = 0;
    const c = this.colors;
    for (let i = 0; i < n && k < budget / 2; i++) if (c[i * 4 + 3] === 2 || c[i * 4 + 3] === 3) idx[k++] = i;
    for (let j = 0; j < n && k < budget; j++) { const i = order[j]; if (c[i * 4 + 3] < 2) idx[k++] = i; }
    const gl = this.gl;
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.bufIdx);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, idx.subarray(0, k), gl.DYNAMIC_DRAW);
    this.lodCount = k;
  }

  resize() {
    const r = this.el.getBoundingClientRect();
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    const w = Math.max(1, Math.round(r.width)), h = Math.max(1, Math.round(r.height));
    if (w === this.width && h === this.height && dpr === this.dpr) return false;
    this.width = w; this.height = h; this.dpr = dpr;
    for (const c of [this.canvas, this.overlay]) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    return true;
  }

  /** Builds the model-view-projection matrix from the app's camera. */
  updateMatrix() {
    const cam = this.app.camera();
    const w = this.width, h = this.height;
    const m = this.mvp;
    m.fill(0);
    if (this.app.state.dims === 2) {
      const s = this.pixelsPerUnit();
      // clip = ((x - cx) * s * 2 / w, (y - cy) * s * 2 / h)
      m[0] = (2 * s) / w; m[5] = (2 * s) / h; m[10] = 1; m[15] = 1;
      m[12] = (-cam.cx * 2 * s) / w; m[13] = (-cam.cy * 2 * s) / h;
      this.persp = 0;
    } else {
      const cy = Math.cos(cam.yaw), sy = Math.sin(cam.yaw), cp = Math.cos(cam.pitch), sp = Math.sin(cam.pitch);
      // view = T(0,0,-dist) * Rx(pitch) * Ry(yaw)
      const v = [
        cy, sp * sy, -cp * sy, 0,
        0, cp, sp, 0,
        sy, -sp * cy, cp * cy, 0,
        0, 0, -cam.dist, 1,
      ];
      const t = cam.target || [0, 0, 0];
      for (let r = 0; r < 3; r++) v[12 + r] -= v[r] * t[0] + v[4 + r] * t[1] + v[8 + r] * t[2];
      const fov = (38 * Math.PI) / 180, f = 1 / Math.tan(fov / 2), aspect = w / h;
      const near = 0.1, far = 100;
      const p = [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1, 0, 0, (2 * far * near) / (near - far), 0];
      mul4(m, p, v);
      this.persp = cam.dist;
    }
    return m;
  }

  pixelsPerUnit() {
    const cam = this.app.camera();
    return (cam.zoom * Math.min(this.width, this.height)) / 3.1;
  }

  pointSize() {
    const n = this.app.data.N;
    let r = 7 * Math.pow(200 / Math.max(1, n), 0.25);
    r = Math.min(7, Math.max(1.6, r));
    if (this.app.state.dims === 2) r *= Math.min(2.2, Math.max(0.8, Math.pow(this.app.camera().zoom, 0.35)));
    return 2 * r;
  }

  render() {
    const gl = this.gl, n = this.app.data.N;
    this.resize();
    this.updateMatrix();
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(BG[0] / 255, BG[1] / 255, BG[2] / 255, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LEQUAL);
    gl.useProgram(this.prog);
    const bind = (buf, loc, size, type, norm) => {
      gl.bindBuffer(gl.ARRAY_BUFFER, buf);
      gl.enableVertexAttribArray(loc);
      gl.vertexAttribPointer(loc, size, type, norm, 0, 0);
    };
    bind(this.bufA, this.loc.a_posA, 3, gl.FLOAT, false);
    bind(this.bufB, this.loc.a_posB, 3, gl.FLOAT, false);
    bind(this.bufC, this.loc.a_color, 4, gl.UNSIGNED_BYTE, true);
    gl.uniformMatrix4fv(this.loc.u_mvp, false, this.mvp);
    gl.uniform1f(this.loc.u_t, this.tween.t);
    gl.uniform1f(this.loc.u_size, this.pointSize() * this.dpr);
    gl.uniform1f(this.loc.u_persp, this.persp);
    gl.uniform3f(this.loc.u_bg, BG[0] / 255, BG[1] / 255, BG[2] / 255);
    gl.uniform1f(this.loc.u_fade, 0.78);
    gl.uniform1f(this.loc.u_outline, n > 5000 ? 0 : 0.55);
    this.lodActive = this.app.interacting && this.lodCount > 0;
    if (this.lodActive) {
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.bufIdx);
      gl.drawElements(gl.POINTS, this.lodCount, gl.UNSIGNED_INT, 0);
    } else gl.drawArrays(gl.POINTS, 0, n);
    this.drawOverlay();
  }

  /** Current (interpolated) position of point i in normalised map space. */
  position(i, out = [0, 0, 0]) {
    const { a, b, t } = this.tween;
    if (!a) return out;
    for (let k = 0; k < 3; k++) out[k] = a[i * 3 + k] + (b[i * 3 + k] - a[i * 3 + k]) * t;
    return out;
  }

  /** Projects a map-space point to CSS pixels in this view: [x, y, depth, visible]. */
  project(p) {
    const m = this.mvp;
    const x = m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12];
    const y = m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13];
    const w = m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15];
    if (w <= 1e-6) return [0, 0, Infinity, false];
    const sx = ((x / w + 1) / 2) * this.width, sy = ((1 - y / w) / 2) * this.height;
    return [sx, sy, w, sx >= 0 && sy >= 0 && sx <= this.width && sy <= this.height];
  }

  projectIndex(i) {
    return this.project(this.position(i));
  }

  /** Screen-space grid of all points, rebuilt lazily when the camera or layer changed. */
  ensureGrid() {
    const version = this.app.viewVersion;
    if (this.gridVersion === version && this.grid) return this.grid;
    const n = this.app.data.N, cell = 24;
    const cols = Math.ceil(this.width / cell) + 1, rows = Math.ceil(this.height / cell) + 1;
    const sx = new Float32Array(n), sy = new Float32Array(n), depth = new Float32Array(n);
    const cellOf = new Int32Array(n);
    const counts = new Int32Array(cols * rows + 1);
    const m = this.mvp, { a, b, t } = this.tween;
    for (let i = 0; i < n; i++) {
      const px = a[i * 3] + (b[i * 3] - a[i * 3]) * t;
      const py = a[i * 3 + 1] + (b[i * 3 + 1] - a[i * 3 + 1]) * t;
      const pz = a[i * 3 + 2] + (b[i * 3 + 2] - a[i * 3 + 2]) * t;
      const x = m[0] * px + m[4] * py + m[8] * pz + m[12];
      const y = m[1] * px + m[5] * py + m[9] * pz + m[13];
      const w = m[3] * px + m[7] * py + m[11] * pz + m[15];
      if (w <= 1e-6) { cellOf[i] = -1; continue; }
      const X = ((x / w + 1) / 2) * this.width, Y = ((1 - y / w) / 2) * this.height;
      sx[i] = X; sy[i] = Y; depth[i] = w;
      if (X < 0 || Y < 0 || X > this.width || Y > this.height) { cellOf[i] = -1; continue; }
      const c = Math.floor(Y / cell) * cols + Math.floor(X / cell);
      cellOf[i] = c;
      counts[c + 1]++;
    }
    for (let c = 0; c < cols * rows; c++) counts[c + 1] += counts[c];
    const start = counts.slice();
    const order = new Int32Array(counts[cols * rows]);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) order[start[cellOf[i]]++] = i;
    this.grid = { cell, cols, rows, counts, order, sx, sy, depth };
    this.gridVersion = version;
    return this.grid;
  }

  /** The point under (x, y) CSS pixels, or -1. Prefers highlighted points, then the nearest. */
  pick(x, y) {
    const g = this.ensureGrid();
    const radius = Math.max(6, this.pointSize() / 2 + 3);
    const c0 = Math.floor((x - radius) / g.cell), c1 = Math.floor((x + radius) / g.cell);
    const r0 = Math.floor((y - radius) / g.cell), r1 = Math.floor((y + radius) / g.cell);
    let best = -1, bestScore = Infinity;
    const state = this.colors;
    for (let r = Math.max(0, r0); r <= Math.min(g.rows - 1, r1); r++) {
      for (let c = Math.max(0, c0); c <= Math.min(g.cols - 1, c1); c++) {
        const cell = r * g.cols + c;
        for (let k = g.counts[cell]; k < g.counts[cell + 1]; k++) {
          const i = g.order[k];
          if (state && state[i * 4 + 3] === 4) continue; // hidden by a legend filter
          const dx = g.sx[i] - x, dy = g.sy[i] - y;
          const d2 = dx * dx + dy * dy;
          if (d2 > radius * radius) continue;
          let score = Math.sqrt(d2) + g.depth[i] * 0.5;
          const st = state ? state[i * 4 + 3] : 0;
          if (st === 1) score += radius * 2; // faded points lose ties against highlighted ones
          if (st >= 2) score -= radius;
          if (score < bestScore) { bestScore = score; best = i; }
        }
      }
    }
    return best;
  }

  drawOverlay() {
    const ctx = this.ctx, app = this.app;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    if (app.state.trajectories) this.drawTrajectories();
    if (app.state.labels) this.drawLabels();
    const h = app.hover;
    if (h >= 0 && !app.isFiltered(this, h)) {
      const [x, y, , vis] = this.projectIndex(h);
      if (vis) {
        ctx.beginPath();
        ctx.arc(x, y, this.pointSize() / 2 + 5, 0, Math.PI * 2);
        ctx.lineWidth = 2;
        ctx.strokeStyle = '#111';
        ctx.stroke();
        ctx.lineWidth = 4;
        ctx.strokeStyle = 'rgba(255,255,255,0.6)';
        ctx.beginPath();
        ctx.arc(x, y, this.pointSize() / 2 + 8, 0, Math.PI * 2);
        ctx.stroke();
      }
    }
  }

  drawTrajectories() {
    const app = this.app, ctx = this.ctx;
    const ids = app.trajectoryTokens();
    if (!ids.length) return;
    const layers = app.layerCoordsForView(this);
    if (layers.length < 2) return;
    ctx.save();
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';
    const p = [0, 0, 0];
    for (const i of ids) {
      if (app.isFiltered(this, i)) continue;
      const pts = layers.map(({ coords }) => {
        p[0] = coords[i * 3]; p[1] = coords[i * 3 + 1]; p[2] = coords[i * 3 + 2];
        return this.project(p);
      });
      const col = app.tokenCss(this, i);
      ctx.strokeStyle = 'rgba(255,255,255,0.85)';
      ctx.lineWidth = 4;
      ctx.beginPath();
      pts.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
      ctx.strokeStyle = col;
      ctx.lineWidth = 1.6;
      ctx.stroke();
      ctx.fillStyle = col;
      pts.forEach(([x, y], k) => {
        ctx.beginPath();
        ctx.arc(x, y, k === 0 ? 3.2 : 2, 0, Math.PI * 2);
        ctx.fill();
      });
      if (ids.length <= 12) {
        ctx.font = '10px system-ui, sans-serif';
        ctx.fillStyle = '#555';
        const [x0, y0] = pts[0], [x1, y1] = pts[pts.length - 1];
        ctx.fillText(`L${layers[0].layer}`, x0 + 4, y0 - 4);
        ctx.fillText(`L${layers[layers.length - 1].layer}`, x1 + 4, y1 - 4);
      }
    }
    ctx.restore();
  }

  /** Greedy label placement in screen space: an occupancy grid, only labels that fit. */
  drawLabels() {
    const app = this.app, ctx = this.ctx, data = app.data;
    const cell = 4;
    const cols = Math.ceil(this.width / cell) + 1, rows = Math.ceil(this.height / cell) + 1;
    const occ = new Uint8Array(cols * rows);
    const mark = (x0, y0, x1, y1, test) => {
      const c0 = Math.max(0, Math.floor(x0 / cell)), c1 = Math.min(cols - 1, Math.floor(x1 / cell));
      const r0 = Math.max(0, Math.floor(y0 / cell)), r1 = Math.min(rows - 1, Math.floor(y1 / cell));
      if (x0 < 0 || y0 < 0 || x1 > this.width || y1 > this.height) return false;
      for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) {
        if (test) { if (occ[r * cols + c]) return false; } else occ[r * cols + c] = 1;
      }
      return true;
    };
    const font = 12, maxLabels = data.N > 5000 ? 120 : 400;
    ctx.font = `${font}px "Iowan Old Style", "Palatino Linotype", Georgia, serif`;
    ctx.textBaseline = 'middle';
    const placed = [];
    const rad = this.pointSize() / 2;
    const candidates = app.labelCandidates();
    const proj = new Map();
    // Points themselves are obstacles for labels (only the candidates, to stay cheap).
    for (const i of candidates) {
      const q = this.projectIndex(i);
      if (app.isFiltered(this, i)) q[3] = false;
      proj.set(i, q);
      if (q[3] && app.isVisibleState(i)) mark(q[0] - rad, q[1] - rad, q[0] + rad, q[1] + rad, false);
    }
    for (const i of candidates) {
      if (placed.length >= maxLabels) break;
      const [x, y, , vis] = proj.get(i);
      if (!vis) continue;
      const text = data.keys[i];
      const w = ctx.measureText(text).width, h = font;
      const spots = [
        [x + rad + 5, y - h / 2], [x - rad - 5 - w, y - h / 2],
        [x - w / 2, y - rad - 5 - h], [x - w / 2, y + rad + 5],
      ];
      for (const [lx, ly] of spots) {
        if (mark(lx, ly, lx + w, ly + h, true)) {
          mark(lx - 1, ly - 1, lx + w + 1, ly + h + 1, false);
          placed.push([lx, ly + h / 2, text, i]);
          break;
        }
      }
    }
    ctx.lineJoin = 'round';
    for (const [lx, ly, text, i] of placed) {
      const strong = app.isHighlighted(i);
      ctx.lineWidth = 3;
      ctx.strokeStyle = 'rgba(255,254,250,0.92)';
      ctx.strokeText(text, lx, ly);
      ctx.fillStyle = strong ? '#111' : '#444';
      ctx.fillText(text, lx, ly);
    }
    this.placedLabels = placed.length;
  }
}

function mul4(out, a, b) {
  for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) {
    let s = 0;
    for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
    out[c * 4 + r] = s;
  }
  return out;
}
