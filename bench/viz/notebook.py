#!/usr/bin/python3
"""The notebook way, for the `tokmap viz` benchmark: what a researcher's notebook does to get
the same picture. Run with Debian's /usr/bin/python3 (python3-torch, python3-sklearn,
python3-matplotlib).

    notebook.py --model DIR --ids FILE --perplexity P --out DIR [--seed 0] [--iterations 750]

1. imports (torch, numpy, scikit-learn's TSNE, matplotlib with the Agg backend);
2. loads the model folder and runs a plain PyTorch GPT-2 with all hidden states
   (bench/forward/torch_forward.py, imported, under torch.inference_mode());
3. per hidden state, the same preparation as `tokmap viz`'s defaults: drop each text's first
   token, subtract the layer's mean; then scikit-learn TSNE(n_components=2 and 3,
   perplexity=P, metric="cosine", init="pca", n_iter=ITERATIONS, random_state=SEED,
   learning_rate="auto"; method left at sklearn's default, barnes_hut, which handles
   2 and 3 dimensions);
4. per layer, one scatter PNG of the 2D map with every token labelled, and one 3D scatter PNG
   of the last layer's 3D map (tokmap draws its 3D figure for the last layer only), at the
   pixel size of tokmap's PNGs (1008 x 864).

Token ids come from FILE (one text per line, ids separated by spaces: `tokmap tokenize --json`
output), so both tools see the same tokens; tokenizing is not timed here (it would add the
loading of a tokenizer to the notebook's time). Prints one JSON object with the time of every
stage; "total_in_process_s" runs from the first line of this script to the last file written.
"""
import time

T0 = time.perf_counter()
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from mpl_toolkits.mplot3d import Axes3D  # noqa: E402,F401  (registers the 3d projection)
from sklearn.manifold import TSNE  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "forward"))
from torch_forward import GPT2  # noqa: E402

T_IMPORTS = time.perf_counter()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--perplexity", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=750)
    parser.add_argument("--labels", help="optional: one display string per token (all texts, in order)")
    args = parser.parse_args()
    timings = {"imports_s": T_IMPORTS - T0}

    with open(args.ids) as f:
        rows = [[int(t) for t in line.split()] for line in f if line.strip()]
    labels = None
    if args.labels:
        with open(args.labels, encoding="utf-8") as f:
            labels = json.load(f)

    # --- Model and forward pass with all hidden states ------------------------------------------
    start = time.perf_counter()
    model = GPT2(args.model)
    timings["load_s"] = time.perf_counter() - start
    start = time.perf_counter()
    per_text = []
    with torch.inference_mode():
        for row in rows:  # texts of different lengths: one forward each, as a notebook loop would
            states = model.forward(torch.tensor([row], dtype=torch.int64))
            per_text.append([s[0, 1:].numpy() for s in states])  # drop the first token
    layers = [np.concatenate([t[l] for t in per_text]).astype(np.float32) for l in range(len(per_text[0]))]
    timings["forward_s"] = time.perf_counter() - start
    if labels is None:
        labels = [str(i) for row in rows for i in row[1:]]
    else:
        labels = [lab for text in labels for lab in text[1:]]

    # --- t-SNE per layer, 2D and 3D --------------------------------------------------------------
    start = time.perf_counter()
    maps = {}
    kls = {}
    for dims in (2, 3):
        for l, x in enumerate(layers):
            x = x - x.mean(axis=0, keepdims=True)
            tsne = TSNE(n_components=dims, perplexity=args.perplexity, metric="cosine", init="pca",
                        n_iter=args.iterations, random_state=args.seed, learning_rate="auto")
            maps[(l, dims)] = tsne.fit_transform(x)
            kls[(l, dims)] = float(tsne.kl_divergence_)
    timings["tsne_s"] = time.perf_counter() - start

    # --- Figures -----------------------------------------------------------------------------
    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    dpi = 144  # 7 x 6 inches -> 1008 x 864 pixels, tokmap's PNG size
    for l in range(len(layers)):
        y = maps[(l, 2)]
        fig, ax = plt.subplots(figsize=(7, 6), dpi=dpi)
        ax.scatter(y[:, 0], y[:, 1], s=12)
        for (px, py), text in zip(y, labels):
            ax.annotate(text, (px, py), fontsize=6)
        ax.set_title(f"layer {l} · perplexity {args.perplexity:g} · KL {kls[(l, 2)]:.3f}")
        fig.savefig(os.path.join(args.out, f"layer{l}.png"), dpi=dpi)
        plt.close(fig)
    last = len(layers) - 1
    y = maps[(last, 3)]
    fig = plt.figure(figsize=(7, 6), dpi=dpi)
    ax = fig.add_subplot(projection="3d")
    ax.scatter(y[:, 0], y[:, 1], y[:, 2], s=12)
    for (px, py, pz), text in zip(y, labels):
        ax.text(px, py, pz, text, fontsize=6)
    ax.set_title(f"layer {last} (3D) · perplexity {args.perplexity:g}")
    fig.savefig(os.path.join(args.out, f"layer{last}-3d.png"), dpi=dpi)
    plt.close(fig)
    timings["figures_s"] = time.perf_counter() - start
    timings["total_in_process_s"] = time.perf_counter() - T0

    print(json.dumps({"impl": "notebook", "torch": torch.__version__,
                      "sklearn": __import__("sklearn").__version__, "matplotlib": matplotlib.__version__,
                      "torch_threads": torch.get_num_threads(), "tokens": len(labels), "layers": len(layers),
                      "maps": len(maps), "last_layer_kl_2d": kls[(last, 2)],
                      **{k: round(v, 3) for k, v in timings.items()}}))


if __name__ == "__main__":
    main()
