// Deterministic English benchmark text from the golden tokenizer cases (no downloads):
// the sentences of the prose snippets in tests/data/tokenizer_golden.jsonl, one per line,
// shuffled with a fixed seed and repeated (reshuffled each round) until the requested size.
//
// usage: node make_corpus.js GOLDEN_JSONL OUT_FILE MEGABYTES
'use strict';
const fs = require('fs');

const [golden, out, megabytes] = process.argv.slice(2);
const target = Math.round(parseFloat(megabytes || '4') * 1e6);

// mulberry32: a tiny seeded PRNG, so every run produces the same bytes.
function mulberry32(seed) {
  return function () {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const snippets = fs
  .readFileSync(golden, 'utf8')
  .split('\n')
  .filter((line) => line.length > 0)
  .map((line) => JSON.parse(line).text.replace(/\s+/g, ' ').trim())
  // English prose: long enough, mostly ASCII letters, no special token.
  .filter((text) => text.length >= 40 && !text.includes('<|') &&
                    (text.match(/[A-Za-z ]/g) || []).length >= 0.9 * text.length)
  // One sentence per line: many short lines, like a user's input file.
  .flatMap((text) => text.split(/(?<=[.!?]) (?=[A-Z"])/))
  .filter((sentence) => sentence.length >= 8);

const random = mulberry32(20240601);
const lines = [];
let size = 0;
while (size < target) {
  const order = snippets.slice();
  for (let i = order.length - 1; i > 0; --i) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (const text of order) {
    if (size >= target) break;
    lines.push(text);
    size += Buffer.byteLength(text) + 1;
  }
}
fs.writeFileSync(out, lines.join('\n') + '\n');
console.log(`corpus ${out}: ${lines.length} lines, ${size} bytes from ${snippets.length} sentences`);
