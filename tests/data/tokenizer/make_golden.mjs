// Writes the golden files of tests/tokenizer: the ids Hugging Face `tokenizers` 0.23.2 (the node
// binding of the Rust library: the reference implementation) gives for every text, on every
// tokenizer, with and without special tokens. Offline: the tokenizer files come from the npm
// packages pinned in package-lock.json.
//
//   scripts/tokenizer-fixtures.sh --dev && node tests/data/tokenizer/make_golden.mjs
//
// Texts: tests/data/tokenizer_golden.jsonl (1,290 strings, GPT-2's golden cases) followed by
// texts.jsonl (written here from EXTRA below: multilingual, code, whitespace, emoji, odd Unicode,
// long repeats, special-token strings). Output golden/<case>.jsonl: a first line
//   {"case", "base", "patch", "config", "texts"}
// ("base": the fixture folder under node_modules/.tokmap, or "gpt2" for models/demo-brown-gpt2;
// "patch": a JSON merge patch applied to its tokenizer.json; "config": how tokenizer_config.json
// changed the post-processor), then one line per text: {"ids": [...]} with special tokens (what
// encode() does by default) are "prefix" + "plain" + "suffix" of the first line unless the line
// has its own "ids"; "plain": [...] the ids without special tokens; "decoded"
// (decode(ids, skip_special_tokens=false)) for the texts of texts.jsonl.
//
// tokenizer_config.json: transformers rebuilds the post-processor of Llama/Gemma-style
// tokenizers from add_bos_token / add_eos_token (LlamaTokenizerFast.update_post_processor); the
// same rule is applied here, as tokmap applies it (see src/tokenizer/load.cpp).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const require = createRequire(import.meta.url);
const { Tokenizer } = require(path.join(here, 'node_modules', 'tokenizers'));
const version = JSON.parse(fs.readFileSync(path.join(here, 'node_modules/tokenizers/package.json'))).version;
if (version !== '0.23.2') throw new Error(`tokenizers ${version}, expected 0.23.2`);

