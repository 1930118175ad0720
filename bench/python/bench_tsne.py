#!/usr/bin/python3
"""tokmap.TSNE against scikit-learn's TSNE and umap-learn, in one Python process.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_tsne.py DATA.npy [--sizes 10000,20000]

DATA: a float32 (N, D) .npy, e.g. ../shared/datasets/brown-demo-L6-20k.npy (the first rows are
taken; the data set is not in the repository). Each tool runs with its defaults, perplexity 30
and PCA initialisation where it has them: tokmap 750 iterations (auto method: FFT at these
sizes), scikit-learn 1,000 (Barnes-Hut, n_jobs as --sklearn-jobs), umap-learn 0.5 n_neighbors 15
(no random_state, which would make it single-threaded; numba compiled by a warm-up run first).
Time is around fit_transform. KL: one exact evaluator for every embedding (bench/tsne/bench.py's
exact_kl: P from exact 90-NN on the raw input, Q over all pairs). Trustworthiness (k = 10,
sklearn.manifold.trustworthiness) on the same random subset of --trust-rows rows for every
tool (the full matrix at 20k would need 3 GB per distance matrix). Binding overhead: the median
over 200 calls at 100 rows of TSNE.fit's wall time minus the time spent inside the library.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tsne"))
from bench import exact_kl  # noqa: E402

import tokmap  # noqa: E402


def trust(x, y, rows):
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(x[rows], y[rows], n_neighbors=10))


def run(name, fit):
    start = time.perf_counter()
    y = fit()
    return name, np.asarray(y), time.perf_counter() - start


def overhead(x100, calls=200):
    from tokmap import _tokmap

    spent = []
    tsne = tokmap.TSNE(max_iter=1)  # the library's part is then small but real
    for _ in range(calls):
        seconds = {}
        original = _tokmap._tsne

        def timed(*args, **kwargs):
            r = original(*args, **kwargs)
            seconds["lib"] = r["seconds"]
            return r

        _tokmap._tsne = timed
        try:
            start = time.perf_counter()
            tsne.fit(x100)
            wall = time.perf_counter() - start
        finally:
            _tokmap._tsne = original
        spent.append(wall - seconds["lib"])
    return float(np.median(spent)), float(np.percentile(spent, 90))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--sizes", default="10000,20000")
    ap.add_argument("--tools", default="tokmap,sklearn,umap")
    ap.add_argument("--sklearn-jobs", type=int, default=2)
    ap.add_argument("--trust-rows", type=int, default=5000)
    args = ap.parse_args()
    data = np.load(args.data).astype(np.float32)
    tools = args.tools.split(",")

    med, p90 = overhead(np.ascontiguousarray(data[:100]))
    print(f"binding overhead at 100 rows: median {med * 1e3:.3f} ms, 90th percentile "
          f"{p90 * 1e3:.3f} ms (TSNE.fit wall time minus the library's)", flush=True)

    if "umap" in tools:
        import umap

        umap.UMAP().fit_transform(data[:2000])  # numba compilation, not timed
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"{os.cpu_count()} CPUs")
    print("| N | tool | time s | KL (exact, common P) | trustworthiness (k=10) | load avg |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |", flush=True)
    rng = np.random.default_rng(0)
    for n in [int(s) for s in args.sizes.split(",")]:
        x = np.ascontiguousarray(data[:n])
        rows = np.sort(rng.choice(n, size=min(n, args.trust_rows), replace=False))
        for tool in tools:
            if tool == "tokmap":
                result = run("tokmap.TSNE", lambda: tokmap.TSNE(random_state=0).fit_transform(x))
            elif tool == "sklearn":
                from sklearn.manifold import TSNE

                result = run(f"sklearn TSNE (n_jobs={args.sklearn_jobs})",
                             lambda: TSNE(perplexity=30.0, init="pca", learning_rate="auto",
                                          random_state=0,
                                          n_jobs=args.sklearn_jobs).fit_transform(x))
            elif tool == "umap":
                import umap

                result = run("umap-learn UMAP", lambda: umap.UMAP().fit_transform(x))
            else:
                raise SystemExit("unknown tool " + tool)
            name, y, seconds = result
            load = os.getloadavg()[0]  # the machine is shared: how busy it was
            print(f"| {n} | {name} | {seconds:.1f} | {exact_kl(x, y):.4f} | "
                  f"{trust(x, y, rows):.4f} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    main()
