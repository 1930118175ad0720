#!/usr/bin/python3
"""Larger t-SNE benchmark sets made from the Brown embedding set (20,000 x 128).

    make_large.py SOURCE.npy ROWS OUT.npy

Row r is source row r mod 20,000 plus Gaussian noise (seed 0) whose scale per coordinate is
half the source's median nearest-neighbour distance divided by sqrt(128): each copy lands
inside its original's neighbourhood, so the set keeps the source's cluster structure with
ROWS / 20,000 times the density, rather than stacking exact duplicates.
"""
import sys

import numpy as np
from sklearn.neighbors import NearestNeighbors


def main():
    source, rows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    x = np.load(source).astype(np.float32)
    n, d = x.shape
    sample = x[np.random.default_rng(1).choice(n, min(n, 5000), replace=False)]
    dist, _ = NearestNeighbors(n_neighbors=2).fit(x).kneighbors(sample)
    scale = 0.5 * float(np.median(dist[:, 1])) / np.sqrt(d)
    rng = np.random.default_rng(0)
    result = np.empty((rows, d), dtype=np.float32)
    for start in range(0, rows, n):
        stop = min(rows, start + n)
        result[start:stop] = x[: stop - start]
        if start > 0:  # the first copy is the source itself
            result[start:stop] += rng.normal(0.0, scale, size=(stop - start, d)).astype(np.float32)
    np.save(out, result)
    print("%s: %d x %d, noise scale %.4g" % (out, rows, d, scale))


if __name__ == "__main__":
    main()
