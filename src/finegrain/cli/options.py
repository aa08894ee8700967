"""Options shared by several commands: experiment tracking (``train``, ``benchmark``), and
``--overwrite`` for the commands that write one output file (``label``, ``index``,
``predict``, ``export``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_overwrite_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--overwrite``: replace ``what`` (e.g. "the labels CSV") when it exists
    (:func:`check_output`)."""
    parser.add_argument(
        "--overwrite", action="store_true", help=f"replace {what} if it exists (default: refuse)"
    )


def check_output(path: str | os.PathLike, overwrite: bool) -> None:
    """Refuse to replace an existing file at ``path`` without ``--overwrite``, before any work
    is done (a folder in the way is reported when the file is written)."""
    from finegrain.errors import FinegrainError

    if os.path.lexists(path) and not os.path.isdir(path) and not overwrite:
        raise FinegrainError(f"{path} exists; pass --overwrite to replace it")


def add_tracking_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, where: str, store: str
) -> None:
    """``--tensorboard`` and ``--mlflow [URI]``: the event files go to ``where/tensorboard``
    (e.g. ``"RUN_DIR"``), the default MLflow store is ``store/mlflow.db`` (e.g. ``"."``), as
    :func:`tracking_spec` makes it. ``parser`` may be an argument group."""
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help=f"TensorBoard event files in {where}/tensorboard (needs finegrain[tensorboard])",
    )
    parser.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help=f"log to MLflow at URI (default: sqlite:///{store}/mlflow.db; needs finegrain[mlflow])",
    )


def tracking_spec(args: argparse.Namespace, folder: str | Path):
    """The :class:`~finegrain.train.tracking.TrackingSpec` of ``--tensorboard`` / ``--mlflow``
    (``--mlflow`` without a URI: a local store ``sqlite:///<folder>/mlflow.db``), or None."""
    from finegrain.train.tracking import TrackingSpec, default_mlflow_uri

    if not args.tensorboard and args.mlflow is None:
        return None
    uri = args.mlflow or (default_mlflow_uri(folder) if args.mlflow is not None else None)
    spec = TrackingSpec(tensorboard=args.tensorboard, mlflow=uri)
    try:
        spec.check()  # a missing package fails now, not in every run
    except ImportError as exc:
        from finegrain.cli import CLIError

        raise CLIError(str(exc)) from None
    return spec
