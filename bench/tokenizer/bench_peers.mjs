// The npm packages tiktoken (WASM) and tokenizers (Hugging Face's Rust library, node binding) on
// the same corpus, in the same shapes as bench_tokenizer: (a) every line encoded on its own, (b)
// the whole text as one string. Single-threaded: RAYON_NUM_THREADS=1 (run.sh sets it) keeps
// tokenizers' batch encoding on one thread; tiktoken's WASM has one.
//
// usage: node bench_peers.mjs CORPUS_FILE NAME TOKENIZER_JSON [PASSES]
//   NAME: gpt2 (tiktoken's own gpt2 ranks) or llama3 (tiktoken built from the tokenizer.json:
//   the rank of a token is its id, as in Meta's tiktoken file, and the pattern is its Split regex)
// Prints "peer ... key value" lines (read by compare_peers.mjs).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { Tiktoken } = require(path.join(here, 'node_modules/tiktoken/lite/tiktoken.cjs'));
const { Tokenizer } = require(path.join(here, 'node_modules/tokenizers'));

const [corpusFile, name, tokenizerJson, passesArgument] = process.argv.slice(2);
const passes = parseInt(passesArgument || '2', 10);
const corpus = fs.readFileSync(corpusFile);
const text = corpus.toString('utf8');
const lines = text.split('\n');
if (lines[lines.length - 1] === '') lines.pop();
const megabytes = corpus.length / 1e6;
const now = () => performance.now() / 1000;

// GPT-2's byte <-> character mapping, to turn byte-level vocabulary strings into bytes.
function byteDecoder() {
  const bytes = [];
  for (let b = 33; b <= 126; ++b) bytes.push(b);
  for (let b = 161; b <= 172; ++b) bytes.push(b);
  for (let b = 174; b <= 255; ++b) bytes.push(b);
  const chars = bytes.slice();
  let n = 0;
  for (let b = 0; b < 256; ++b) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + n++);
    }
  }
  const decoder = new Map();
  bytes.forEach((b, i) => decoder.set(String.fromCodePoint(chars[i]), b));
  return decoder;
}

function makeTiktoken() {
  if (name === 'gpt2') {
    const gpt2 = require(path.join(here, 'node_modules/tiktoken/encoders/gpt2.json'));
    return new Tiktoken(gpt2.bpe_ranks, gpt2.special_tokens, gpt2.pat_str);
  }
  const json = JSON.parse(fs.readFileSync(tokenizerJson, 'utf8'));
  const decoder = byteDecoder();
  const ranks = [];
  for (const [token, id] of Object.entries(json.model.vocab)) {
    const bytes = Buffer.from([...token].map((c) => decoder.get(c)));
    ranks.push(`${bytes.toString('base64')} ${id}`);
  }
  const special = {};
  for (const added of json.added_tokens) special[added.content] = added.id;
  const split = json.pre_tokenizer.pretokenizers.find((p) => p.type === 'Split');
  return new Tiktoken(ranks.join('\n'), special, split.pattern.Regex);
}

let start = now();
const tiktoken = makeTiktoken();
console.log(`peer tiktoken load seconds ${(now() - start).toFixed(4)}`);
start = now();
const hf = Tokenizer.fromFile(tokenizerJson);
console.log(`peer tokenizers load seconds ${(now() - start).toFixed(4)}`);

function report(peer, shape, seconds, tokens) {
  console.log(`peer ${peer} ${shape} bytes ${corpus.length} tokens ${tokens} ` +
              `seconds ${seconds.toFixed(4)} mb_s ${(megabytes / seconds).toFixed(2)}`);
}

// (a) lines, best of `passes`.
{
  let best = Infinity, tokens = 0;
  for (let pass = 0; pass < passes; ++pass) {
    tokens = 0;
    start = now();
    for (const line of lines) tokens += tiktoken.encode(line, 'all').length;
    best = Math.min(best, now() - start);
  }
  report('tiktoken', 'lines', best, tokens);
}
for (const [shape, batch] of [['lines_batch', 1000], ['lines', 1]]) {
  let best = Infinity, tokens = 0;
  for (let pass = 0; pass < passes; ++pass) {
    tokens = 0;
    start = now();
    for (let i = 0; i < lines.length; i += batch) {
      if (batch === 1) {
        tokens += (await hf.encode(lines[i], null, { addSpecialTokens: false })).getIds().length;
      } else {
        const encodings = await hf.encodeBatch(lines.slice(i, i + batch), { addSpecialTokens: false });
        for (const encoding of encodings) tokens += encoding.getIds().length;
      }
    }
    best = Math.min(best, now() - start);
  }
  report('tokenizers', shape, best, tokens);
}
// (b) the whole text as one string.
{
  let best = Infinity, tokens = 0;
  for (let pass = 0; pass < passes; ++pass) {
    start = now();
    tokens = tiktoken.encode(text, 'all').length;
    best = Math.min(best, now() - start);
  }
  report('tiktoken', 'whole', best, tokens);
  best = Infinity;
  for (let pass = 0; pass < passes; ++pass) {
    start = now();
    tokens = (await hf.encode(text, null, { addSpecialTokens: false })).getIds().length;
    best = Math.min(best, now() - start);
  }
  report('tokenizers', 'whole', best, tokens);
}
