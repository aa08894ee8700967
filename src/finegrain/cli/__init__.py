"""The ``finegrain`` command line: a thin layer over the Python API.

Each subcommand lives in its own module ``finegrain.cli.<name>`` exposing ``HELP`` (one line),
``DESCRIPTION`` (the ``--help`` text), ``add_arguments(parser)`` and ``run(args) -> int``.
Command modules import heavy libraries (torch, pandas) inside ``run`` so that ``--help`` is fast.

Exit codes are owned here (:data:`EXIT_OK` ...) and printed at the end of every command's
``--help``; a command returns :func:`exit_status` for work done per input.

Errors: a user error (:class:`CLIError` for arguments, :class:`finegrain.errors.FinegrainError`
for bad input or a refused action, a missing file) is one line naming what is wrong, exit 2; a
file system refusal is one line, exit 1; a grid whose runs failed names each of them, exit 3 (1
if none finished). Any other exception is a bug and shows its traceback; with ``-v`` every
error shows it.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from finegrain.errors import FinegrainError, command_line
from finegrain.extras import install_advice

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
    ("difficulty", "finegrain.cli.difficulty"),
    ("cam", "finegrain.cli.cam"),
    ("predict", "finegrain.cli.predict"),
    ("calibrate", "finegrain.cli.calibrate"),
    ("export", "finegrain.cli.export"),
    ("list", "finegrain.cli.registered"),
)

#: The commands that need the ``train`` extra (PyTorch): the others run on the light install.
NEEDS_TRAIN: frozenset[str] = frozenset(
    {"benchmark", "weights", "train", "difficulty", "cam", "predict", "calibrate", "export", "list"}
)

#: Everything asked for was done.
EXIT_OK = 0
#: Nothing useful was done: the file system refused (permission, full disk, a path that is a
#: file), or every input failed.
EXIT_FAILED = 1
#: Bad arguments or bad input that the user must fix (argparse's own code for usage errors).
EXIT_USAGE = 2
#: Output was written, but some inputs failed (each is listed in the output with its error).
EXIT_PARTIAL = 3
#: Interrupted (Ctrl-C).
EXIT_INTERRUPTED = 130

EXIT_STATUS_HELP = f"""\
exit status:
  {EXIT_OK}    all good
  {EXIT_PARTIAL}    output written, but some inputs failed (listed with their errors)
  {EXIT_FAILED}    nothing useful done: every input failed, or the file system refused
       (permission denied, disk full, a path that is a file); the message names the path
  {EXIT_USAGE}    bad arguments or input (a missing file, a bad column or value)
  {EXIT_INTERRUPTED}  interrupted"""


class CLIError(Exception):
    """An error the user can fix; printed as ``finegrain <cmd>: error: <message>`` (exit 2)."""


def exit_status(ok: int, failed: int) -> int:
    """The exit code for a command that handled ``ok`` inputs and failed on ``failed``.

    >>> exit_status(5, 0), exit_status(4, 1), exit_status(0, 5), exit_status(0, 0)
    (0, 3, 1, 1)
    """
    if ok <= 0:
        return EXIT_FAILED
    return EXIT_PARTIAL if failed else EXIT_OK


def check_device(device: str | None) -> None:
    """Refuse ``--device cuda`` (or ``cuda:N``) in one line when that GPU is not visible,
    before anything starts (CUDA's own error is a long traceback). Every command with
    ``--device`` calls it first, so the wording is the same everywhere."""
    if device is None or not device.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise FinegrainError(
            f"--device {device}: no CUDA GPU is visible on this machine; use --device cpu (or auto)"
        )
    index = device.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= count):
        raise FinegrainError(
            f"--device {device}: {count} CUDA GPU(s) visible (cuda:0 to cuda:{count - 1})"
        )


#: What to do about an OS error, by errno (the path is named before it).
_OS_ADVICE: dict[int, str] = {
    errno.EACCES: "permission denied; choose a location you can write to or fix its permissions",
    errno.EPERM: "operation not permitted; choose a location you can write to",
    errno.EEXIST: "already exists and is in the way; remove it or choose another path",
    errno.ENOTDIR: "a part of this path is a file, not a folder; choose another path",
    errno.EISDIR: "is a folder where a file is needed; give a file name",
    errno.ENOSPC: "no space left on the device; free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded; free some space or write elsewhere",
    errno.EROFS: "is on a read-only file system; write elsewhere",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENAMETOOLONG: "file name too long; choose a shorter path",
}


def describe_os_error(exc: OSError) -> str:
    """One line naming the path of an :class:`OSError` and what to do about it.

    >>> describe_os_error(PermissionError(13, "Permission denied", "/data/out.csv"))
    '/data/out.csv: permission denied; choose a location you can write to or fix its permissions'
    >>> describe_os_error(OSError(28, "No space left on device", "cache/images.u8"))
    'cache/images.u8: no space left on the device; free some space or write elsewhere'
    """
    path = exc.filename if exc.filename is not None else exc.filename2
    advice = _OS_ADVICE.get(exc.errno) if exc.errno is not None else None
    if advice is None:
        advice = exc.strerror or str(exc)
    if path is not None and exc.errno in (errno.EEXIST, errno.ENOTDIR):
        in_the_way = _file_in_the_way(path)
        if in_the_way is not None:  # say which part is the file
            path, advice = (
                in_the_way,
                "is a file where a folder is needed; " + ("remove it or choose another path"),
            )
    text = f"{path}: {advice}" if path is not None else advice
    return " ".join(str(text).split())  # one line


def _file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The first part of ``path`` (itself or a parent) that is a regular file, if any."""
    here = Path(path)
    for part in (here, *here.parents):
        if part.is_file():
            return part
    return None


def _output_of(args: argparse.Namespace) -> str | None:
    """The output path of a command (``-o``/``--out``/``--output``/``OUT``), if it has one."""
    for name in ("out", "output"):
        value = getattr(args, name, None)
        if isinstance(value, str | os.PathLike):
            return str(value)
    return None


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone (poll reports an error)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll, or not a real file
        return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def build_parser() -> argparse.ArgumentParser:
    from finegrain import __version__

    parser = argparse.ArgumentParser(
        prog="finegrain",
        description=(
            "Fine-granularity learning for chest X-ray diagnosis (Peng et al.): label reports, "
            "divide positives into atypical and typical, train PU-RM and baselines, measure AUC^FG. "
            "Start with `finegrain benchmark`, which runs the whole pipeline on a built-in phantom."
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"finegrain {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more logging: -v finegrain's debug details; -vv also other libraries' info "
        "(by default they only show warnings)",
    )
    _add_plugin_option(parser, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    for name, module_name in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command not built yet stays out of the menu
            if exc.name == module_name:
                continue
            raise
        extra = " [needs finegrain[train]]" if name in NEEDS_TRAIN else ""
        sub.add_parser(
            name,
            help=(module.HELP + extra).replace("%", "%%"),  # argparse %-formats help strings
            description=getattr(module, "DESCRIPTION", module.HELP),
            epilog=EXIT_STATUS_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            command=module,
        )
    return parser


def _add_plugin_option(parser: argparse.ArgumentParser, default) -> None:
    from finegrain.plugins import PLUGIN_OPTION

    parser.add_argument(
        PLUGIN_OPTION,
        action="append",
        metavar="MODULE",
        default=default,
        help="import MODULE first: the methods, models, presets and selections it registers "
        "become choices (repeatable; installed plugins load through the 'finegrain.plugins' "
        "entry points; `finegrain list` shows them)",
    )


def load_plugins(argv: Sequence[str]) -> None:
    """Import the plugins a command may use before its parser is built: the modules named with
    ``--plugin``, and for a command that reads the registries (those of the train extra) every
    installed entry point (:mod:`finegrain.plugins`)."""
    from finegrain.plugins import entry_point_plugins, module_plugins, plugin_modules

    module_plugins(plugin_modules(argv))
    if _command_of(argv) in NEEDS_TRAIN:
        entry_point_plugins()


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (its first word that is neither an option nor the value of
    ``--plugin``)."""
    from finegrain.plugins import PLUGIN_OPTION

    tokens = iter(argv)
    for token in tokens:
        if token == PLUGIN_OPTION:
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


class _CommandParser(argparse.ArgumentParser):
    """The parser of one command, whose arguments are added (``command.add_arguments``) when it
    is first used: building the ``finegrain`` parser runs no command's ``add_arguments`` but
    the one called (``train``'s lists the registered methods and models, importing torch)."""

    def __init__(self, *args, command=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._command = command

    def _add_command_arguments(self) -> None:
        module, self._command = self._command, None
        if module is None:
            return
        module.add_arguments(self)
        self.add_argument(  # -v after the command works too: `finegrain export ... -v`
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,
            help="more logging (-v finegrain's details, -vv also other libraries')",
        )
        _add_plugin_option(self, argparse.SUPPRESS)
        self.set_defaults(_run=module.run, _parser=self)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._add_command_arguments()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._add_command_arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self._add_command_arguments()
        return super().format_help()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (tests and notebooks swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # set by StreamHandler.__init__; ignored
        pass


_HANDLER = _StderrHandler()
_HANDLER.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


def configure_logging(verbose: int) -> None:
    """finegrain's loggers at INFO by default and DEBUG with ``-v``; every other library's at
    WARNING, so third-party INFO messages (onnxscript, torch.export) stay out. ``-vv`` also lets
    the other libraries' INFO messages through."""
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    root.setLevel(logging.INFO if verbose >= 2 else logging.WARNING)
    logging.getLogger("finegrain").setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = f"finegrain {_command_of(argv) or ''}".strip()
    try:
        load_plugins(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
    except FinegrainError as exc:  # a plugin that is not there or fails to load
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:  # a command's options need an extra (train's: torch)
        advice = install_advice(exc, "this command")
        if advice is None:
            raise
        print(f"{command}: error: {advice}", file=sys.stderr)
        return EXIT_USAGE
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    configure_logging(args.verbose)
    prefix = f"finegrain {args.command}: error:"
    status = None
    try:
        with command_line():  # messages name options as flags, not as Python parameters
            status = int(args._run(args) or EXIT_OK)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError as exc:  # as Python's signal docs advise
        if not _stdout_closed():
            print(f"{prefix} {describe_os_error(exc)}", file=sys.stderr)
            return EXIT_FAILED
        # the reader of our output left (`| head -1`): not an error; no more output
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK if status is None else status
    except CLIError as exc:
        args._parser.error(str(exc))  # exits 2 with the usage line
    except FinegrainError as exc:  # bad input or a refused action: the message says which
        _traceback_when_verbose(args)
        print(f"{prefix} {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:  # an input that is not there: bad input
        _traceback_when_verbose(args)
        message = describe_os_error(exc) if exc.errno is not None else _one_line(exc)
        print(f"{prefix} {message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the file system refused: permission, full disk, path in the way
        _traceback_when_verbose(args)
        if exc.errno is not None and exc.filename is None and _output_of(args):
            exc = OSError(exc.errno, exc.strerror, _output_of(args))  # a write to the output
        message = describe_os_error(exc) if exc.errno is not None else _one_line(exc)
        print(f"{prefix} {message}", file=sys.stderr)
        return EXIT_FAILED
    except ModuleNotFoundError as exc:  # the command needs an extra the install lacks
        advice = install_advice(exc, "this command")
        if advice is None:
            raise
        _traceback_when_verbose(args)
        print(f"{prefix} {advice}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"finegrain {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        from finegrain.experiment.launchers import RunsFailed

        if isinstance(exc, RunsFailed):  # each failed run is named; the others finished
            _traceback_when_verbose(args)
            print(f"{prefix} {exc}", file=sys.stderr)
            return EXIT_PARTIAL if len(exc.failures) < exc.total else EXIT_FAILED
        raise  # anything else is a bug in finegrain: its traceback, exit 1
    return EXIT_OK


def _traceback_when_verbose(args: argparse.Namespace) -> None:
    """With ``-v``, every error shows its traceback (above its one-line message)."""
    if getattr(args, "verbose", 0):
        import traceback

        traceback.print_exc()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