// ------------------------------------------------------------------------------------------
// Texts of our own.
const EXTRA = [
  // multilingual
  'Le cœur a ses raisons que la raison ne connaît point.',
  'Größenwahn: Straße, Fußgänger, ÄÖÜ äöü ẞ',
  'Ελληνικά: Σίσυφος, ΟΔΥΣΣΕΥΣ',
  'Русский язык: Съешь же ещё этих мягких французских булок.',
  '日本語のテキスト、東京都。カタカナとひらがな。',
  '中文：我们今天去公园散步，天气很好。',
  '한국어 문장입니다. 안녕하세요!',
  'العربية: مرحبا بالعالم',
  'עברית: שלום עולם',
  'हिन्दी: नमस्ते दुनिया',
  'ไทย: สวัสดีครับ',
  'Tiếng Việt: Xin chào thế giới',
  'Türkçe: İstanbul, ıIiİ',
  'Emoji: 👋🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤖',
  '😀😃😄😁😆😅😂🤣',
  // code
  'def f(x):\n    return x ** 2  # square\n',
  'int main() {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
  'for (let i = 0; i < n; ++i) { a[i] = b[i] * 2; }',
  '<html><body class="x">Hi &amp; bye</body></html>',
  '{"key": [1, 2.5, -3e10], "nested": {"a": null}}',
  'SELECT id, name FROM users WHERE age >= 18 ORDER BY name;',
  'https://example.com/path?q=1&r=two#frag',
  'user@example.org, C:\\Users\\me\\file.txt, ~/.bashrc',
  // whitespace
  '   leading and trailing   ',
  'tab\tseparated\tvalues\t\t',
  'line one\nline two\r\nline three\rline four',
  '\n\n\n\nfour newlines then text',
  'many     spaces          here',
  ' \u00a0 \u2003 \u3000 unicode spaces \u200b zero width',
  '\t \n \r \u000b \u000c \u0085 \u2028 \u2029',
  // numbers
  '1234567890 3.14159 1,000,000 0x1F 1e-9',
  'Room 101, year 2024, 12:30pm, +44 20 7946 0958',
  '١٢٣ ٤٥٦ ७८९ ①②③ ½ ¼',
  // odd Unicode
  'ﬁ ﬂ ﬀ ㎏ ™ Ⅻ ｆｕｌｌｗｉｄｔｈ ＡＢＣ',
  'e\u0301 vs \u00e9, A\u030a vs \u00c5, \u1e9b\u0323',
  'Ǆ ǅ ǆ ŉ İ ß ẞ ﬃ',
  '\u0000 nul \u0001 soh \u007f del \u009f',
  '\ufffd replacement \ufeff bom \uffff nonchar',
  '\ud83d\ude00 surrogate pair as emoji',
  'Zalgo: Z̸̢̛a̵̭͝l̴̰̾g̶͚̈o̷̜͑',
  // apostrophes and case
  "I'm you're we've they'll she'd it's DON'T I'M",
  "’s ’t curly 'S 'T",
  // special-token strings inside text
  '<|endoftext|>',
  'a<|endoftext|>b <|endoftext|> c',
  '<s>hello</s> <unk> [CLS] x [SEP] [MASK]',
  '<|begin_of_text|>Hi<|end_of_text|><|eot_id|>',
  '<|im_start|>user\nHello<|im_end|>\n<think>x</think>',
  '<bos><start_of_turn>user\nhi<end_of_turn>\n<eos>',
  '<｜begin▁of▁sentence｜>Hi<｜end▁of▁sentence｜>',
  '<|endofprompt|> and <|fim_prefix|>',
  '<pad><mask>[multimodal]<start_of_image>',
  // long repeats
  'a'.repeat(1000),
  ' '.repeat(300),
  '\n'.repeat(100),
  '0123456789'.repeat(40),
  'ab'.repeat(300),
  'hello world '.repeat(50),
  '▁'.repeat(50),
  '日本'.repeat(100),
  '😀'.repeat(60),
  '=-'.repeat(100) + '\n' + '#'.repeat(80),
  'x' + ' '.repeat(100) + 'y',
  // short
  ' ', 'a', '\n', '▁', '##', '<0x41>', 'Ġ',
];

const baseTexts = fs.readFileSync(path.join(root, 'tests/data/tokenizer_golden.jsonl'), 'utf8')
  .split('\n').filter((line) => line.length).map((line) => JSON.parse(line).text);
fs.writeFileSync(path.join(here, 'texts.jsonl'), EXTRA.map((text) => JSON.stringify({ text })).join('\n') + '\n');
const texts = baseTexts.concat(EXTRA);

// ------------------------------------------------------------------------------------------
// Cases: a fixture folder, optionally patched to reach components the real files do not use.
const CASES = [
  { case: 'gpt2', base: 'gpt2' },
  { case: 'llama3', base: 'llama3' },
  { case: 'llama2', base: 'llama2' },
  { case: 'qwen3', base: 'qwen3' },
  { case: 'gemma3', base: 'gemma3' },
  { case: 'deepseek_v3', base: 'deepseek_v3' },
  { case: 'gpt4o', base: 'gpt4o' },
  { case: 'bert-base-uncased', base: 'bert-base-uncased' },
  // Newer Llama/Mistral-style files: Metaspace pre-tokenizer instead of Prepend + Replace.
  { case: 'llama2-metaspace', base: 'llama2', patch: {
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
      decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false } } },
  { case: 'llama2-metaspace-split', base: 'llama2', patch: {
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true } } },
  { case: 'bert-whitespace-digits', base: 'bert-base-uncased', patch: {
      normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }, { type: 'StripAccents' }] },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: true }] } } },
  { case: 'bert-punctuation', base: 'bert-base-uncased', patch: {
      normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Strip', strip_left: true, strip_right: true },
                                                    { type: 'Lowercase' }] },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' },
        { type: 'Punctuation', behavior: 'Isolated' }, { type: 'Digits', individual_digits: false }] },
      post_processor: { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] } } },
  { case: 'gpt2-roberta', base: 'gpt2', patch: {
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', 50256], cls: ['<|endoftext|>', 50256],
                        trim_offsets: true, add_prefix_space: true } } },
  { case: 'qwen3-nfkc-split', base: 'qwen3', patch: {
      normalizer: { type: 'NFKC' },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithNext', invert: false },
        { type: 'Split', pattern: { Regex: '\\p{N}+' }, behavior: 'Contiguous', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true }] } } },
];

