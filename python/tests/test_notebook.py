"""A notebook executed headless (nbclient): `import tokmap`, a map and a report shown inline."""
import json
import os
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    "import numpy as np, tokmap\n"
    "report = tokmap.viz(['I sat by the bank of the river.', 'The bank raised its rates.'],\n"
    "                    highlight='bank', layers='last', progress=False)\n"
    "report",
    "X = np.random.default_rng(0).normal(size=(200, 10))\n"
    "tokmap.TSNE(perplexity=10).fit_transform(X).shape",
]


def test_a_report_shows_inline_in_a_notebook(tmp_path, monkeypatch):
    # A kernel spec that runs this interpreter, so the kernel imports the tokmap under test (the
    # system's "python3" spec may start another Python); PYTHONPATH is inherited.
    spec = tmp_path / "kernels" / "tokmap-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tokmap test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    import tokmap

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [os.path.dirname(os.path.dirname(tokmap.__file__)), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbclient.NotebookClient(nb, kernel_name="tokmap-test", timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = nb.cells[0].outputs[0]["data"]
    html = shown["text/html"]
    assert html.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts' in html
    assert "tokmap.Report" in shown["text/plain"]
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "(200, 2)"
    nbformat.write(nb, str(tmp_path / "executed.ipynb"))  # kept in pytest's tmp for a look
