"""Plugins: methods, models, presets, selections and launchers from another package reach the
``finegrain`` command, as pytest plugins and timm models do.

A plugin is a module that registers entries at import (``register_method``,
``register_model``, ``PRESETS.register``, ...). The command imports it from one of two places:

* an **entry point** of the group :data:`ENTRY_POINT_GROUP` in the installed package's metadata,
  loaded by every command that reads the registries (those of the ``train`` extra and
  ``finegrain list``)::

      # the plugin's pyproject.toml
      [project.entry-points."finegrain.plugins"]
      my-methods = "my_package.finegrain_entries"

  The value names a module (imported) or a function (called without arguments);
* ``--plugin MODULE`` on the command line (repeatable, before or after the command), for a
  module that is importable but not installed with an entry point.

Worker processes (spawned, torchrun ranks, Ray, Slurm) import the modules that registered a
run's method and model themselves (:meth:`finegrain.train.config.TrainConfig.registered_in`),
so a plugin's method trains wherever the grid runs.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from finegrain.errors import FinegrainError
from finegrain.extras import install_advice

#: The entry-point group a plugin package declares.
ENTRY_POINT_GROUP = "finegrain.plugins"
#: The command-line option naming a plugin module.
PLUGIN_OPTION = "--plugin"


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin: its name, what was imported, and where it was declared."""

    name: str
    target: str
    source: str  # "entry point of <distribution>" or "--plugin"


#: Every plugin loaded in this process, in the order loaded (``finegrain list`` shows them).
LOADED: list[Plugin] = []


def entry_point_plugins() -> list[Plugin]:
    """Import (or call) every entry point of :data:`ENTRY_POINT_GROUP`, once each."""
    found = []
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        distribution = getattr(entry.dist, "name", None) or "an unnamed distribution"
        plugin = Plugin(entry.name, entry.value, f"entry point of {distribution}")
        if plugin in LOADED:
            continue
        try:
            loaded = entry.load()
        except ModuleNotFoundError as exc:
            if install_advice(exc, "") is not None:  # it needs an extra (torch): say which
                raise
            raise FinegrainError(
                f"plugin {entry.name!r} ({entry.value}, entry point of {distribution}) failed "
                f"to load: {exc}"
            ) from exc
        except Exception as exc:
            raise FinegrainError(
                f"plugin {entry.name!r} ({entry.value}, entry point of {distribution}) failed "
                f"to load: {type(exc).__name__}: {exc}"
            ) from exc
        if callable(loaded) and not isinstance(loaded, type):
            loaded()
        LOADED.append(plugin)
        found.append(plugin)
    return found


def module_plugins(modules: Iterable[str]) -> list[Plugin]:
    """Import each module named with ``--plugin`` (its import registers its entries)."""
    found = []
    for name in modules:
        plugin = Plugin(name, name, PLUGIN_OPTION)
        if plugin in LOADED:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            if getattr(exc, "name", None) == name:
                raise FinegrainError(
                    f"{PLUGIN_OPTION} {name}: no module named {name!r} on the Python path"
                ) from exc
            raise
        LOADED.append(plugin)
        found.append(plugin)
    return found


def plugin_modules(argv: Sequence[str]) -> list[str]:
    """The modules ``argv`` names with ``--plugin MODULE`` or ``--plugin=MODULE`` (anywhere
    before a ``--``), read before the parser is built so that a plugin's presets and
    selections are among its choices.

    >>> plugin_modules(["--plugin", "a", "benchmark", "--plugin=b", "--", "--plugin", "c"])
    ['a', 'b']
    """
    found, tokens = [], iter(argv)
    for token in tokens:
        if token == "--":
            break
        if token == PLUGIN_OPTION:
            value = next(tokens, None)
            if value is not None:
                found.append(value)
        elif token.startswith(PLUGIN_OPTION + "="):
            found.append(token.partition("=")[2])
    return found
