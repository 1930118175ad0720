"""tokmap.Atlas: the same atlas file and placements as `tokmap atlas build|place`."""
import numpy as np
import pytest

import tokmap
from conftest import SAMPLES

import os

CORPUS = [line.rstrip("\n") for line in open(os.path.join(SAMPLES, "sentences.txt")) if line.strip()]
NEW = ["The bank of the river was muddy.", "He plays the piano."]


@pytest.fixture(scope="module")
def atlas():
    return tokmap.Atlas.build(CORPUS, layers=[0, -1], dims=[2, 3], progress=False)


def test_build_writes_the_clis_file(cli, atlas, tmp_path):
    cli("atlas", "build", "--file", os.path.join(SAMPLES, "sentences.txt"), "--layers", "0,-1",
        "--dims", "2", "3", "--out", tmp_path / "cli.tokmap-atlas")
    atlas.save(tmp_path / "py.tokmap-atlas")
    assert (tmp_path / "py.tokmap-atlas").read_bytes() == (tmp_path / "cli.tokmap-atlas").read_bytes()
    again = tokmap.Atlas.load(tmp_path / "cli.tokmap-atlas")
    assert again.layers == [0, 6] and again.n == atlas.n and again.model == "demo-brown-gpt2"
    assert [m["dims"] for m in again.maps] == [2, 3, 2, 3]
    assert again.maps[0]["coords"].shape == (atlas.n, 2)
    assert atlas.tokens["display"][0] == again.tokens["display"][0]


def test_place_gives_the_clis_points(cli, atlas, tmp_path):
    atlas.save(tmp_path / "a.tokmap-atlas")
    args = sum((["--text", t] for t in NEW), [])
    cli("atlas", "place", "--atlas", tmp_path / "a.tokmap-atlas", *args, "--out", tmp_path / "p.tsv")
    rows = [line.split("\t") for line in (tmp_path / "p.tsv").read_text().splitlines()[1:]]
    placed = [r for r in rows if r[0] == "placed"]
    result = atlas.place(NEW)
    m = len(result["tokens"]["id"])
    assert [int(r[4]) for r in placed[:m]] == result["tokens"]["id"].tolist()
    for k, map_ in enumerate(result["maps"]):
        got = placed[k * m:(k + 1) * m]
        assert all(int(r[5]) == map_["layer"] and int(r[6]) == map_["dims"] for r in got)
        # The TSV holds 6 significant digits.
        coords = np.array([[float(v) for v in r[7:7 + map_["dims"]]] for r in got])
        assert np.allclose(coords, map_["coords"], rtol=1e-5, atol=1e-5)
        assert np.allclose([float(r[10]) for r in got], map_["confidence"], atol=1e-5)


def test_viz_with_an_atlas_is_viz_atlas(cli, atlas, tmp_path):
    atlas.save(tmp_path / "a.tokmap-atlas")
    report = tokmap.viz(NEW, atlas=atlas, progress=False)
    report.save(tmp_path / "py", figures=False)
    cli("viz", "--atlas", tmp_path / "a.tokmap-atlas", *sum((["--text", t] for t in NEW), []),
        "--no-figures", "--out", tmp_path / "cli")
    for name in ["points.tsv", "maps.tsv"]:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    assert set(report.tokens["source"]) == {"atlas", "placed"}


def test_a_bad_file_names_itself(tmp_path):
    bad = tmp_path / "bad.tokmap-atlas"
    bad.write_bytes(b"not an atlas")
    with pytest.raises(tokmap.InputError, match="bad.tokmap-atlas"):
        tokmap.Atlas.load(bad)
    with pytest.raises(tokmap.FileError, match="cannot open"):
        tokmap.Atlas.load(tmp_path / "missing.tokmap-atlas")
