#!/usr/bin/env python3
"""Reference trustworthiness values from scikit-learn (run with Debian's /usr/bin/python3,
package python3-sklearn 1.2). Writes trustworthiness_reference.json next to this script.

Continuity is trustworthiness with the two spaces swapped."""
import json
import os

import numpy as np
from sklearn.manifold import trustworthiness

rng = np.random.default_rng(7)
X = rng.normal(size=(80, 12)).astype(np.float32)
Y = (X[:, :2] + 0.8 * rng.normal(size=(80, 2))).astype(np.float32)
out = {"X": X.ravel().tolist(), "Y": Y.ravel().tolist(), "n": 80, "d": 12, "dims": 2, "cases": []}
for k in (5, 10):
    for metric in ("euclidean", "cosine"):
        out["cases"].append({
            "k": k, "metric": metric,
            "trustworthiness": float(trustworthiness(X, Y, n_neighbors=k, metric=metric)),
            # continuity: neighbours in X lost in Y, ranked in Y (always euclidean in the map)
            "continuity": float(trustworthiness(Y, X, n_neighbors=k, metric="euclidean"))
            if metric == "euclidean" else None,
        })
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "trustworthiness_reference.json"), "w") as f:
    json.dump(out, f)
