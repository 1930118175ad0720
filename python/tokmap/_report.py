"""tokmap.viz and its Report: the pipeline of ``tokmap viz`` as a call, shown inline in Jupyter."""
from __future__ import annotations

import html
import os
from typing import TYPE_CHECKING, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import _tokmap
from ._errors import UsageError
from ._model import Model, Texts, _layer_spec
from ._progress import Progress, ProgressArg, texts_list, threads, warn

if TYPE_CHECKING:
    from ._atlas import Atlas


def _quote(word: str) -> str:
    """A word for a POSIX shell, as the CLI quotes them (plain words stay bare)."""
    plain = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./,:=@+%")
    if word and all(c in plain for c in word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


def _g(x: float) -> str:
    return "%g" % x


class Report:
    """A viz report in memory: its tables, the page, and save(folder).

    tokens: dict of columns (text_index, position, id, begin, end, display, label, kind; for
    atlas reports also source and confidence); maps: one dict per map (model, layer,
    perplexity, dims, coords (N, dims), kl, kl_uniform, trustworthiness, continuity,
    knn_preservation, k, stability, seed_coords); states: per model, the normalised hidden
    states of the points by layer. In Jupyter the report shows itself inline: the same
    self-contained page as index.html, in a sandboxed iframe (works offline).
    """

    def __init__(self, native: "_tokmap._Report", command: List[str]):
        self._native = native
        self._command = command
        self._tokens = None
        self._maps = None

    title = property(lambda self: self._native.title)
    texts = property(lambda self: self._native.texts)
    models = property(lambda self: self._native.models)
    layers = property(lambda self: self._native.layers)
    perplexities = property(lambda self: self._native.perplexities)
    dims = property(lambda self: self._native.dims)
    warnings = property(lambda self: self._native.warnings)
    seconds = property(lambda self: self._native.seconds)
    summary = property(lambda self: self._native.summary, doc="viz's one-line summary.")

    @property
    def command(self) -> str:
        """The ``tokmap viz`` command that makes the same report (add --out DIR)."""
        return self._native.created_with

    @property
    def tokens(self) -> dict:
        if self._tokens is None:
            self._tokens = self._native.tokens()
        return self._tokens

    @property
    def maps(self) -> List[dict]:
        if self._maps is None:
            self._maps = self._native.maps()
        return self._maps

    @property
    def states(self) -> List[dict]:
        return self._native.states()

    def map(self, layer: int = -1, dims: int = 2, model: Union[int, str] = 0,
            perplexity: Optional[float] = None) -> np.ndarray:
        """The (N, dims) coordinates of one map (layer -1: the last mapped layer)."""
        name = self.models[model] if isinstance(model, int) else model
        if layer < 0:  # counted from the end of this model's mapped layers
            mapped = sorted({m["layer"] for m in self.maps if m["model"] == name})
            if -layer > len(mapped):
                raise UsageError(f"layer {layer}: {name} has {len(mapped)} mapped layers")
            layer = mapped[layer]
        for m in self.maps:
            if (m["model"] == name and m["layer"] == layer and m["dims"] == dims
                    and (perplexity is None or m["perplexity"] == perplexity)):
                return m["coords"]
        raise UsageError(f"no {dims}D map of layer {layer} of {name} in this report")

    def to_json(self) -> str:
        """The report's data object (docs/REPORT_FORMAT.md) as JSON text."""
        return self._native.data_json()

    def html(self) -> str:
        """index.html's text: the page with the data inlined, self-contained."""
        return self._native.html().decode("utf-8", "replace")

    def save(self, folder: Union[str, os.PathLike], *, figures: bool = True,
             n_jobs: Optional[int] = None) -> str:
        """Writes the report folder as ``tokmap viz --out`` does (index.html, points.tsv,
        maps.tsv, the Projector export and, with figures, figures/): all or nothing, built beside
        `folder` and renamed into place. Returns the path of index.html."""
        folder = os.fspath(folder)
        words = list(self._command) + ([] if figures else ["--no-figures"])
        if self._command:
            self._native.set_created_with(" ".join(_quote(w) for w in words))
        self._native.save(folder, figures, threads(n_jobs))
        return os.path.join(folder, "index.html")

    def _repr_html_(self) -> str:
        page = html.escape(self.html(), quote=True)
        return (
            f'<iframe srcdoc="{page}" sandbox="allow-scripts allow-downloads" '
            'style="width: 100%; height: 760px; border: 1px solid #ddd;" '
            f'title="{html.escape(self.title)}"></iframe>'
        )

    def __repr__(self) -> str:
        return f"<tokmap.Report {self.summary}>"


def _models(model) -> List[str]:
    if model is None:
        return []
    if isinstance(model, (str, Model)):
        model = [model]
    return [m.spec if isinstance(m, Model) else os.fspath(m) for m in model]


def viz(
    texts: Texts,
    model: Union[None, str, Model, Sequence[Union[str, Model]]] = None,
    *,
    layers: Union[str, int, Iterable[int]] = "all",
    dims: Union[int, Iterable[int]] = (2, 3),
    perplexity: Union[None, float, Iterable[float]] = None,
    seed: int = 0,
    seeds: int = 1,
    metric: str = "cosine",
    normalize: str = "center",
    exclude_first: bool = True,
    logit_lens: bool = True,
    highlight: Union[str, Iterable[str]] = (),
    iterations: int = 750,
    lossy: bool = False,
    atlas: Union[None, str, os.PathLike, "Atlas"] = None,
    n_jobs: Optional[int] = None,
    progress: ProgressArg = True,
) -> Report:
    """``tokmap viz`` as a call: every selected layer of each model mapped with t-SNE, with the
    analyses, comparisons and logit lens of the page; the same report as the CLI for the same
    options. ``model``: a name, path or Model, or a list to compare (default: the bundled
    model). ``atlas``: place the texts into an atlas's frozen maps instead (viz --atlas).
    """
    texts = texts_list(texts)
    models = _models(model)
    with Progress(progress) as bar:
        if atlas is not None:
            return _viz_atlas(texts, models, atlas, exclude_first, lossy, threads(n_jobs), bar)
        dims_list = [int(dims)] if isinstance(dims, (int, np.integer)) else [int(d) for d in dims]
        if perplexity is None:
            perplexities: List[float] = []
        elif isinstance(perplexity, (int, float, np.number)):
            perplexities = [float(perplexity)]
        else:
            perplexities = [float(p) for p in perplexity]
        highlight = [highlight] if isinstance(highlight, str) else list(highlight)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise UsageError(f"seed must be an integer >= 0, got {seed!r}")
        layer_spec = _layer_spec(layers)
        native = _tokmap._viz(
            texts, models, layer_spec, dims_list, perplexities, int(seed), int(seeds), metric,
            normalize, bool(exclude_first), bool(logit_lens), highlight, int(iterations),
            threads(n_jobs), bool(lossy), warn, bar)
    # The command line viz writes into the page (viz --from-report reads it back).
    words = ["tokmap", "viz"]
    for m in native.models:
        words += ["--model", m]
    for t in texts:
        words += ["--text", t]
    if lossy:
        words.append("--lossy")
    for h in highlight:
        words += ["--highlight", h]
    words += [
        "--layers", layer_spec, "--dims", ",".join(map(str, dims_list)),
        "--perplexity", ",".join(_g(p) for p in native.perplexities),
        "--seed", str(int(seed)), "--seeds", str(int(seeds)), "--metric", metric,
        "--normalize", normalize, "--exclude-first" if exclude_first else "--include-first",
        "--iterations", str(int(iterations)),
    ]
    if not logit_lens:
        words.append("--no-logit-lens")
    native.set_created_with(" ".join(_quote(w) for w in words))
    if native.degenerate:  # as viz warns after its summary
        warn(native.degenerate)
    return Report(native, words)


def _viz_atlas(texts, models, atlas, exclude_first, lossy, n_jobs, bar) -> Report:
    from ._atlas import Atlas

    if len(models) > 1:
        raise UsageError("viz with an atlas takes one model")
    if isinstance(atlas, Atlas):
        name = atlas.path or "the atlas"
        source = atlas._native
    else:
        name = source = os.fspath(atlas)
    native = _tokmap._viz_atlas(texts, source, name, models[0] if models else "",
                                bool(exclude_first), n_jobs, bool(lossy), warn, bar)
    line = "tokmap viz --atlas " + _quote(name) + "".join(" --text " + _quote(t) for t in texts)
    native.set_created_with(line)
    return Report(native, [])
