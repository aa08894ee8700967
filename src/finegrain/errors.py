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
