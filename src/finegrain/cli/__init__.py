"""The ``finegrain`` command line: a thin layer over the Python API.

Each subcommand lives in its own module ``finegrain.cli.<name>`` exposing ``HELP`` (one line),
``DESCRIPTION`` (the ``--help`` text), ``add_arguments(parser)`` and ``run(args) -> int``.
Command modules import heavy libraries (torch, pandas) inside ``run`` so that ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

#: Subcommands in pipeline order: (name, module).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("benchmark", "finegrain.cli.benchmark"),
    ("label", "finegrain.cli.label"),
    ("phantom", "finegrain.cli.phantom"),
    ("index", "finegrain.cli.index"),
    ("prepare", "finegrain.cli.prepare"),
    ("weights", "finegrain.cli.weights"),
    ("train", "finegrain.cli.train"),
    ("evaluate", "finegrain.cli.evaluate"),
    ("cam", "finegrain.cli.cam"),
    ("predict", "finegrain.cli.predict"),
    ("calibrate", "finegrain.cli.calibrate"),
    ("export", "finegrain.cli.export"),
)


class CLIError(Exception):
    """An error the user can fix; printed as ``finegrain <cmd>: error: <message>`` (exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    from finegrain import __version__

    parser = argparse.ArgumentParser(
        prog="finegrain",
        description=(
            "Fine-granularity learning for chest X-ray diagnosis (Peng et al.): label reports, "
            "divide positives into atypical and typical, train PU-RM and baselines, measure AUC^FG. "
            "Start with `finegrain benchmark`, which runs the whole pipeline on a built-in phantom."
        ),
    )
    parser.add_argument("--version", action="version", version=f"finegrain {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command not built yet stays out of the menu
            if exc.name == module_name:
                continue
            raise
        cmd = sub.add_parser(
            name,
            help=module.HELP.replace("%", "%%"),  # argparse %-formats help strings
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run, _parser=cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except CLIError as exc:
        args._parser.error(str(exc))  # exits 2 with the usage line
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"finegrain {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"finegrain {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
