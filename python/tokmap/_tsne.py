"""tokmap.TSNE: scikit-learn's estimator interface over tokmap's t-SNE (src/tsne)."""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _tokmap
from ._errors import InputError, UsageError
from ._progress import Progress, ProgressArg, threads, warn

Callback = Callable[[dict], Optional[bool]]


def _check_array(X: Any, name: str = "X", estimator: str = "TSNE") -> np.ndarray:
    """X as a C-contiguous float32 matrix, with scikit-learn's check_array messages.

    float64 (and integer) input is rounded to float32 as `tokmap tsne` rounds a float64 .npy, so
    both give the same map; a finite float64 beyond float32's range is reported as infinity.
    """
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise TypeError(
            "A sparse matrix was passed, but dense data is required. "
            "Use X.toarray() to convert to a dense numpy array."
        )
    array = np.asarray(X)
    if array.dtype.kind == "c":
        raise InputError(f"Complex data not supported\n{array!r}\n")
    if array.dtype.kind not in "fiub":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise InputError(f"{name} must hold numbers: {e}") from None
    if array.ndim == 0:
        raise InputError(
            f"Expected 2D array, got scalar array instead:\narray={array!r}.\n"
            "Reshape your data either using array.reshape(-1, 1) if your data has a single "
            "feature or array.reshape(1, -1) if it contains a single sample."
        )
    if array.ndim == 1:
        raise InputError(
            f"Expected 2D array, got 1D array instead:\narray={array!r}.\n"
            "Reshape your data either using array.reshape(-1, 1) if your data has a single "
            "feature or array.reshape(1, -1) if it contains a single sample."
        )
    if array.ndim > 2:
        raise InputError(f"Found array with dim {array.ndim}. {estimator} expected <= 2.")
    with np.errstate(over="ignore"):
        array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        where = f" (row {bad[0] + 1}, column {bad[1] + 1}; t-SNE needs finite values)"
        if np.isnan(array[bad[0], bad[1]]):
            raise InputError(f"Input {name} contains NaN{where}.")
        raise InputError(
            f"Input {name} contains infinity or a value too large for dtype('float32'){where}."
        )
    n, d = array.shape
    if n < 2:
        raise InputError(
            f"Found array with {n} sample(s) (shape={array.shape}) while a minimum of 2 is "
            f"required by {estimator}."
        )
    if d < 1:
        raise InputError(
            f"Found array with {d} feature(s) (shape={array.shape}) while a minimum of 1 is "
            f"required by {estimator}."
        )
    return array


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        value > 0 and math.isfinite(value)
    ):
        raise UsageError(f"{name} must be positive, got {value!r}")
    return float(value)