function fixtureFolder(base) {
  return base === 'gpt2' ? path.join(root, 'models/demo-brown-gpt2')
                         : path.join(here, 'node_modules/.tokmap', base);
}

function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) result[key] = null;  // keep the key: "normalizer": null means none
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

// transformers' update_post_processor: bos? $A eos? from tokenizer_config.json.
function configPostProcessor(json, config) {
  if (!config || (config.add_bos_token === undefined && config.add_eos_token === undefined)) return null;
  const content = (token) => (token === null || token === undefined ? null
                              : typeof token === 'string' ? token : token.content);
  const idOf = (token) => json.added_tokens.find((t) => t.content === token)?.id ?? json.model.vocab[token];
  const single = [];
  const special = {};
  const add = (token) => {
    single.push({ SpecialToken: { id: token, type_id: 0 } });
    special[token] = { id: token, ids: [idOf(token)], tokens: [token] };
  };
  const bos = content(config.bos_token);
  const eos = content(config.eos_token);
  if (config.add_bos_token && bos !== null) add(bos);
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  if (config.add_eos_token && eos !== null) add(eos);
  return { type: 'TemplateProcessing', single, pair: single, special_tokens: special };
}

fs.mkdirSync(path.join(here, 'golden'), { recursive: true });
for (const spec of CASES) {
  const folder = fixtureFolder(spec.base);
  let json = JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer.json'), 'utf8'));
  if (spec.patch) json = mergePatch(json, spec.patch);
  const configFile = path.join(folder, 'tokenizer_config.json');
  const config = fs.existsSync(configFile) ? JSON.parse(fs.readFileSync(configFile, 'utf8')) : null;
  const processor = configPostProcessor(json, config);
  if (processor) json.post_processor = processor;
  const tokenizer = Tokenizer.fromString(JSON.stringify(json));
  // The special tokens around every text: from "a" (one token plain, in every vocabulary).
  const probe = (await tokenizer.encode('a', null, { addSpecialTokens: true })).getIds();
  const probePlain = (await tokenizer.encode('a', null, { addSpecialTokens: false })).getIds();
  const at = probe.indexOf(probePlain[0]);
  if (probePlain.length !== 1 || at < 0) throw new Error(`${spec.case}: cannot find the template`);
  const prefix = probe.slice(0, at);
  const suffix = probe.slice(at + 1);
  const lines = [JSON.stringify({ case: spec.case, base: spec.base, patch: spec.patch ?? null,
                                  config: processor ? 'post_processor from add_bos_token/add_eos_token' : null,
                                  texts: texts.length, reference: `tokenizers ${version}`, prefix, suffix })];
  let index = 0;
  for (const text of texts) {
    const ids = (await tokenizer.encode(text, null, { addSpecialTokens: true })).getIds();
    const plain = (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
    const row = { plain };
    if (JSON.stringify(ids) !== JSON.stringify(prefix.concat(plain, suffix))) row.ids = ids;
    if (index >= baseTexts.length) row.decoded = await tokenizer.decode(ids, false);
    lines.push(JSON.stringify(row));
    ++index;
  }
  fs.writeFileSync(path.join(here, 'golden', `${spec.case}.jsonl`), lines.join('\n') + '\n');
  console.error(`${spec.case}: ${texts.length} texts`);
}
