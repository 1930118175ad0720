"""tokmap.Atlas: reference maps built once from a corpus, and new text placed into them."""
from __future__ import annotations

import os
from typing import Iterable, List, Optional, Union

from . import _tokmap
from ._model import Model, Texts, _layer_spec
from ._progress import Progress, ProgressArg, texts_list, threads, warn


class Atlas:
    """A ``.tokmap-atlas`` (docs/ATLAS_FORMAT.md) in memory.

    Atlas.build(corpus, ...) is ``tokmap atlas build``; Atlas.load(path) reads a file;
    atlas.place(texts) is ``tokmap atlas place``: each new token placed into every frozen map,
    independently of the other texts, with a calibrated confidence; tokmap.viz(texts,
    atlas=atlas) makes the page of it.
    """

    def __init__(self, native: "_tokmap._Atlas", path: Optional[str] = None):
        self._native = native
        self.path = path  # the file it was read from or last saved to

    model = property(lambda self: self._native.model)
    metric = property(lambda self: self._native.metric)
    width = property(lambda self: self._native.width)
    rank = property(lambda self: self._native.rank)
    n = property(lambda self: self._native.n, doc="Reference tokens.")
    perplexity = property(lambda self: self._native.perplexity)
    seed = property(lambda self: self._native.seed)
    layers = property(lambda self: self._native.layers)
    texts = property(lambda self: self._native.texts)
    provenance = property(lambda self: self._native.provenance)

    @property
    def tokens(self) -> dict:
        """The reference tokens: id, text_index, position, begin, end, display."""
        return self._native.tokens()

    @property
    def maps(self) -> List[dict]:
        """One dict per (layer, dims): coords (n, dims), kl, calibration."""
        return self._native.maps()

    def __repr__(self) -> str:
        return f"<tokmap.Atlas {self.model}: {self.n} tokens, layers {self.layers}>"

    @classmethod
    def build(
        cls,
        texts: Texts,
        model: Union[None, str, Model] = None,
        *,
        layers: Union[str, int, Iterable[int]] = "all",
        dims: Union[int, Iterable[int]] = (2,),
        perplexity: float = 30.0,
        rank: int = 50,
        metric: str = "cosine",
        iterations: int = 750,
        seed: int = 0,
        max_tokens: int = 50000,
        provenance: str = "",
        lossy: bool = False,
        n_jobs: Optional[int] = None,
        progress: ProgressArg = True,
    ) -> "Atlas":
        """``tokmap atlas build``: the corpus's tokens (each text's first left out, at most
        max_tokens) mapped per layer, with the same options and results as the CLI."""
        dims = [int(dims)] if isinstance(dims, int) else [int(d) for d in dims]
        spec = model.spec if isinstance(model, Model) else model
        with Progress(progress) as bar:
            native = _tokmap._build_atlas(
                texts_list(texts), spec, _layer_spec(layers), dims, float(perplexity), int(rank),
                metric, int(iterations), int(seed), int(max_tokens), provenance, bool(lossy),
                threads(n_jobs), warn, bar)
        return cls(native)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Atlas":
        """Reads a .tokmap-atlas file (every field checked, errors name the file and field)."""
        path = os.fspath(path)
        return cls(_tokmap._read_atlas(path), path)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the atlas file (atomically: a temporary file renamed into place)."""
        path = os.fspath(path)
        self._native.save(path)
        self.path = path

    def place(self, texts: Texts, model: Union[None, str, Model] = None, *,
              iterations: int = 50, lossy: bool = False,
              n_jobs: Optional[int] = None) -> dict:
        """``tokmap atlas place``: the new tokens (each text's first left out) placed into
        every map. Returns {"tokens": columns of the placed tokens, "maps": one dict per
        (layer, dims) with coords (m, dims), confidence (m,) and the raw overlap (m,)}."""
        spec = model.spec if isinstance(model, Model) else model
        return self._native.place(texts_list(texts), spec, int(iterations), bool(lossy),
                                  threads(n_jobs), warn)
