#!/usr/bin/python3
"""t-SNE side by side: tokmap, scikit-learn, Rtsne and FIt-SNE on the same data.

Run through bench/tsne/run.sh (which builds tokmap and sets the paths). Environment:
  TOKMAP_BIN   tokmap binary (required)
  DATA         .npy float32 matrix (the Brown 20k set from ../shared or a slice of it)
  SIZES        comma-separated row counts to take from DATA (default 10000)
  DIMS         2 or 3 (default 2)
  WORK         scratch folder outside git (default /tmp/tokmap-bench-tsne)
  FITSNE_BIN   FIt-SNE 1.2.1 binary (bin/fast_tsne built outside the repo); skipped if unset
  PEERS        comma-separated subset of tokmap,sklearn,rtsne,fitsne (default all); also
               tokmap-bh, tokmap-fft, tokmap-exact for a fixed repulsion method, tokmap-nopca
               for --pca 0 (kNN on the raw input, like scikit-learn and FIt-SNE)
  THREADS      threads for every tool (default: all cores)

Every tool gets perplexity 30, PCA initialisation and its own default iteration count (tokmap
and FIt-SNE 750, scikit-learn and Rtsne 1000). Wall time is measured around the t-SNE call
(tokmap and FIt-SNE: the whole process, file I/O included). The final KL of every embedding is
then evaluated by one common, exact evaluator (P from exact 90-NN on the raw input, sklearn's
_joint_probabilities_nn; Q exact over all pairs), so the KL column is comparable; each tool's
own reported KL is shown beside it.
"""
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.manifold import TSNE
from sklearn.manifold._t_sne import _joint_probabilities_nn
from sklearn.neighbors import NearestNeighbors

PERPLEXITY = 30.0


def exact_kl(x, y):
    """KL(P || Q) with sklearn's P on exact k = 90 neighbours and the exact Student-t Q."""
    n = x.shape[0]
    k = min(n - 1, int(3 * PERPLEXITY))
    nn = NearestNeighbors(n_neighbors=k).fit(x)
    dist = nn.kneighbors_graph(mode="distance")
    dist.data **= 2
    P = _joint_probabilities_nn(dist, PERPLEXITY, 0).tocoo()
    y = y.astype(np.float64)
    z = 0.0
    for start in range(0, n, 2000):
        block = y[start:start + 2000]
        d2 = (block ** 2).sum(1)[:, None] + (y ** 2).sum(1)[None, :] - 2 * block @ y.T
        w = 1.0 / (1.0 + np.maximum(d2, 0))
        z += w.sum() - block.shape[0]  # minus the diagonal
    d2 = ((y[P.row] - y[P.col]) ** 2).sum(1)
    q = 1.0 / (1.0 + d2) / z
    p = P.data
    return float(np.sum(p * np.log(np.maximum(p, 1e-300) / q)))


