#!/usr/bin/python3
"""Reference data for tests/tsne (run with Debian's python3 + python3-sklearn 1.2.1):

    /usr/bin/python3 tests/data/tsne/make_reference.py /path/to/shared/datasets

Writes, next to this script:
  small.tsv            150 x 8 float32 points (3 Gaussian blobs, numpy seed 0)
  small_P.tsv          i, j, p_ij of scikit-learn's _joint_probabilities_nn on exact
                       k = floor(3 * perplexity) = 15 nearest neighbours (perplexity 5),
                       squared euclidean distances (as sklearn.manifold.TSNE does)
  brown-2000.npy       rows 0..1999 of brown-demo-L6-20k.npy (float32, 2000 x 128)
  brown-2000.pos.tsv   their part-of-speech labels (one per line, no header)
  brown-2000.sklearn.tsv  10-NN part-of-speech agreement of scikit-learn's 2-D t-SNE map
                       (perplexity 30, init pca, learning_rate auto, barnes_hut) for
                       random_state 0, 1, 2 and their mean.

10-NN agreement = mean over points of the fraction of its 10 nearest neighbours (euclidean,
in the map, self excluded) that have its label.
"""
import os
import sys

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.manifold import TSNE
from sklearn.manifold._t_sne import _joint_probabilities_nn
from sklearn.neighbors import NearestNeighbors

here = os.path.dirname(os.path.abspath(__file__))
shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../../../shared/datasets")

# --- P reference ---
rng = np.random.RandomState(0)
n, d, perplexity = 150, 8, 5.0
centres = rng.normal(scale=4.0, size=(3, d))
x = (centres[np.arange(n) % 3] + rng.normal(size=(n, d))).astype(np.float32)
np.savetxt(os.path.join(here, "small.tsv"), x, delimiter="\t", fmt="%.9g")
x = np.loadtxt(os.path.join(here, "small.tsv"), delimiter="\t", dtype=np.float32)
k = min(n - 1, int(np.floor(3 * perplexity)))
nn = NearestNeighbors(n_neighbors=k, metric="euclidean").fit(x)
distances = nn.kneighbors_graph(mode="distance")  # self excluded
distances.data **= 2
P = _joint_probabilities_nn(distances, perplexity, 0).tocoo()
order = np.lexsort((P.col, P.row))
with open(os.path.join(here, "small_P.tsv"), "w") as f:
    for e in order:
        f.write("%d\t%d\t%.9g\n" % (P.row[e], P.col[e], P.data[e]))


# --- Brown slice and scikit-learn's 10-NN part-of-speech agreement ---
def agreement(y, labels, k=10):
    idx = NearestNeighbors(n_neighbors=k).fit(y).kneighbors(return_distance=False)
    return float(np.mean(labels[idx] == labels[:, None]))


m = 2000
xb = np.load(os.path.join(shared, "brown-demo-L6-20k.npy"))[:m].astype(np.float32)
np.save(os.path.join(here, "brown-2000.npy"), xb)
pos = np.array([line.rstrip("\n").split("\t")[1] for line in
                open(os.path.join(shared, "brown-demo-L6-20k.labels.tsv"), encoding="utf-8")][1:m + 1])
with open(os.path.join(here, "brown-2000.pos.tsv"), "w") as f:
    f.write("\n".join(pos) + "\n")
scores = []
for seed in (0, 1, 2):
    y = TSNE(n_components=2, perplexity=30.0, init="pca", learning_rate="auto",
             random_state=seed).fit_transform(xb)
    scores.append(agreement(y, pos))
with open(os.path.join(here, "brown-2000.sklearn.tsv"), "w") as f:
    f.write("seed0\tseed1\tseed2\tmean\thigh_dim\n")
    f.write("%.4f\t%.4f\t%.4f\t%.4f\t%.4f\n" % (*scores, np.mean(scores), agreement(xb, pos)))
print("sklearn 10-NN agreement", scores, "mean", np.mean(scores), "high-d", agreement(xb, pos))