class TSNE:
    """t-SNE with scikit-learn's interface; the same map as ``tokmap tsne`` for the same options.

    Parameters mirror ``tokmap tsne``'s flags under scikit-learn's names: ``n_components``
    (--dims, 2 or 3), ``perplexity`` (lowered to (N - 1) / 3 when >= N, with a warning),
    ``early_exaggeration``, ``learning_rate`` ("auto" = max(N / early exaggeration, 200), or a
    number), ``max_iter`` (--iterations, the first 250 exaggerated), ``metric`` ("euclidean" or
    "cosine"), ``method`` ("auto", "exact", "bh"/"barnes_hut" or "fft"), ``init`` ("pca",
    "random" or an (N, n_components) array), ``dof`` (degrees of freedom of the t kernel),
    ``pca`` ("auto": 50 dimensions for the neighbour search when D > 50; 0: off; or a number),
    ``random_state`` (--seed, an integer >= 0) and ``n_jobs`` (None or -1: every core; results do
    not depend on it).

    ``callback(report)`` is called every 50 iterations and after the last with a dict
    (iteration, total_iterations, kl, kl_exact, early_exaggeration, embedding); returning False
    stops the optimisation, which keeps the current map. ``progress``: True draws a tqdm bar
    (when tqdm is installed) for runs longer than a second, a callable gets
    (what, done, total). Ctrl-C raises KeyboardInterrupt and leaves the estimator unfitted.

    Attributes after fit: ``embedding_`` (N, n_components) float32, ``kl_divergence_``,
    ``n_iter_``, ``n_features_in_``, ``method_``, ``perplexity_`` (as used), ``n_neighbors_``,
    ``early_exaggeration_`` (as used, after the collapse cap), ``kl_uniform_`` (KL of the map
    with every point in one place: kl_divergence_ / kl_uniform_ rates the map), ``stopped_``.
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        perplexity: float = 30.0,
        early_exaggeration: float = 12.0,
        learning_rate: Union[str, float] = "auto",
        max_iter: int = 750,
        metric: str = "euclidean",
        method: str = "auto",
        init: Union[str, np.ndarray] = "pca",
        dof: float = 1.0,
        pca: Union[str, int] = "auto",
        random_state: Optional[int] = 0,
        n_jobs: Optional[int] = None,
        callback: Optional[Callback] = None,
        progress: ProgressArg = False,
    ):
        self.n_components = n_components
        self.perplexity = perplexity
        self.early_exaggeration = early_exaggeration
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.metric = metric
        self.method = method
        self.init = init
        self.dof = dof
        self.pca = pca
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.callback = callback
        self.progress = progress

    # scikit-learn's estimator protocol (clone, grid search, repr).
    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params: Any) -> "TSNE":
        for k, v in params.items():
            if k not in self._param_names():
                raise UsageError(f"invalid parameter {k!r} for TSNE")
            setattr(self, k, v)
        return self

    @staticmethod
    def _param_names():
        return (
            "n_components perplexity early_exaggeration learning_rate max_iter metric method "
            "init dof pca random_state n_jobs callback progress"
        ).split()

    def __repr__(self) -> str:
        defaults = TSNE().get_params()
        changed = []
        for k, v in self.get_params().items():
            if isinstance(v, np.ndarray):
                changed.append(f"{k}=<array {v.shape}>")
            elif isinstance(defaults[k], np.ndarray) or v != defaults[k]:
                changed.append(f"{k}={v!r}")
        return f"TSNE({', '.join(changed)})"

    def _options(self) -> dict:
        """The parameters checked as `tokmap tsne` checks its flags (messages name parameters)."""
        dims = self.n_components
        if isinstance(dims, bool) or not isinstance(dims, numbers.Integral) or dims not in (2, 3):
            raise UsageError(f"n_components must be 2 or 3, got {dims!r}")
        it = self.max_iter
        if isinstance(it, bool) or not isinstance(it, numbers.Integral) or it < 1:
            raise UsageError(f"max_iter must be at least 1, got {it!r}")
        if isinstance(self.learning_rate, str):
            if self.learning_rate != "auto":
                raise UsageError(
                    "learning_rate must be 'auto' or a positive number, got "
                    f"'{self.learning_rate}'"
                )
            learning_rate = 0.0  # the library's auto
        else:
            learning_rate = _positive("learning_rate", self.learning_rate)
        method = {"barnes_hut": "bh"}.get(self.method, self.method)
        if method not in ("auto", "exact", "bh", "fft"):
            raise UsageError(f"method must be auto, exact, bh or fft, got '{self.method}'")
        if self.metric not in ("euclidean", "cosine"):
            raise UsageError(f"metric must be euclidean or cosine, got '{self.metric}'")
        if isinstance(self.pca, str) and self.pca == "auto":
            pca = -1
        elif (
            not isinstance(self.pca, bool)
            and isinstance(self.pca, numbers.Integral)
            and 0 <= self.pca <= 100000
        ):
            pca = int(self.pca)
        else:
            raise UsageError(
                f"pca must be 'auto' or a number of dimensions >= 0 (0 = off), got '{self.pca}'"
            )
        seed = self.random_state
        if seed is None:
            seed = int(np.random.randint(0, 2**31))  # scikit-learn: None is a fresh seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise UsageError(f"random_state must be an integer >= 0 or None, got {seed!r}")
        return dict(
            dims=int(dims),
            perplexity=_positive("perplexity", self.perplexity),
            seed=int(seed),
            iterations=int(it),
            early_exaggeration=_positive("early_exaggeration", self.early_exaggeration),
            learning_rate=learning_rate,
            method=method,
            metric=self.metric,
            pca=pca,
            dof=_positive("dof", self.dof),
            threads=threads(self.n_jobs),
        )

    def _init(self, n: int, dims: int):
        init = self.init
        if isinstance(init, str):
            if init not in ("pca", "random"):
                raise UsageError(f"init must be pca, random or an array, got '{init}'")
            return init, None
        y0 = np.asarray(init)
        if y0.ndim != 2 or y0.shape != (n, dims):
            raise UsageError(
                f"init: initial embedding is {' x '.join(map(str, y0.shape))}, expected "
                f"{n} x {dims}"
            )
        y0 = _check_array(y0, name="init")
        return "given", y0

    def fit(self, X: Any, y: Any = None) -> "TSNE":
        """Computes the map of X (N, D): any 2-D array of numbers, C or Fortran order."""
        options = self._options()
        x = _check_array(X)
        init, init_array = self._init(x.shape[0], options["dims"])
        user = self.callback
        with Progress(self.progress) as progress:

            def report(r: dict):
                progress("t-SNE", r["iteration"], r["total_iterations"])
                return None if user is None else user(r)

            wants_reports = user is not None or self.progress
            result = _tokmap._tsne(
                x,
                init=init,
                init_array=init_array,
                callback=report if wants_reports else None,
                **options,
            )
        for w in result["warnings"]:
            warn(w)
        self.embedding_ = result["embedding"]
        self.kl_divergence_ = result["kl"]
        self.kl_uniform_ = result["kl_uniform"]
        self.n_iter_ = result["iterations"]
        self.n_features_in_ = x.shape[1]
        self.method_ = result["method"]
        self.perplexity_ = result["perplexity"]
        self.n_neighbors_ = result["neighbors"]
        self.early_exaggeration_ = result["early_exaggeration"]
        self.stopped_ = result["stopped"]
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """fit(X), returning embedding_."""
        return self.fit(X).embedding_
