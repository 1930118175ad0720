"""tokmap.TSNE: the same maps as `tokmap tsne`, scikit-learn's interface and validation."""
import _thread
import threading

import numpy as np
import pytest

import tokmap


def cli_map(cli, tmp_path, x, *flags):
    src, out = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(src, x)
    cli("tsne", "--input", src, "--out", out, *flags)
    return np.load(out)


def test_default_options_give_the_cli_map_bit_for_bit(cli, tmp_path, brown):
    tsne = tokmap.TSNE()
    y = tsne.fit_transform(brown)
    assert np.array_equal(y, cli_map(cli, tmp_path, brown))
    assert y.dtype == np.float32 and y.shape == (2000, 2)
    assert tsne.embedding_ is y
    assert tsne.n_iter_ == 750 and tsne.n_features_in_ == 128
    assert tsne.method_ == "fft" and tsne.perplexity_ == 30.0 and tsne.n_neighbors_ == 90
    assert 0 < tsne.kl_divergence_ < tsne.kl_uniform_


def test_options_map_onto_the_cli_flags(cli, tmp_path, brown):
    x = brown[:300]
    init = np.random.default_rng(1).normal(size=(300, 3)).astype(np.float32) * 1e-4
    np.save(tmp_path / "init.npy", init)
    y = tokmap.TSNE(3, perplexity=12, metric="cosine", method="barnes_hut", init=init,
                    learning_rate=150, early_exaggeration=8, max_iter=400, dof=0.8, pca=20,
                    random_state=5).fit_transform(x)
    expected = cli_map(cli, tmp_path, x, "--dims", 3, "--perplexity", 12, "--metric", "cosine",
                       "--method", "bh", "--init", tmp_path / "init.npy", "--learning-rate", 150,
                       "--early-exaggeration", 8, "--iterations", 400, "--dof", 0.8, "--pca", 20,
                       "--seed", 5)
    assert np.array_equal(y, expected)
    y = tokmap.TSNE(init="random", method="exact", random_state=3).fit_transform(x[:120])
    assert np.array_equal(y, cli_map(cli, tmp_path, x[:120], "--init", "random", "--method",
                                     "exact", "--seed", 3))


def test_any_float_layout_gives_the_same_map(brown):
    x = brown[:400]
    y = tokmap.TSNE().fit_transform(x)
    # float64 is rounded to float32 as the CLI rounds a float64 .npy; order does not matter.
    assert np.array_equal(y, tokmap.TSNE().fit_transform(np.asfortranarray(x.astype(np.float64))))
    assert np.array_equal(y, tokmap.TSNE().fit_transform(x.tolist()))
    assert np.array_equal(y, tokmap.TSNE(n_jobs=1).fit_transform(x))  # any thread count
    ints = (x * 100).astype(np.int32)
    assert np.array_equal(tokmap.TSNE().fit_transform(ints),
                          tokmap.TSNE().fit_transform(ints.astype(np.float32)))


def test_callback_sees_the_optimisation_and_can_stop_it(brown):
    reports = []
    tsne = tokmap.TSNE(callback=reports.append).fit(brown[:300])
    assert [r["iteration"] for r in reports] == list(range(50, 751, 50))
    assert reports[0]["early_exaggeration"] and not reports[-1]["early_exaggeration"]
    assert reports[-1]["kl"] == pytest.approx(tsne.kl_divergence_)
    assert reports[-1]["embedding"].shape == (300, 2)
    stopped = tokmap.TSNE(callback=lambda r: r["iteration"] < 100).fit(brown[:300])
    assert stopped.n_iter_ == 100 and stopped.stopped_

    def broken(report):
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        tokmap.TSNE(callback=broken).fit(brown[:300])
    seen = []
    tokmap.TSNE(progress=lambda *a: seen.append(a)).fit(brown[:100])
    assert seen[-1] == ("t-SNE", 750, 750)


def test_ctrl_c_raises_keyboard_interrupt_and_fits_nothing(brown):
    tsne = tokmap.TSNE(max_iter=100000)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            tsne.fit(brown)
    finally:
        timer.cancel()
    assert not hasattr(tsne, "embedding_")


def test_a_lowered_perplexity_is_a_warning(brown):
    with pytest.warns(tokmap.TokmapWarning, match="perplexity"):
        tsne = tokmap.TSNE().fit(brown[:20])
    assert tsne.perplexity_ < 30


