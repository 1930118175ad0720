"""tokmap's exceptions: the library's one error type, split the way Python callers catch it.

The messages are the CLI's (``tokmap: error: ...`` without the prefix), with parameter names in
place of flags where the Python API checks a value itself.
"""


class Error(Exception):
    """Any error raised by tokmap."""


class UsageError(Error, ValueError):
    """A bad argument value (the CLI's usage errors, exit code 2)."""


class InputError(Error, ValueError):
    """Bad input data or file contents: NaN, wrong shape, a malformed model or atlas file."""


class FileError(Error, OSError):
    """A file or folder that cannot be read or written, or a model that is not found there."""


class TokmapWarning(UserWarning):
    """A warning from the library (a lowered perplexity, a degenerate map, ...)."""


# Shown as tokmap.UsageError (not tokmap._errors.UsageError) in tracebacks.
for _cls in (Error, UsageError, InputError, FileError, TokmapWarning):
    _cls.__module__ = "tokmap"
