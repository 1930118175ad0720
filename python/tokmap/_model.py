"""Models: tokmap.load_model, tokens and hidden states as numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional, Union

import numpy as np

from . import _tokmap
from ._progress import Progress, ProgressArg, texts_list, threads, warn

Texts = Union[str, Iterable[str]]


@dataclass
class Tokens:
    """Tokens of one or more texts, in order (text 0's tokens, then text 1's, ...).

    ids (N,) int64; tokens: vocabulary strings as Hugging Face's convert_ids_to_tokens gives
    them ("Ġbank"); display: readable forms (" bank"); offsets (N, 2) int64 byte spans
    [begin, end) into the text (empty for tokens the tokenizer adds); text_index (N,) int64;
    position (N,) int64, the token's index within its text.
    """

    ids: np.ndarray
    tokens: List[str]
    display: List[str]
    offsets: np.ndarray
    text_index: np.ndarray
    position: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def _from(cls, d: dict) -> "Tokens":
        return cls(d["ids"], d["tokens"], d["display"], d["offsets"], d["text_index"], d["position"])


@dataclass
class HiddenStates:
    """Hidden states as ``tokmap embed`` writes them.

    states (n_layers, N, width) float32: layer 0 is the embedding, layer l the output of block
    l, the last with the final norm (Hugging Face's output_hidden_states=True); layers: the
    hidden-state index of each row of ``states``; tokens: the N tokens.
    """

    states: np.ndarray
    layers: List[int]
    tokens: Tokens

    def layer(self, layer: int) -> np.ndarray:
        """(N, width) states of one hidden-state index (negative: from the end of `layers`)."""
        if layer < 0:
            return self.states[layer]
        return self.states[self.layers.index(layer)]


class Model:
    """A loaded model and its tokenizer (kept loaded: loading it again costs nothing)."""

    def __init__(self, native: "_tokmap._Model", spec: str = ""):
        self._native = native
        self.spec = spec  # as given to load_model: what viz and Atlas pass on to the library

    name = property(lambda self: self._native.name, doc="The model's name as tokmap shows it.")
    path = property(lambda self: self._native.path, doc="Where it was loaded from.")
    n_layer = property(lambda self: self._native.n_layer, doc="Blocks (hidden states: n_layer + 1).")
    width = property(lambda self: self._native.width, doc="Hidden size (n_embd).")
    n_positions = property(lambda self: self._native.n_positions, doc="Context length.")
    model_type = property(lambda self: self._native.model_type, doc="config.json's model_type.")
    vocab_size = property(lambda self: self._native.vocab_size)
    parameter_count = property(lambda self: self._native.parameter_count)

    def __repr__(self) -> str:
        return f"<tokmap.Model {self.name}: {self.model_type}, {self.n_layer} layers x {self.width}>"

    def tokenize(self, texts: Texts, *, add_special_tokens: bool = True,
                 lossy: bool = False) -> Tokens:
        """The tokens of each text exactly as the model's tokenizer.json gives them.

        add_special_tokens=False leaves out the tokens the tokenizer adds (BOS, [CLS] ...);
        lossy=True replaces invalid UTF-8 with U+FFFD (with a warning) instead of failing.
        """
        return Tokens._from(self._native.tokenize(texts_list(texts), add_special_tokens, lossy, warn))

    def hidden_states(self, texts: Texts, layers: Union[str, int, Iterable[int]] = "all", *,
                      add_special_tokens: bool = True, lossy: bool = False,
                      window_stride: int = 0, n_jobs: Optional[int] = None,
                      progress: ProgressArg = True) -> HiddenStates:
        """Every token's hidden state at the selected layers, as ``tokmap embed`` computes them.

        layers: "all", "last", an index or a list of indices (negative counting from the end).
        Texts longer than the context run as overlapping windows ``window_stride`` tokens apart
        (0 = half the context).
        """
        with Progress(progress) as bar:
            d = self._native.hidden_states(
                texts_list(texts), _layer_spec(layers), add_special_tokens, lossy,
                threads(n_jobs), int(window_stride), warn, bar)
        return HiddenStates(d["states"], list(d["layers"]), Tokens._from(d))


def _layer_spec(layers) -> str:
    if isinstance(layers, str):
        return layers
    if isinstance(layers, (int, np.integer)):
        return str(int(layers))
    return ",".join(str(int(l)) for l in layers)


def load_model(name_or_path: Optional[str] = None) -> Model:
    """A model as ``--model`` finds it: a bundled name (demo-brown-gpt2, the default), a model
    folder (Hugging Face layout), a GGUF file, a Hugging Face id in the local cache (gpt2,
    id@revision) or an Ollama model name (llama3.2:1b). Nothing is downloaded."""
    spec = "" if name_or_path is None else str(name_or_path)
    return Model(_tokmap._load_model(spec), spec)
