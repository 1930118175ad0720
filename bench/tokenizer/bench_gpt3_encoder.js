// The npm package gpt-3-encoder on the same corpus and in the same shapes as bench_tokenizer:
// (a) every line encoded on its own, (b) prefixes of the whole text as one string. Its encode()
// grows the result with Array.concat per piece, so (b) is quadratic: the prefixes stop once
// one takes longer than the time cap.
//
// usage: node bench_gpt3_encoder.js CORPUS_FILE [CAP_SECONDS]
'use strict';
const fs = require('fs');
const path = require('path');
const { performance } = require('perf_hooks');

const [corpusFile, capArgument] = process.argv.slice(2);
const capSeconds = parseFloat(capArgument || '60');

let start = performance.now();
const { encode } = require(path.join(__dirname, 'node_modules', 'gpt-3-encoder'));
console.log(`load seconds ${((performance.now() - start) / 1000).toFixed(4)}`);

const corpus = fs.readFileSync(corpusFile);  // bytes: sizes are counted in bytes, as in C++
const text = corpus.toString('utf8');
const lines = text.split('\n');
if (lines[lines.length - 1] === '') lines.pop();
const megabytes = corpus.length / 1e6;

// (a) many short lines: the first pass starts with gpt-3-encoder's word cache empty.
const passes = [];
let tokens = 0;
for (let pass = 0; pass < 2; ++pass) {
  tokens = 0;
  start = performance.now();
  for (const line of lines) tokens += encode(line).length;
  passes.push((performance.now() - start) / 1000);
}
console.log(`lines count ${lines.length} bytes ${corpus.length} tokens ${tokens} ` +
            `cold_mb_s ${(megabytes / passes[0]).toFixed(2)} ` +
            `warm_mb_s ${(megabytes / Math.min(...passes)).toFixed(2)}`);

// (b) one string: prefixes cut at a line end, exactly as bench_tokenizer cuts them.
for (const sizeMb of [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]) {
  let end = corpus.length;
  if (sizeMb * 1e6 < corpus.length) {
    const newline = corpus.indexOf(0x0a, Math.floor(sizeMb * 1e6));
    end = newline < 0 ? corpus.length : newline + 1;
  }
  const prefix = corpus.subarray(0, end).toString('utf8');
  start = performance.now();
  const count = encode(prefix).length;
  const seconds = (performance.now() - start) / 1000;
  console.log(`whole bytes ${end} tokens ${count} seconds ${seconds.toFixed(4)} ` +
              `mb_s ${(end / 1e6 / seconds).toFixed(2)}`);
  if (end === corpus.length || seconds > capSeconds / 4) break;  // the next one would be ~4x
}
