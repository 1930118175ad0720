// The Markdown table of run_peers.sh: tokmap against the faster of tiktoken and tokenizers.
// usage: node compare_peers.mjs RESULT_FILE...   (peers-gpt2.txt, peers-llama3.txt)
import fs from 'node:fs';
import path from 'node:path';

function fields(words) {
  const result = {};
  for (let i = 0; i + 1 < words.length; i += 2) result[words[i]] = parseFloat(words[i + 1]);
  return result;
}

console.log('| tokenizer | case | tokmap MB/s | tiktoken MB/s | tokenizers MB/s | tokmap / faster peer | tokens |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | --- |');
const e2eRows = [];
for (const file of process.argv.slice(2)) {
  const name = path.basename(file, '.txt').replace('peers-', '');
  const r = { tokmap: {}, tiktoken: {}, tokenizers: {} };
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] === 'tokmap' && w[1] === 'lines') r.tokmap.lines = fields(w.slice(2));
    else if (w[0] === 'tokmap' && w[1] === 'whole') r.tokmap.whole = fields(w.slice(2));
    else if (w[0] === 'tokmap' && w[1] === 'load') r.tokmap.load = fields(w.slice(3));
    else if (w[0] === 'peer' && w[2] !== 'load') r[w[1]][w[2]] = fields(w.slice(3));
    else if (w[0] === 'e2e') r.e2e = fields(w.slice(1));
  }
  const tokmapLines = r.tokmap.lines.warm_mb_s;
  const tokmapWhole = r.tokmap.whole.mb_s;
  const hfLines = Math.max(r.tokenizers.lines.mb_s, r.tokenizers.lines_batch.mb_s);
  const same = (...counts) => (counts.every((c) => c === counts[0]) ? 'same' : `DIFFER ${counts.join(' / ')}`);
  const row = (shape, ours, tt, hf, counts) => {
    const faster = Math.max(tt, hf);
    console.log(`| ${name} | ${shape} | ${ours.toFixed(1)} | ${tt.toFixed(2)} | ${hf.toFixed(2)} | ` +
                `${(ours / faster).toFixed(1)}x | ${same(...counts)} |`);
  };
  row(`(a) ${r.tokmap.lines.count} lines, each on its own`, tokmapLines, r.tiktoken.lines.mb_s, hfLines,
      [r.tokmap.lines.tokens, r.tiktoken.lines.tokens, r.tokenizers.lines.tokens]);
  row('(b) one string', tokmapWhole, r.tiktoken.whole.mb_s, r.tokenizers.whole.mb_s,
      [r.tokmap.whole.tokens, r.tiktoken.whole.tokens, r.tokenizers.whole.tokens]);
  const peerSeconds = Math.min(r.tiktoken.lines.seconds, r.tokenizers.lines.seconds,
                               r.tokenizers.lines_batch.seconds);
  e2eRows.push(`| ${name} | ${r.e2e.seconds.toFixed(2)} s (load ${r.tokmap.load.seconds.toFixed(2)} s, ` +
               `${(r.e2e.output_bytes / 1e6).toFixed(0)} MB of JSON) | ${peerSeconds.toFixed(2)} s | ` +
               `${(peerSeconds / r.e2e.seconds).toFixed(1)}x |`);
}
console.log('');
console.log('| tokenizer | `tokmap tokenize --json` end to end | faster peer, (a) encode alone | ratio |');
console.log('| --- | ---: | ---: | ---: |');
for (const line of e2eRows) console.log(line);
