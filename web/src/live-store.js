// Live mode's memory in localStorage (per origin, so per server address): the runs finished so
// far and the form as last edited. Storage may be unavailable (private windows, quotas); the
// page then simply forgets on reload.

const HISTORY = 'tokmap.live.history';
const FORM = 'tokmap.live.form';
const MAX_RUNS = 50;

function read(key, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(key));
    return v === null || v === undefined ? fallback : v;
  } catch { return fallback; }
}

function write(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* storage full or off */ }
}

/** Finished runs, newest first: { id, request, title, time, tokens, texts }. */
export function loadHistory() {
  const h = read(HISTORY, []);
  return Array.isArray(h) ? h.filter((r) => r && typeof r.id === 'string' && r.request && typeof r.request === 'object') : [];
}

/** Puts `run` first (replacing an entry with the same id or `replaces`) and keeps MAX_RUNS. */
export function rememberRun(run, replaces = null) {
  const h = loadHistory().filter((r) => r.id !== run.id && r.id !== replaces);
  h.unshift(run);
  write(HISTORY, h.slice(0, MAX_RUNS));
  return h.slice(0, MAX_RUNS);
}

export function clearHistory() {
  write(HISTORY, []);
}

export function loadForm() {
  const f = read(FORM, null);
  return f && typeof f === 'object' ? f : null;
}

export function saveForm(form) {
  write(FORM, form);
}
