// Reads the outputs of bench_tokenizer and bench_gpt3_encoder.js and prints the side-by-side
// comparison as a Markdown table (pasted into docs/BENCHMARKS.md).
//
// usage: node compare.js TOKMAP_OUTPUT GPT3_ENCODER_OUTPUT
'use strict';
const fs = require('fs');

function parse(file) {
  const result = { whole: [] };
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== 'lines' && words[0] !== 'whole') continue;
    const fields = {};
    for (let i = 1; i + 1 < words.length; i += 2) fields[words[i]] = parseFloat(words[i + 1]);
    if (words[0] === 'lines') result.lines = fields;
    else result.whole.push(fields);
  }
  return result;
}

const [tokmapFile, gpt3File] = process.argv.slice(2);
const tokmap = parse(tokmapFile);
const gpt3 = parse(gpt3File);
const mb = (bytes) => (bytes / 1e6).toFixed(2);
const rate = (bytes, seconds) => bytes / 1e6 / seconds;
const show = (mbPerSecond) => mbPerSecond.toPrecision(3);
const ratio = (a, b) => `${Math.round(a / b)}x`;
const same = (a, b) => (a === b ? 'same' : `DIFFER (${a} vs ${b})`);

console.log('| case | input | tokmap MB/s | gpt-3-encoder MB/s | ratio | tokens |');
console.log('| --- | --- | ---: | ---: | ---: | --- |');
const t = tokmap.lines;
const g = gpt3.lines;
console.log(`| (a) ${t.count} short lines, first pass | ${mb(t.bytes)} MB | ${show(t.cold_mb_s)} | ` +
            `${show(g.cold_mb_s)} | ${ratio(t.cold_mb_s, g.cold_mb_s)} | ${same(t.tokens, g.tokens)} |`);
console.log(`| (a) same, best pass (warm caches) | ${mb(t.bytes)} MB | ${show(t.warm_mb_s)} | ` +
            `${show(g.warm_mb_s)} | ${ratio(t.warm_mb_s, g.warm_mb_s)} | ${same(t.tokens, g.tokens)} |`);
for (const w of tokmap.whole) {
  const ours = rate(w.bytes, w.seconds);
  const other = gpt3.whole.find((x) => x.bytes === w.bytes);
  const theirs = other ? rate(other.bytes, other.seconds) : 0;
  console.log(`| (b) one string | ${mb(w.bytes)} MB | ${show(ours)} (${w.seconds.toFixed(3)} s) | ` +
              (other ? `${show(theirs)} (${other.seconds.toFixed(1)} s) | ${ratio(ours, theirs)} | ` +
                           `${same(w.tokens, other.tokens)} |`
                     : `not run (quadratic) | - | ${w.tokens} |`));
}
