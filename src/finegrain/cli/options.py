"""Options shared by several commands: experiment tracking (``train``, ``benchmark``), the
options generated from :class:`~finegrain.train.config.TrainConfig` (one per field, checked
against the field's declared rule, ``TrainConfig.CONSTRAINTS``), and ``--overwrite`` for the
commands that write one output file (``label``, ``index``, ``predict``, ``export``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any


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


# ------------------------------------------------------------------ TrainConfig as options

#: The help of each TrainConfig field's option (the default is appended from the dataclass).
FIELD_HELP: dict[str, str] = {
    "index": "index table (CSV, CSV.gz or Parquet)",
    "cache": "image cache folder (finegrain prepare)",
    "observation": "e.g. Edema, Consolidation",
    "method": "training method, see above",
    "tau": "PCE threshold in (0, 1)",
    "seed": "random seed",
    "iterations": "optimiser steps",
    "batch_size": "global batch size",
    "checkpoint_every": "checkpoint + validation every N iterations",
    "lr": "Adam learning rate",
    "betas": "Adam betas",
    "weight_decay": "Adam weight decay",
    "model": "backbone: {models}",
    "pretrained": "ImageNet weights for the backbone (--no-pretrained: random initialisation)",
    "weights": "ImageNet state dict for the backbone (instead of the torch hub cache)",
    "out": "run directory",
    "eval_splits": "split to evaluate at checkpoints (repeat for several)",
    "eval_batch_size": "batch size of evaluation",
    "amp": "autocast on CUDA: bf16 where supported, else fp16",
    "channels_last": "channels-last memory format (faster on CUDA and CPU)",
    "compile": "torch.compile the model",
    "num_workers": "DataLoader workers (default: min(4, CPU count))",
    "augment": "training augmentation (random affine)",
    "augment_on": "where augmentation runs: loader (per image, in the DataLoader), device (per "
    "batch on the training device) or auto (device on CUDA, loader on CPU; same draws either "
    "way)",
    "device": "auto | cpu | cuda",
    "method_options": "an option of the method (its dataclass field), e.g. "
    "--method-option uncertain_soft_target=0.9; VALUE is read as JSON when it parses, else as "
    "a string; repeat for several",
    "label_noise": "share of the observation's positive and negative training and validation "
    "labels flipped, for a positive control (0 to 0.5; the same images in every run; test keeps "
    "its labels; docs/training.md)",
    "cpu_kernels": "CPU kernels: native (this CPU's own, fastest) or avx2 (the same bits on every "
    "x86-64 CPU with AVX2, at a fixed thread count; docs/training.md)",
}

#: Option names that are not the field's name with dashes (kept from earlier releases).
FLAGS: dict[str, str] = {
    "num_workers": "--workers",
    "eval_splits": "--eval-split",
    "method_options": "--method-option",
}

METAVARS: dict[str, Any] = {
    "out": "RUN_DIR",
    "weights": "FILE",
    "num_workers": "N",
    "eval_splits": "SPLIT",
    "method_options": "KEY=VALUE",
    "betas": ("BETA1", "BETA2"),
}


def flag_of(field: str) -> str:
    """The option of a TrainConfig field: ``--batch-size``, ``--workers``."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    exclude: frozenset[str] | set[str] = frozenset(),
    required: frozenset[str] | set[str] = frozenset(),
    defaults: bool = True,
) -> list[str]:
    """One option per :class:`~finegrain.train.config.TrainConfig` field but ``exclude``: its
    name, type and default read from the dataclass, its help from :data:`FIELD_HELP`
    (``finegrain train``). ``defaults=False`` gives every option the default ``None`` ("keep
    what the preset says": ``finegrain benchmark``). ``required``: fields the command line
    must give although they have a default. Values are checked against the fields' declared
    rules by :func:`config_values`. Returns the fields added."""
    from finegrain.train.config import TrainConfig
    from finegrain.train.models import MODELS

    hints = typing.get_type_hints(TrainConfig)
    added = []
    for field in dataclasses.fields(TrainConfig):
        if field.name in exclude:
            continue
        _add_field(
            parser, field, hints[field.name], models=", ".join(MODELS),
            required=field.name in required, defaults=defaults,
        )  # fmt: skip
        added.append(field.name)
    return added


def config_values(args: argparse.Namespace, fields: Iterable[str]) -> dict[str, Any]:
    """``{field: value}`` of the given (non-``None``) options of ``fields``, each checked
    against its field's declared rule (``TrainConfig.CONSTRAINTS``): a
    :class:`~finegrain.errors.FinegrainError` names the option, in one line."""
    from finegrain.constraints import violation
    from finegrain.errors import FinegrainError
    from finegrain.train.config import TrainConfig

    values = {}
    for name in fields:
        value = getattr(args, name, None)
        if value is None:
            continue
        wanted = violation(value, TrainConfig.CONSTRAINTS.get(name, ()))
        if wanted is not None:
            raise FinegrainError(f"{flag_of(name)} must be {wanted}, got {_given(value)}")
        values[name] = value
    return values


def _given(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


def field_default(field: dataclasses.Field) -> Any:
    """The default of a TrainConfig field (``dataclasses.MISSING`` when it has none)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _add_field(parser, field: dataclasses.Field, hint, *, models: str, required: bool,
               defaults: bool) -> None:  # fmt: skip
    name = field.name
    default = field_default(field)
    required = required or (defaults and default is dataclasses.MISSING)
    kind = _without_none(hint)
    origin = typing.get_origin(kind)
    kwargs: dict[str, Any] = dict(dest=name, help=FIELD_HELP.get(name, name).format(models=models))
    if name in METAVARS:
        kwargs["metavar"] = METAVARS[name]
    if required:
        kwargs["required"] = True
    elif not defaults:
        kwargs["default"] = None
    else:
        kwargs["default"] = default
        shown = _show(default)
        if shown:
            kwargs["help"] += f" (default: {shown})"
    kwargs["help"] = kwargs["help"].replace("%", "%%")  # argparse %-formats help strings
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif origin is dict:
        kwargs.update(action=_Collect, type=_key_value)
    elif origin is tuple:
        items = typing.get_args(kind)
        if items[-1] is Ellipsis:
            kwargs.update(action=_Collect, type=items[0])
        else:
            kwargs.update(nargs=len(items), type=items[0])
    else:
        kwargs["type"] = kind
    parser.add_argument(flag_of(name), **kwargs)


def _without_none(hint):
    """``X`` for ``X | None``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _show(default: Any) -> str:
    """How ``--help`` shows a default ("" for none worth showing)."""
    if default is None or default == {}:
        return ""
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple | list):
        return " ".join(str(v) for v in default)
    return str(default)


class _Collect(argparse.Action):
    """A repeatable option: a list of its values (a dict of ``(key, value)`` pairs when the
    default is a dict); the first use replaces the default instead of adding to it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        current = getattr(namespace, self.dest)
        if isinstance(self.default, dict):
            items = {} if current is self.default else dict(current)
            items.update([values])
        elif current is None and self.default is None and self.type is _key_value:
            items = dict([values])
        else:
            items = [] if current is self.default or current is None else list(current)
            items.append(values)
        setattr(namespace, self.dest, items)


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> ``(KEY, VALUE)``, VALUE read as JSON when it parses, else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value
