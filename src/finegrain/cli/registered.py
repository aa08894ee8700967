"""``finegrain list``: what is registered (methods, models, presets, selections, launchers),
with one-line descriptions, and the plugins that registered entries of their own."""

from __future__ import annotations

import argparse

HELP = "list the registered methods, models, presets, selections and launchers (and plugins)"

DESCRIPTION = """\
List every registered method, model, preset, selection and launcher with a one-line
description; an entry registered outside finegrain (your module, a plugin) names its module.

Plugins: an installed package adds entries through the entry-point group 'finegrain.plugins'
(loaded by every command that trains, predicts or lists), or any importable module through
--plugin MODULE (repeatable, before or after the command). Both are listed at the end.

examples:
  finegrain list
  finegrain list methods --json
  finegrain --plugin my_package.entries list models
"""


def registries() -> dict[str, tuple[str, object]]:
    """``{kind: (the option that takes it, registry)}``, in the order listed."""
    from finegrain.experiment.grid import SELECTIONS
    from finegrain.experiment.launchers import LAUNCHERS
    from finegrain.experiment.presets import PRESETS
    from finegrain.train.methods import METHODS
    from finegrain.train.models import MODELS

    return {
        "methods": ("--method, --methods", METHODS),
        "models": ("--model", MODELS),
        "presets": ("--preset", PRESETS),
        "selections": ("--selection", SELECTIONS),
        "launchers": ("--launcher", LAUNCHERS),
    }


KINDS = ("methods", "models", "presets", "selections", "launchers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kinds", nargs="*", metavar="KIND", help=f"any of {', '.join(KINDS)} (default: all)"
    )
    parser.add_argument("--json", action="store_true", help="print the listing as JSON")


def listing(kinds: list[str]) -> dict[str, list[dict[str, str]]]:
    """``{kind: [{"name", "description", "module"}]}`` for the registries of ``kinds``."""
    found = {}
    for kind, (_, registry) in registries().items():
        if kind in kinds:
            found[kind] = [
                {
                    "name": name,
                    "description": registry.description(name),
                    "module": registry.module_of(name) or "",
                }
                for name in registry
            ]
    return found


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import textwrap

    from finegrain.cli import CLIError
    from finegrain.plugins import LOADED

    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown:
        raise CLIError(f"unknown kind(s) {unknown}; choose from {', '.join(KINDS)}")
    kinds = list(args.kinds) or list(KINDS)
    found = listing(kinds)
    if args.json:
        plugins = [dataclasses.asdict(p) for p in LOADED]
        print(json.dumps({**found, "plugins": plugins}, indent=2))
        return 0
    options = registries()
    for kind, entries in found.items():
        print(f"{kind} ({options[kind][0]}):")
        width = max((len(e["name"]) for e in entries), default=0) + 4
        for entry in entries:
            text = entry["description"] or "(no description)"
            if entry["module"] and not entry["module"].startswith("finegrain."):
                text += f" [{entry['module']}]"
            lines = textwrap.wrap(
                text, 100, initial_indent=f"  {entry['name']:<{width - 2}}",
                subsequent_indent=" " * width,
            )  # fmt: skip
            print("\n".join(lines))
        print()
    if LOADED:
        print("plugins loaded:")
        for plugin in LOADED:
            print(f"  {plugin.name} = {plugin.target} ({plugin.source})")
    else:
        print("plugins loaded: none (entry-point group 'finegrain.plugins', or --plugin MODULE)")
    return 0