@pytest.mark.parametrize(
    "x, message",
    [
        (np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]), r"Input X contains NaN \(row 2, column 1"),
        (np.array([[0.0, 1.0], [np.inf, 2.0], [3.0, 4.0]]), "Input X contains infinity"),
        (np.array([[0.0, 1.0], [1e300, 2.0], [3.0, 4.0]]), "too large for dtype\\('float32'\\)"),
        (np.zeros(5), "Expected 2D array, got 1D array instead"),
        (np.float32(3), "Expected 2D array, got scalar array instead"),
        (np.zeros((4, 3, 2)), "Found array with dim 3. TSNE expected <= 2."),
        (np.zeros((0, 4)), r"Found array with 0 sample\(s\) \(shape=\(0, 4\)\) while a minimum of 2"),
        (np.zeros((1, 4)), r"Found array with 1 sample\(s\) \(shape=\(1, 4\)\) while a minimum of 2"),
        (np.zeros((5, 0)), r"Found array with 0 feature\(s\)"),
        (np.zeros((5, 2), dtype=complex), "Complex data not supported"),
        (np.array([["a", "b"], ["c", "d"]]), "X must hold numbers"),
    ],
)
def test_bad_input_is_a_value_error_with_scikit_learns_message(x, message):
    with pytest.raises(tokmap.InputError, match=message) as error:
        tokmap.TSNE().fit(x)
    assert isinstance(error.value, ValueError) and isinstance(error.value, tokmap.Error)


def test_identical_rows_are_the_librarys_error():
    with pytest.raises(tokmap.Error, match="identical"):
        tokmap.TSNE().fit(np.ones((10, 3)))


def test_sparse_input_is_refused():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="dense data is required"):
        tokmap.TSNE().fit(sparse.csr_matrix(np.eye(5)))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_components=4), "n_components must be 2 or 3, got 4"),
        (dict(perplexity=-1), "perplexity must be positive"),
        (dict(perplexity=float("nan")), "perplexity must be positive"),
        (dict(learning_rate="fast"), "learning_rate must be 'auto' or a positive number, got 'fast'"),
        (dict(learning_rate=0), "learning_rate must be positive"),
        (dict(max_iter=0), "max_iter must be at least 1"),
        (dict(early_exaggeration=0), "early_exaggeration must be positive"),
        (dict(method="fast"), "method must be auto, exact, bh or fft, got 'fast'"),
        (dict(metric="manhattan"), "metric must be euclidean or cosine, got 'manhattan'"),
        (dict(init="spectral"), "init must be pca, random or an array"),
        (dict(init=np.zeros((3, 2))), "init: initial embedding is 3 x 2, expected 10 x 2"),
        (dict(pca=-2), "pca must be 'auto' or a number of dimensions >= 0"),
        (dict(dof=0), "dof must be positive"),
        (dict(random_state=-1), "random_state must be an integer >= 0"),
        (dict(n_jobs=0), "n_jobs must not be 0"),
    ],
)
def test_bad_parameters_are_usage_errors(params, message):
    with pytest.raises(tokmap.UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tokmap.TSNE(**params).fit(np.random.default_rng(0).normal(size=(10, 3)))


def test_scikit_learn_can_clone_it():
    base = pytest.importorskip("sklearn.base")
    tsne = tokmap.TSNE(perplexity=5, random_state=3)
    twin = base.clone(tsne)
    assert twin.get_params() == tsne.get_params()
    assert "perplexity=5" in repr(tsne)


def test_the_binding_adds_under_a_millisecond(brown):
    import time

    from tokmap import _tokmap

    x = np.ascontiguousarray(brown[:100])
    tsne = tokmap.TSNE(max_iter=1)
    inside, original = [], _tokmap._tsne

    def timed(*args, **kwargs):
        result = original(*args, **kwargs)
        inside.append(result["seconds"])
        return result

    _tokmap._tsne = timed
    try:
        spent = []
        for _ in range(5):
            start = time.perf_counter()
            tsne.fit(x)
            spent.append(time.perf_counter() - start - inside[-1])
    finally:
        _tokmap._tsne = original
    assert np.median(spent) < 1e-3
