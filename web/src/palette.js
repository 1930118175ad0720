// Colour-blind-safe palettes: Okabe–Ito for categories, viridis / cividis for continuous values.

export const OKABE_ITO = [
  '#0072B2', // blue
  '#E69F00', // orange
  '#009E73', // bluish green
  '#D55E00', // vermillion
  '#CC79A7', // reddish purple
  '#56B4E9', // sky blue
  '#F0E442', // yellow
  '#000000', // black
];
export const OTHER = '#B8B8B8';

const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];
const CIVIDIS = ['#00224e', '#123570', '#3b496c', '#575d6d', '#707173', '#8a8779', '#a69d75', '#c4b56c', '#e4cf5b', '#fee838'];

export function hexToRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function ramp(stops) {
  const rgb = stops.map(hexToRgb);
  return (t) => {
    if (!Number.isFinite(t)) return hexToRgb(OTHER);
    const x = Math.min(1, Math.max(0, t)) * (rgb.length - 1);
    const i = Math.min(rgb.length - 2, Math.floor(x));
    const f = x - i;
    const a = rgb[i], b = rgb[i + 1];
    return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f));
  };
}

export const viridis = ramp(VIRIDIS);
export const cividis = ramp(CIVIDIS);

export function rampCss(fn, steps = 12) {
  const parts = [];
  for (let i = 0; i <= steps; i++) {
    const [r, g, b] = fn(i / steps);
    parts.push(`rgb(${r},${g},${b}) ${((i / steps) * 100).toFixed(1)}%`);
  }
  return `linear-gradient(to right, ${parts.join(', ')})`;
}