def run_tokmap(x_path, out, dims, threads, extra=()):
    cmd = [os.environ["TOKMAP_BIN"], "tsne", "-i", x_path, "-o", out, "--dims", str(dims),
           "--perplexity", str(PERPLEXITY), "--seed", "0", *extra]
    if threads:
        cmd += ["--threads", str(threads)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    own = None
    for line in proc.stderr.splitlines():
        if line.startswith("iteration ") and "KL divergence" in line:
            own = float(line.rsplit(" ", 1)[1])
    return np.load(out), wall, own


def run_sklearn(x, dims, threads):
    tsne = TSNE(n_components=dims, perplexity=PERPLEXITY, init="pca", learning_rate="auto",
                random_state=0, n_jobs=threads or None)
    start = time.perf_counter()
    y = tsne.fit_transform(x)
    return y, time.perf_counter() - start, float(tsne.kl_divergence_)


RTSNE = r"""
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); d <- as.integer(args[3]); dims <- as.integer(args[5])
threads <- as.integer(args[6])
con <- file(args[1], "rb"); x <- matrix(readBin(con, "double", n * d), nrow = n, byrow = TRUE); close(con)
suppressMessages(library(Rtsne))
t <- system.time(r <- Rtsne(x, dims = dims, perplexity = 30, theta = 0.5, pca = TRUE,
                            check_duplicates = FALSE, num_threads = threads))[["elapsed"]]
con <- file(args[4], "wb"); writeBin(as.vector(t(r$Y)), con); writeBin(c(t, tail(r$itercosts, 1)), con); close(con)
"""


def run_rtsne(x, dims, threads, work):
    src = os.path.join(work, "rtsne.R")
    with open(src, "w") as f:
        f.write(RTSNE)
    inp, out = os.path.join(work, "rtsne_in.bin"), os.path.join(work, "rtsne_out.bin")
    x.astype(np.float64).tofile(inp)
    subprocess.run(["Rscript", src, inp, str(x.shape[0]), str(x.shape[1]), out, str(dims),
                    str(threads or os.cpu_count())], check=True, capture_output=True)
    raw = np.fromfile(out, dtype=np.float64)
    n = x.shape[0]
    return raw[:n * dims].reshape(n, dims), float(raw[n * dims]), float(raw[n * dims + 1])


def run_fitsne(x, dims, threads, work):
    """FIt-SNE 1.2.1 with fast_tsne.py's defaults (FFT, annoy, PCA init, lr max(200, N/12))."""
    n, d = x.shape
    xd = x.astype(np.float64)
    # PCA initialisation as fast_tsne.py does it (first axis std 1e-4).
    xc = xd - xd.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    init = xc @ vt[:dims].T
    init = init / np.std(init[:, 0]) * 1e-4
    lr = max(200.0, n / 12.0)
    with open(os.path.join(work, "data.dat"), "wb") as f:
        f.write(struct.pack("=iidd", n, d, 0.5, PERPLEXITY))
        f.write(struct.pack("=iiii", dims, 750, 250, 250))
        f.write(struct.pack("=dddd", 0.5, 0.8, lr, 5.0))
        f.write(struct.pack("=id", -1, -1.0))              # K, sigma
        f.write(struct.pack("=ii", 2, 1))                  # FFT, annoy
        f.write(struct.pack("=di", 12.0, 0))               # early exaggeration, momentum in EE
        f.write(struct.pack("=ii", 50, int(3 * PERPLEXITY * 50)))  # n_trees, search_k
        f.write(struct.pack("=id", -1, -1.0))              # no late exaggeration
        f.write(struct.pack("=idi", 3, 1.0, 50))           # nterms, intervals/unit, min intervals
        f.write(xd.tobytes())
        f.write(struct.pack("=idi", -1, 1.0, 0))           # seed, df, load_affinities
        f.write(init.astype(np.float64).tobytes())
    start = time.perf_counter()
    subprocess.run([os.environ["FITSNE_BIN"], "1.2.1", "data.dat", "result.dat",
                    str(threads or os.cpu_count())], cwd=work, check=True, capture_output=True)
    wall = time.perf_counter() - start
    with open(os.path.join(work, "result.dat"), "rb") as f:
        n2, md = struct.unpack("=ii", f.read(8))
        y = np.frombuffer(f.read(8 * n2 * md), dtype=np.float64).reshape(n2, md)
        (iters,) = struct.unpack("=i", f.read(4))
        loss = np.frombuffer(f.read(8 * iters), dtype=np.float64)
    return y, wall, float(loss[-1])


def main():
    data = np.load(os.environ["DATA"]).astype(np.float32)
    sizes = [int(s) for s in os.environ.get("SIZES", "10000").split(",")]
    dims = int(os.environ.get("DIMS", "2"))
    threads = int(os.environ.get("THREADS", "0"))
    work = os.environ.get("WORK", "/tmp/tokmap-bench-tsne")
    os.makedirs(work, exist_ok=True)
    peers = os.environ.get("PEERS", "tokmap,tokmap-nopca,fitsne,sklearn,rtsne").split(",")
    if "fitsne" in peers and not os.environ.get("FITSNE_BIN"):
        print("FITSNE_BIN not set: skipping FIt-SNE", file=sys.stderr)
        peers.remove("fitsne")
    print("| N | dims | tool | wall s | final KL (common exact evaluator) | tool's own KL |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        x = data[:n]
        x_path = os.path.join(work, "x-%d.npy" % n)
        np.save(x_path, x)
        for peer in peers:
            if peer == "tokmap":
                y, wall, own = run_tokmap(x_path, os.path.join(work, "tokmap-out.npy"), dims, threads)
            elif peer == "tokmap-nopca":
                y, wall, own = run_tokmap(x_path, os.path.join(work, "tokmap-out.npy"), dims,
                                          threads, ["--pca", "0"])
            elif peer.startswith("tokmap-"):  # tokmap-bh, tokmap-fft, tokmap-exact
                y, wall, own = run_tokmap(x_path, os.path.join(work, "tokmap-out.npy"), dims,
                                          threads, ["--method", peer.split("-", 1)[1]])
            elif peer == "sklearn":
                y, wall, own = run_sklearn(x, dims, threads)
            elif peer == "rtsne":
                y, wall, own = run_rtsne(x, dims, threads, work)
            elif peer == "fitsne":
                y, wall, own = run_fitsne(x, dims, threads, work)
            else:
                raise SystemExit("unknown peer " + peer)
            kl = exact_kl(x, y) if dims == 2 else float("nan")
            print("| %d | %d | %s | %.1f | %.4f | %s |" % (
                n, dims, peer, wall, kl, "" if own is None else "%.4f" % own), flush=True)


if __name__ == "__main__":
    main()
