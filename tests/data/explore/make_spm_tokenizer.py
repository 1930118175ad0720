#!/usr/bin/env python3
"""A small SentencePiece-style BPE tokenizer.json (Llama 2's layout: Prepend/Replace "▁"
normalizer, no pre-tokenizer, BPE with byte fallback, <s> added in front) with at most 512 ids (510 from this corpus), so the
tiny random Llama fixture (vocab 512, tests/data/model/arch/llama/hf) can read real text and be
compared with GPT-2, whose byte-level BPE splits the same text differently.

Trained here by plain BPE on samples/sentences.txt (our own text); deterministic.

    python3 tests/data/explore/make_spm_tokenizer.py   # from the repository root
"""
import collections
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
VOCAB_SIZE = 512

text = open(os.path.join(ROOT, "samples", "sentences.txt"), encoding="utf-8").read()
words = collections.Counter("\u2581" + w for line in text.splitlines() for w in line.split())

vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
for b in range(256):
    vocab["<0x%02X>" % b] = len(vocab)
# Characters of the corpus, most frequent first; rare ones are left to byte fallback.
chars = collections.Counter()
for w, c in words.items():
    for ch in w:
        chars[ch] += c
for ch, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))[:60]:
    vocab[ch] = len(vocab)

splits = {w: [ch if ch in vocab else None for ch in w] for w in words}
splits = {w: s for w, s in splits.items() if None not in s}
merges = []
while len(vocab) < VOCAB_SIZE:
    pairs = collections.Counter()
    for w, s in splits.items():
        for a, b in zip(s, s[1:]):
            pairs[(a, b)] += words[w]
    if not pairs:
        break
    (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
    merges.append(a + " " + b)
    vocab[a + b] = len(vocab)
    for w, s in splits.items():
        out, i = [], 0
        while i < len(s):
            if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(s[i])
                i += 1
        splits[w] = out

special = lambda i, t: {"id": i, "content": t, "single_word": False, "lstrip": False,
                        "rstrip": False, "normalized": False, "special": True}
tokenizer = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": None,
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
              "ignore_merges": False, "vocab": vocab, "merges": merges},
}
assert len(vocab) <= VOCAB_SIZE, len(vocab)  # the model has 512 embeddings
with open(os.path.join(HERE, "spm-512", "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(tokenizer, f, ensure_ascii=False, indent=1)
    f.write("\n")
print("wrote", len(vocab), "tokens,", len(merges), "merges")
