#!/usr/bin/env python3
"""Measures the data behind tokmap viz's defaults (docs/BENCHMARKS.md, "viz defaults").

1. First token: the norm of each text's position-0 hidden state against the median norm of the
   other tokens, per layer, on the bundled model (from `tokmap embed` on samples/sentences.txt).
2. Metric and normalisation: 10-nearest-neighbour part-of-speech agreement in the model's space
   on the Brown slice tests/data/tsne/brown-2000.npy (last layer of the bundled model, coarse
   POS labels), for euclidean/cosine x none/center/spherize.

Run from the repository root with Debian's Python: /usr/bin/python3 bench/defaults/measure.py
(needs build/tokmap and python3-numpy)."""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dtype = {"F32": np.float32, "I64": np.int64}[info["dtype"]]
        out[name] = np.frombuffer(blob[8 + n + b:8 + n + e], dtype=dtype).reshape(info["shape"])
    return out, header.get("__metadata__", {})


def english_lines(count=300):
    """Single-line English snippets of the tokenizer golden file (ASCII letters, 8+ words)."""
    lines = []
    with open(os.path.join(ROOT, "tests", "data", "tokenizer_golden.jsonl")) as f:
        for row in f:
            text = json.loads(row)["text"]
            if "\n" in text or len(text.split()) < 8 or not text.isascii() or not text[0].isalpha():
                continue
            lines.append(text)
            if len(lines) == count:
                break
    return lines


def first_token_norms():
    lines = english_lines()
    with tempfile.TemporaryDirectory() as tmp:
        texts = os.path.join(tmp, "texts.txt")
        with open(texts, "w") as f:
            f.write("\n".join(lines) + "\n")
        path = os.path.join(tmp, "e.safetensors")
        subprocess.run([os.path.join(ROOT, "build", "tokmap"), "embed", "--quiet", "--file", texts,
                        "--out", path], check=True)
        tensors, meta = read_safetensors(path)
    hidden, position = tensors["hidden_states"], tensors["position"]
    first = position == 0
    print("%d texts, %d tokens" % (first.sum(), len(position)))
    print("layer  first-token norm / median other  first tokens among a first token's 5-NN (cosine, centred)  base rate")
    for layer, states in zip(json.loads(meta["layers"]), hidden):
        norms = np.linalg.norm(states, axis=1)
        ratio = np.median(norms[first]) / np.median(norms[~first])
        x = states - states.mean(0)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        sim = x[first] @ x.T
        sim[np.arange(first.sum()), np.flatnonzero(first)] = -np.inf  # not itself
        nn = np.argpartition(-sim, 5, axis=1)[:, :5]
        share = first[nn].mean()
        print("%5d  %6.2f  %6.2f  %6.3f" % (layer, ratio, share, first.mean()))


def pos_agreement(x, labels, metric, k=10):
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sq = (x * x).sum(1)
    d = sq[:, None] + sq[None, :] - 2 * x @ x.T
    np.fill_diagonal(d, np.inf)
    nn = np.argpartition(d, k, axis=1)[:, :k]
    return float((labels[nn] == labels[:, None]).mean())


def metric_and_normalisation():
    x = np.load(os.path.join(ROOT, "tests", "data", "tsne", "brown-2000.npy")).astype(np.float64)
    rows = open(os.path.join(ROOT, "tests", "data", "tsne", "brown-2000.pos.tsv")).read().split("\n")
    labels = [r.split("\t")[-1] for r in rows if r.strip()]
    if labels and not labels[0].strip() in set(labels[1:]):  # drop a header row
        labels = labels[1:]
    labels = np.array(labels[: len(x)])
    print("\n10-NN part-of-speech agreement, brown-2000 (n=%d)" % len(x))
    print("normalise  euclidean  cosine")
    for how in ("none", "center", "spherize"):
        y = x.copy()
        if how in ("center", "spherize"):
            y -= y.mean(0)
        if how == "spherize":
            y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
        print("%-9s  %9.3f  %6.3f" % (how, pos_agreement(y, labels, "euclidean"), pos_agreement(y, labels, "cosine")))


if __name__ == "__main__":
    first_token_norms()
    metric_and_normalisation()
    sys.exit(0)
