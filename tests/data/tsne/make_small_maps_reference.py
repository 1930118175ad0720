#!/usr/bin/python3
"""scikit-learn reference KL divergences for the small-map grid of tests/tsne (Debian's python3 with
python3-sklearn 1.2.1):

    /usr/bin/python3 tests/data/tsne/make_small_maps_reference.py [JOBS]

Writes small_maps.sklearn.tsv next to this script: one row per (n, perplexity, metric, dims) with
the KL divergence scikit-learn's optimiser reaches on the same problem tokmap solves.

The data are the first n rows of brown-2000.npy (consecutive tokens of running text: the hidden
states of a sentence or a paragraph). What is shared with tokmap, so that only the optimiser
differs:
- the input preparation: euclidean centres the columns, cosine scales each row to unit length;
- P: k = min(n - 1, floor(3 * perplexity)) exact nearest neighbours, squared euclidean distances,
  scikit-learn's _joint_probabilities_nn (its binary search and symmetrisation), with a perplexity
  >= n lowered to (n - 1) / 3 as tokmap lowers it;
- the initialisation: the top principal components of the prepared input, scaled so the first
  has standard deviation 1e-4, signs fixed so each axis's largest-magnitude loading is positive;
- the objective: the Student-t kernel with one degree of freedom in 2D and 3D alike.
scikit-learn's own optimiser does the rest: TSNE._tsne with learning_rate="auto"
(max(n / 12 / 4, 50)), early exaggeration 12 for 250 iterations, 1000 iterations in all,
method "exact" up to 1,000 points and "barnes_hut" (angle 0.5) above, as sklearn.manifold.TSNE
runs it. The KL divergence is then evaluated exactly (all pairs in Q) on that P, which is what
tokmap reports for n <= 10,000.
"""
import os
import sys
from multiprocessing import Pool

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial.distance import squareform
from sklearn.manifold import TSNE
from sklearn.manifold._t_sne import _joint_probabilities_nn
from sklearn.neighbors import NearestNeighbors

here = os.path.dirname(os.path.abspath(__file__))
SIZES_ALL_PERPLEXITIES = (5, 12, 20, 50, 100, 190, 400)
SIZES_FEW_PERPLEXITIES = (600, 1000, 2000)


def grid():
    for n in SIZES_ALL_PERPLEXITIES + SIZES_FEW_PERPLEXITIES:
        perplexities = (2, 5, 15, 30, 50) if n in SIZES_ALL_PERPLEXITIES else (5, 30, 50)
        seen = set()
        for perplexity in perplexities:
            used = perplexity if perplexity < n else (n - 1) / 3.0
            if used in seen:
                continue
            seen.add(used)
            for metric in ("euclidean", "cosine"):
                for dims in (2, 3):
                    yield n, perplexity, metric, dims


def prepare(x, metric):
    x = x.astype(np.float32)
    if metric == "cosine":
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return (x - x.mean(axis=0, dtype=np.float64)).astype(np.float32)


def joint_p(x, perplexity):
    n = len(x)
    k = min(n - 1, int(np.floor(3 * perplexity)))
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x)
    distances = nn.kneighbors_graph(mode="distance")
    distances.data **= 2
    return csr_matrix(_joint_probabilities_nn(distances, perplexity, 0))


def pca_init(x, dims):
    xc = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)
    values, vectors = np.linalg.eigh(xc.T @ xc)
    vectors = vectors[:, np.argsort(values)[::-1][:dims]]
    for a in range(dims):
        if vectors[np.argmax(np.abs(vectors[:, a])), a] < 0:
            vectors[:, a] = -vectors[:, a]
    y = xc @ vectors
    return (y / y[:, 0].std() * 1e-4).astype(np.float32)


def exact_kl(p, y):
    y = y.astype(np.float64)
    d2 = ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    w = 1.0 / (1.0 + d2)
    np.fill_diagonal(w, 0.0)
    z = w.sum()
    coo = p.tocoo()
    v = coo.data.astype(np.float64)
    keep = v > 0
    return float(np.sum(v[keep] * (np.log(v[keep]) - np.log(w[coo.row[keep], coo.col[keep]] / z))))


def run(config):
    n, perplexity, metric, dims = config
    x = prepare(np.load(os.path.join(here, "brown-2000.npy"))[:n], metric)
    used = perplexity if perplexity < n else (n - 1) / 3.0
    p = joint_p(x, used)
    y0 = pca_init(x, dims)
    method = "exact" if n <= 1000 else "barnes_hut"
    tsne = TSNE(n_components=dims, perplexity=min(used, n - 1), method=method, init=y0,
                learning_rate="auto", random_state=0)
    tsne.learning_rate_ = max(n / tsne.early_exaggeration / 4, 50)
    p_arg = squareform(p.toarray(), checks=False) if method == "exact" else p.astype(np.float32)
    y = tsne._tsne(p_arg, 1, n, y0.copy(), None, 0)
    return n, perplexity, used, metric, dims, method, exact_kl(p, y.reshape(n, dims))


if __name__ == "__main__":
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with Pool(jobs) as pool:
        rows = pool.map(run, list(grid()), chunksize=1)
    with open(os.path.join(here, "small_maps.sklearn.tsv"), "w") as f:
        f.write("n\tperplexity\tperplexity_used\tmetric\tdims\tsklearn_method\tkl\n")
        for n, perplexity, used, metric, dims, method, kl in rows:
            f.write("%d\t%g\t%.6g\t%s\t%d\t%s\t%.6f\n" % (n, perplexity, used, metric, dims, method, kl))
    print("wrote %d rows" % len(rows))
