"""tokmap: how a language model sees text, from Python.

    import tokmap
    model = tokmap.load_model()                       # the bundled demo-brown-gpt2
    states = model.hidden_states(["The bank of the river."])
    report = tokmap.viz(["I sat by the bank.", "The bank raised rates."], highlight="bank")
    report                                            # the interactive page, inline in Jupyter
    Y = tokmap.TSNE(perplexity=30).fit_transform(X)   # any (N, D) array

The library underneath is the C++ one the ``tokmap`` command runs: the same options give the
same tokens, states, maps and reports.
"""
import os as _os

from . import _tokmap
from ._atlas import Atlas
from ._errors import Error, FileError, InputError, TokmapWarning, UsageError
from ._model import HiddenStates, Model, Tokens, load_model
from ._report import Report, viz
from ._tsne import TSNE

__version__ = _tokmap.__version__

# Bundled models: $TOKMAP_MODELS_DIR, then those installed with the package, then the source
# tree the module was built from.
_tokmap._set_model_dirs(
    [d for d in (_os.environ.get("TOKMAP_MODELS_DIR", ""),
                 _os.path.join(_os.path.dirname(__file__), "models")) if d])

__all__ = [
    "Atlas", "Error", "FileError", "HiddenStates", "InputError", "Model", "Report", "TSNE",
    "Tokens", "TokmapWarning", "UsageError", "load_model", "viz", "__version__",
]
