"""Paths shared by the tests: the repository's test data and the CLI the results are compared
with. Run from the repository root:

    PYTHONPATH=build/python /usr/bin/python3 -m pytest -q python/tests

(TOKMAP_BINARY: the `tokmap` binary to compare with, default build/tokmap.)
"""
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data")
SAMPLES = os.path.join(ROOT, "samples")


def binary():
    return os.environ.get("TOKMAP_BINARY", os.path.join(ROOT, "build", "tokmap"))


@pytest.fixture(scope="session")
def cli():
    """Runs the tokmap CLI (quietly); skips when it is not built."""
    path = binary()
    if not os.path.exists(path):
        pytest.skip(f"{path} is not built")

    def run(*args):
        proc = subprocess.run([path, *map(str, args), "--quiet"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


@pytest.fixture(scope="session")
def brown():
    import numpy as np

    return np.load(os.path.join(DATA, "tsne", "brown-2000.npy"))


SENTENCES = [
    "I sat by the bank of the river.",
    "The bank raised its interest rates.",
    "She went to the bank to deposit money.",
]
