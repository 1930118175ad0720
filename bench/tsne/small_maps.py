#!/usr/bin/python3
"""Small maps (a sentence to a long paragraph): tokmap tsne against scikit-learn, side by side in
one run on the same rows, perplexity 30, euclidean, 2D and 3D.

    bench/tsne/small_maps.py [TOKMAP_BINARY] [SIZES]     (from the repository root)

Rows: the first N of tests/data/tsne/brown-2000.npy (Brown hidden states of running text).
KL: evaluated exactly on the same P (tokmap's, rebuilt as in
tests/data/tsne/make_small_maps_reference.py): tokmap's map, and the map scikit-learn's
optimiser makes from the same P and initialisation with dof 1 (the objective tokmap minimises in
3D too; scikit-learn's default there is 2).
Times: wall seconds of the whole `tokmap tsne` command (load, P, optimisation, write) and of
scikit-learn's TSNE(...).fit_transform with its defaults (method exact up to 1,000 points,
barnes_hut above, init pca, learning_rate auto), best of 2.
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.manifold import TSNE

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(root, "tests", "data", "tsne"))
import make_small_maps_reference as ref  # noqa: E402

binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build", "tokmap")
sizes = [int(s) for s in sys.argv[2].split(",")] if len(sys.argv) > 2 else [
    20, 50, 100, 200, 500, 1000, 2000]
data = np.load(os.path.join(root, "tests", "data", "tsne", "brown-2000.npy"))



def best_of(runs, fn):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


print("| N | dims | tokmap KL | scikit-learn KL | tokmap s | scikit-learn s | time ratio |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
with tempfile.TemporaryDirectory() as tmp:
    for n in sizes:
        x = data[:n]
        np.save(os.path.join(tmp, "x.npy"), x)
        prepared = ref.prepare(x, "euclidean")
        perplexity = 30 if 30 < n else (n - 1) / 3.0
        p = ref.joint_p(prepared, perplexity)
        for dims in (2, 3):
            out = os.path.join(tmp, "y.npy")
            t_tok, _ = best_of(2, lambda: subprocess.run(
                [binary, "tsne", "-i", os.path.join(tmp, "x.npy"), "-o", out, "--dims", str(dims),
                 "--perplexity", str(perplexity), "--quiet"], check=True))
            kl_tok = ref.exact_kl(p, np.load(out))
            kl_sk = ref.run((n, 30, "euclidean", dims))[-1]
            method = "exact" if n <= 1000 else "barnes_hut"
            t_sk, _ = best_of(2, lambda: TSNE(n_components=dims, perplexity=perplexity,
                                              method=method, init="pca", learning_rate="auto",
                                              random_state=0).fit_transform(x))
            print("| %d | %d | %.4f | %.4f | %.2f | %.2f | %.2fx |" % (
                n, dims, kl_tok, kl_sk, t_tok, t_sk, t_sk / t_tok), flush=True)
