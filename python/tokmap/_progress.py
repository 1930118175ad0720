"""Progress of long calls: a user callback, a tqdm bar (when tqdm is installed), or nothing."""
from __future__ import annotations

import warnings
from typing import Callable, Optional, Union

from ._errors import TokmapWarning

ProgressArg = Union[bool, None, Callable[[str, int, int], object]]


class Progress:
    """Called as progress(what, done, total) by the bindings, on the calling thread.

    ``progress=True`` draws one tqdm bar per stage, shown only once the work has taken a second
    (the CLI's rule); a callable receives (what, done, total); False or None shows nothing.
    """

    def __init__(self, progress: ProgressArg):
        self._callback: Optional[Callable[[str, int, int], object]] = None
        self._bars: dict = {}
        self._tqdm = None
        if callable(progress):
            self._callback = progress
        elif progress:
            try:
                from tqdm import tqdm  # optional dependency
            except ImportError:
                tqdm = None
            self._tqdm = tqdm

    def __call__(self, what: str, done: int, total: int) -> None:
        if self._callback is not None:
            self._callback(what, done, total)
            return
        if self._tqdm is None:
            return
        bar = self._bars.get(what)
        if bar is None:
            bar = self._bars[what] = self._tqdm(total=total, desc=what, delay=1.0, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            self.close(what)

    def close(self, what: Optional[str] = None) -> None:
        for key in [what] if what is not None else list(self._bars):
            bar = self._bars.pop(key, None)
            if bar is not None:
                bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def warn(message: str) -> None:
    """The library's warnings, as Python warnings attributed to the caller's line (the first
    frame outside this package), shown once per place by default."""
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, TokmapWarning, stacklevel=level)


def threads(n_jobs: Optional[int]) -> int:
    """scikit-learn's n_jobs as the library's thread count (0 = every core).

    None and -1 use every core: tokmap's results do not depend on the thread count, so there is
    no reason to default to one. -2 is every core but one, and so on.
    """
    import os

    from ._errors import UsageError

    if n_jobs is None or n_jobs == -1:
        return 0
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int):
        raise UsageError(f"n_jobs must be an integer or None, got {n_jobs!r}")
    if n_jobs == 0:
        raise UsageError("n_jobs must not be 0 (None or -1 = every core)")
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return n_jobs


def texts_list(texts) -> list:
    """A str or an iterable of str as a list of texts."""
    from ._errors import UsageError

    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError("texts must be str or a list of str, got bytes (decode them first)")
    try:
        out = list(texts)
    except TypeError:
        raise TypeError(f"texts must be str or a list of str, got {type(texts).__name__}") from None
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be str, got {type(t).__name__}")
    if not out:
        raise UsageError("give at least one text")
    return out


__all__ = ["Progress", "ProgressArg", "warn", "threads", "texts_list", "TokmapWarning"]
