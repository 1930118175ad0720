#!/usr/bin/python3
"""Makes benchmark inputs: texts that tokenize to an exact number of GPT-2 tokens each.

    make_inputs.py --tokmap build/tokmap --model DIR --words WORDS.tsv --texts N --tokens T OUT_PREFIX

Writes OUT_PREFIX.txt (one text per line, for `tokmap embed --file`) and OUT_PREFIX.ids (the
same texts' token ids, one line per text, for bench_forward and the PyTorch side). Texts are
runs of English words (the first column of WORDS.tsv, a Brown-corpus word list) joined by
spaces, cut just before a token that starts with a space, so the cut text tokenizes to exactly
the first T tokens; every text is re-tokenized with `tokmap tokenize --json` to check.
"""
import argparse
import json
import os
import subprocess
import sys


def tokenize(tokmap, model, texts, path):
    with open(path, "w") as f:
        f.write("".join(t + "\n" for t in texts))
    result = subprocess.run([tokmap, "tokenize", "--model", model, "--file", path, "--json"],
                            check=True, capture_output=True, text=True)
    objects = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if len(objects) != len(texts):
        sys.exit(f"make_inputs: tokmap tokenize returned {len(objects)} objects for {len(texts)} texts")
    return objects


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokmap", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--words", required=True)
    parser.add_argument("--texts", type=int, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("out_prefix")
    args = parser.parse_args()

    with open(args.words, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t")[0] for line in f][1:]  # skip the header
    words = [w for w in rows if w and w.isprintable() and " " not in w]
    # Enough words per text for T tokens (English averages ~1.3 tokens per word).
    per_text = args.tokens + 64
    if per_text * (args.texts + 1) > len(words):
        words = words * (per_text * (args.texts + 1) // len(words) + 1)
    starts = [i * per_text for i in range(args.texts)]
    texts = [None] * args.texts
    pending = list(range(args.texts))
    for attempt in range(32):
        candidates = {i: " ".join(words[starts[i] + attempt: starts[i] + attempt + per_text]) for i in pending}
        objects = tokenize(args.tokmap, args.model, list(candidates.values()), args.out_prefix + ".tmp")
        still = []
        for (i, text), obj in zip(candidates.items(), objects):
            ids, offsets = obj["ids"], obj["offsets"]
            if len(ids) <= args.tokens:
                sys.exit(f"make_inputs: text {i} has only {len(ids)} tokens; need more words")
            cut = offsets[args.tokens][0]  # byte offset where token T begins
            raw = text.encode("utf-8")
            if raw[cut:cut + 1] == b" ":
                texts[i] = raw[:cut].decode("utf-8")
            else:
                still.append(i)
        pending = still
        if not pending:
            break
    if pending:
        sys.exit(f"make_inputs: could not cut texts {pending} at a word boundary")
    objects = tokenize(args.tokmap, args.model, texts, args.out_prefix + ".txt")
    for i, obj in enumerate(objects):
        if len(obj["ids"]) != args.tokens:
            sys.exit(f"make_inputs: text {i} tokenizes to {len(obj['ids'])} tokens, expected {args.tokens}")
    with open(args.out_prefix + ".ids", "w") as f:
        for obj in objects:
            f.write(" ".join(str(i) for i in obj["ids"]) + "\n")
    os.remove(args.out_prefix + ".tmp")
    print(f"{args.out_prefix}.txt: {args.texts} texts x {args.tokens} tokens (checked with tokmap tokenize --json)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
