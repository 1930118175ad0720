"""tokmap.viz: the same report folder as `tokmap viz`, its tables, and the page inline."""
import os
import re

import numpy as np
import pytest

import tokmap
from conftest import SENTENCES

FILES = ["index.html", "points.tsv", "maps.tsv", "tensors.tsv", "metadata.tsv"]


@pytest.fixture(scope="module")
def report():
    return tokmap.viz(SENTENCES, highlight="bank", progress=False)


def test_the_saved_folder_is_the_clis_byte_for_byte(cli, report, tmp_path):
    cli("viz", *sum((["--text", t] for t in SENTENCES), []), "--highlight", "bank",
        "--no-figures", "--out", tmp_path / "cli")
    assert report.save(tmp_path / "py", figures=False) == str(tmp_path / "py" / "index.html")
    for name in FILES:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    # The page says how to make it again (viz --from-report reads it).
    assert report.command.startswith("tokmap viz --model demo-brown-gpt2 --text 'I sat by")


def test_options_reach_the_pipeline(cli, tmp_path):
    options = dict(layers=[0, -1], dims=2, perplexity=[2, 4], seed=3, metric="euclidean",
                   normalize="none", exclude_first=False, logit_lens=False, iterations=300)
    report = tokmap.viz(SENTENCES, "demo-brown-gpt2-small", progress=False, **options)
    report.save(tmp_path / "py", figures=False)
    cli("viz", "--model", "demo-brown-gpt2-small", *sum((["--text", t] for t in SENTENCES), []),
        "--layers", "0,-1", "--dims", "2", "--perplexity", "2,4", "--seed", 3, "--metric",
        "euclidean", "--normalize", "none", "--include-first", "--no-logit-lens",
        "--iterations", 300, "--no-figures", "--out", tmp_path / "cli")
    for name in FILES:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert report.layers == [0, report.layers[-1]] and report.perplexities == [2, 4]


def test_tables_are_dicts_of_numpy_arrays(report):
    tokens = report.tokens
    n = len(tokens["id"])
    assert n == sum(len(tokmap.load_model().tokenize(t).ids) - 1 for t in SENTENCES)
    assert tokens["id"].dtype == np.int64 and len(tokens["display"]) == n
    assert {"text_index", "position", "begin", "end", "kind", "label"} <= set(tokens)
    assert len(report.maps) == len(report.layers) * 2  # 2D and 3D per layer
    last = report.map(layer=-1, dims=3)
    assert last.shape == (n, 3) and last.dtype == np.float32
    assert all(0 <= m["trustworthiness"] <= 1 for m in report.maps)
    states = report.states[0]
    assert states["hidden"][6].shape == (n, 128)
    assert '"tokens"' in report.to_json()
    with pytest.raises(tokmap.UsageError, match="no 2D map of layer 9"):
        report.map(layer=9)


def test_the_page_shows_inline_self_contained_and_sandboxed(report):
    html = report._repr_html_()
    assert html.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts' in html
    assert "allow-same-origin" not in html
    page = report.html()
    assert page.startswith("<!doctype html>") and "/*TOKMAP_DATA*/" not in page
    # Offline: nothing is fetched from elsewhere.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", page)


def test_nothing_partial_is_written(report, tmp_path):
    with pytest.raises(tokmap.FileError):
        report.save(tmp_path / "missing" / "report", figures=False)
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(tokmap.Error):
        report.save(tmp_path / "file" / "report", figures=False)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_bad_options_are_usage_errors_with_the_clis_messages():
    with pytest.raises(tokmap.UsageError, match="--seeds"):
        tokmap.viz("text", seeds=0, progress=False)
    with pytest.raises(tokmap.UsageError, match="metric"):
        tokmap.viz("text", metric="manhattan", progress=False)
    with pytest.raises(tokmap.UsageError, match=r"texts\[0\] is empty"):
        tokmap.viz([""], progress=False)


def test_progress_goes_to_a_callback():
    seen = []
    tokmap.viz(SENTENCES[:1], layers="last", dims=2, progress=lambda *a: seen.append(a))
    assert ("t-SNE", 1, 1) in seen or any(w == "t-SNE" and d == t for w, d, t in seen)


def test_ctrl_c_stops_viz_promptly_and_writes_nothing(tmp_path):
    import _thread
    import threading
    import time

    timer = threading.Timer(0.5, _thread.interrupt_main)
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            report = tokmap.viz(SENTENCES * 20, iterations=200000, progress=False)
            report.save(tmp_path / "report")
    finally:
        timer.cancel()
    # Asked between t-SNE iterations: far sooner than 200,000 iterations of 28 maps.
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "report").exists()


def test_two_models_compare_as_in_the_cli(cli, tmp_path):
    small = tokmap.load_model("demo-brown-gpt2-small")
    report = tokmap.viz(SENTENCES, ["demo-brown-gpt2", small], layers="last", dims=2,
                        progress=False)
    report.save(tmp_path / "py", figures=False)
    cli("viz", "--model", "demo-brown-gpt2", "--model", "demo-brown-gpt2-small",
        *sum((["--text", t] for t in SENTENCES), []), "--layers", "last", "--dims", "2",
        "--no-figures", "--out", tmp_path / "cli")
    for name in FILES:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert report.map(model=1, layer=-1).shape == report.map(model=0).shape
