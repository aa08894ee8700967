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


class FinegrainError(ValueError):
    """A user error: the message names the file, row, field or argument and what to do."""


class NotFound(FinegrainError, KeyError):
    """A name or id that is not where it was looked for (an image id not in a cache, a
    column); a ``KeyError`` too, so callers that look things up may catch it as one."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
