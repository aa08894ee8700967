"""finegrain's one exception type for *user* errors: bad input, a bad argument, a refused action.

The command line prints a :class:`FinegrainError` as one line and exits 2; any other exception
is a bug and shows its traceback. It is a ``ValueError``, so code that caught ``ValueError``
from finegrain still does.

>>> try:
...     raise FinegrainError("index table: missing column 'split'")
... except ValueError as exc:
...     print(exc)
index table: missing column 'split'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

#: Whether the code runs inside the ``finegrain`` command (set by :func:`command_line`).
_IN_COMMAND: ContextVar[bool] = ContextVar("finegrain_in_command", default=False)


def option(python: str, cli: str | None = None) -> str:
    """How a message names a setting: its command-line spelling (``cli``, e.g.
    ``--id-column``) inside the ``finegrain`` command, its Python one (``python``, e.g.
    ``id_column``) elsewhere; ``""`` inside the command when it has no such option. So a
    message never shows a command-line user a Python name, nor a Python user a flag.

    >>> option("overwrite=True", "--overwrite")
    'overwrite=True'
    >>> with command_line():
    ...     option("overwrite=True", "--overwrite")
    '--overwrite'
    """
    if _IN_COMMAND.get():
        return cli or ""
    return python


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Inside: messages name settings by their command-line options (:func:`option`)."""
    token = _IN_COMMAND.set(True)
    try:
        yield
    finally:
        _IN_COMMAND.reset(token)


class FinegrainError(ValueError):
    """A user error: the message names the file, row, field or argument and what to do."""


class NotFound(FinegrainError, KeyError):
    """A name or id that is not where it was looked for (an image id not in a cache, a
    column); a ``KeyError`` too, so callers that look things up may catch it as one."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
