"""Registries: named entries of one kind (methods, models, presets, selections, launchers),
filled when the module that defines them is imported, as timm's ``@register_model`` does.

A registry remembers the module that registered each entry, so a process that must rebuild an
entry by name (a spawned worker, a Ray actor, a Slurm job, ``predict`` on a checkpoint) can
import that module first (:func:`import_modules`): an entry a user registers in their own
module then reaches every worker. A name registered twice is an error naming both modules
(``replace=True`` replaces on purpose, with a warning): an entry is never swapped silently.
Each entry has a one-line :meth:`Registry.description` (``finegrain list``).

>>> COLOURS = Registry("colour")
>>> @COLOURS.register("red")
... def red():
...     return "#f00"
>>> COLOURS.get("red")()
'#f00'
>>> COLOURS.get("blue")
Traceback (most recent call last):
...
finegrain.errors.FinegrainError: unknown colour 'blue'; expected one of: red
>>> COLOURS.register("red", lambda: "#e00", module="my_palette")
Traceback (most recent call last):
...
finegrain.errors.FinegrainError: colour 'red' is registered twice: by finegrain.registry and by my_palette (rename one, or pass replace=True to replace it)
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar, overload

from finegrain.errors import FinegrainError

T = TypeVar("T")

log = logging.getLogger(__name__)


class Registry(dict[str, T], Generic[T]):
    """A ``dict`` of named entries of one ``kind`` that knows where each was registered."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._modules: dict[str, str] = {}

    @overload
    def register(
        self, name: str, entry: T, *, module: str | None = None, replace: bool = False
    ) -> T: ...

    @overload
    def register(
        self, name: str, entry: None = None, *, module: str | None = None, replace: bool = False
    ) -> Callable[[T], T]: ...

    def register(
        self, name: str, entry: Any = None, *, module: str | None = None, replace: bool = False
    ) -> Any:
        """Add ``entry`` under ``name``; without ``entry``, a decorator. ``module`` defaults to
        the caller's module. A name already registered is a :class:`FinegrainError` naming
        both modules, unless ``replace`` (then a warning says what is replaced)."""
        caller = module or sys._getframe(1).f_globals.get("__name__", "")

        def add(value: T) -> T:
            if name in self:
                where = f"by {self._modules.get(name) or '?'} and by {caller}"
                if not replace:
                    raise FinegrainError(
                        f"{self.kind} {name!r} is registered twice: {where} (rename one, or "
                        "pass replace=True to replace it)"
                    )
                log.warning("%s %r is replaced (registered %s)", self.kind, name, where)
            self[name] = value
            self._modules[name] = caller
            return value

        return add if entry is None else add(entry)

    def description(self, name: str) -> str:
        """One line saying what ``name`` is: the entry's ``description`` (or ``title``), else
        the first line of its docstring."""
        entry = self.get(name)
        for attribute in ("description", "title"):
            text = getattr(entry, attribute, None)
            if isinstance(text, str) and text.strip():
                return " ".join(text.split())
        doc = inspect.getdoc(entry) if callable(entry) else None
        return doc.strip().splitlines()[0] if doc else ""

    def get(self, name: str, default: Any = None) -> T:  # type: ignore[override]
        """The entry ``name``; a :class:`FinegrainError` lists the known names."""
        if name in self:
            return self[name]
        if default is not None:
            return default
        raise FinegrainError(
            f"unknown {self.kind} {name!r}; expected one of: {', '.join(self) or '(none)'}"
        )

    def module_of(self, name: str) -> str | None:
        """The module that registered ``name`` (``None`` for an unknown name)."""
        return self._modules.get(name)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self._modules.pop(name, None)

    def pop(self, name: str, *default: Any) -> Any:  # type: ignore[override]
        self._modules.pop(name, None)
        return super().pop(name, *default)


def import_modules(modules: Iterable[str]) -> None:
    """Import each module (registering what it defines); ``__main__`` and blanks are skipped."""
    for name in modules:
        if name and name not in ("__main__", "__mp_main__") and name not in sys.modules:
            importlib.import_module(name)
