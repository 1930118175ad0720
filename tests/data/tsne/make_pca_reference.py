#!/usr/bin/python3
"""Writes pca_reference.txt: PCA by numpy's SVD for tests/tsne/pca_test.cpp.

Two cases: n >= d (tsne::pca's covariance path) and n < d (its Gram path). Per case:
a line "n d k", n rows of X, a row of the k explained variance ratios (s_c^2 / sum s^2 of the
centred X, scikit-learn's explained_variance_ratio_), n rows of |projection| (signs differ by
convention). Run: /usr/bin/python3 tests/data/tsne/make_pca_reference.py
"""
import os

import numpy as np

rng = np.random.default_rng(13)
out = []
for n, d, k in ((40, 8, 3), (9, 25, 3)):
    # Columns with clearly different scales, so the axes are well separated.
    x = rng.normal(size=(n, d)) * np.linspace(3.0, 0.5, d) + 0.7
    x = x.astype(np.float32).astype(np.float64)
    xc = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    ratio = s**2 / np.sum(s**2)
    proj = xc @ vt[:k].T
    out.append(f"{n} {d} {k}")
    out += [" ".join(f"{v:.9g}" for v in row) for row in x]
    out.append(" ".join(f"{v:.12g}" for v in ratio[:k]))
    out += [" ".join(f"{abs(v):.9g}" for v in row) for row in proj]
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pca_reference.txt"), "w") as f:
    f.write("\n".join(out) + "\n")
