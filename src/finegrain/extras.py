"""Optional dependencies: import one, or say which ``finegrain[extra]`` installs it."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, *, needed_by: str) -> ModuleType:
    """Import ``module``; when it is missing, raise ``ImportError`` naming what needs it and the
    command that installs it.

    >>> require("json", "none", needed_by="this example").__name__
    'json'
    >>> require("no_such_module_xyz", "ray", needed_by="the ray launcher")
    Traceback (most recent call last):
    ...
    ImportError: the ray launcher needs no_such_module_xyz: pip install 'finegrain[ray]' (or pip install no_such_module_xyz)
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{needed_by} needs {module}: pip install 'finegrain[{extra}]' "
            f"(or pip install {module})"
        ) from exc
