"""tokmap.load_model: the CLI's tokens (`tokmap tokenize --json`) and states (`tokmap embed`)."""
import json
import struct

import numpy as np
import pytest

import tokmap
from conftest import SENTENCES


def read_safetensors(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        body = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtypes[entry["dtype"]]).reshape(entry["shape"])
    return tensors, header["__metadata__"]


@pytest.fixture(scope="module")
def model():
    return tokmap.load_model()


def test_the_default_is_the_bundled_model(model):
    assert model.name == "demo-brown-gpt2"
    assert (model.n_layer, model.width, model.model_type) == (6, 128, "gpt2")
    assert tokmap.load_model("demo-brown-gpt2")._native.path == model._native.path


def test_tokens_are_the_clis(cli, model):
    tokens = model.tokenize(SENTENCES)
    lines = cli("tokenize", *sum((["--text", t] for t in SENTENCES), []), "--json").splitlines()
    expected = [json.loads(line) for line in lines]
    assert tokens.ids.tolist() == sum((e["ids"] for e in expected), [])
    assert tokens.tokens == sum((e["tokens"] for e in expected), [])
    assert tokens.display == sum((e["display"] for e in expected), [])
    assert tokens.offsets.tolist() == sum((e["offsets"] for e in expected), [])
    assert tokens.text_index.tolist() == sum(([i] * len(e["ids"]) for i, e in enumerate(expected)), [])
    assert tokens.position.tolist() == sum((list(range(len(e["ids"]))) for e in expected), [])
    assert len(model.tokenize("one text")) == 2


def test_hidden_states_are_what_embed_writes(cli, model, tmp_path):
    out = tmp_path / "states.safetensors"
    cli("embed", *sum((["--text", t] for t in SENTENCES), []), "--layers", "0,3,-1", "--out", out)
    tensors, metadata = read_safetensors(out)
    states = model.hidden_states(SENTENCES, layers=[0, 3, -1], progress=False)
    assert states.layers == json.loads(metadata["layers"]) == [0, 3, 6]
    assert np.array_equal(states.states, tensors["hidden_states"])
    assert np.array_equal(states.tokens.ids, tensors["input_ids"])
    assert np.array_equal(states.tokens.text_index, tensors["text_index"])
    assert np.array_equal(states.tokens.position, tensors["position"])
    assert states.tokens.display == json.loads(metadata["tokens"])
    assert np.array_equal(states.layer(3), states.states[1])
    assert np.array_equal(states.layer(-1), states.states[2])
    # Any thread count: the same states.
    one = model.hidden_states(SENTENCES, layers="last", n_jobs=1, progress=False)
    assert np.array_equal(one.states[0], states.states[2])


def test_errors_are_python_exceptions_with_the_clis_messages(model, tmp_path):
    with pytest.raises(tokmap.UsageError, match="layer 9"):
        model.hidden_states("text", layers=[9])
    with pytest.raises(tokmap.UsageError, match=r"texts\[1\] is empty"):
        model.tokenize(["fine", ""])
    with pytest.raises(tokmap.UsageError, match="give at least one text"):
        model.tokenize([])
    with pytest.raises(TypeError, match=r"texts\[0\] must be str"):
        model.tokenize([3])
    with pytest.raises(tokmap.FileError, match="not found; looked in") as error:
        tokmap.load_model("no-such-model-anywhere")
    assert isinstance(error.value, OSError)
    with pytest.raises(tokmap.FileError, match="does not exist"):
        tokmap.load_model(str(tmp_path / "missing" / "folder"))


def test_ctrl_c_stops_a_forward_pass(model):
    import _thread
    import threading

    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.hidden_states(["the bank of the river and the money in it"] * 20000,
                                progress=False)
    finally:
        timer.cancel()
