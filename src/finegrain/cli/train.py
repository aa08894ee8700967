"""``finegrain train``: one run (observation x method x seed) into a self-describing run folder.

The options are generated: one per :class:`~finegrain.train.config.TrainConfig` field (its
name, type and default read from the dataclass; the help from :data:`FIELD_HELP`), and the
methods and models listed in ``--help`` are those of the registries
(:data:`~finegrain.train.methods.METHODS`, :data:`~finegrain.train.models.MODELS`) when the
parser is built, so a field or a registered method can never be missing from the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import textwrap
import types
import typing
from typing import Any

HELP = "train a classifier for one observation with PU-RM or a baseline method"

DESCRIPTION = """\
Train a classifier for one observation from an index table and its image cache
(`finegrain index`, `finegrain prepare`), evaluating AUC^FG and AUC on the validation split at
every checkpoint.

{methods}

PCE, the partially Huberised cross-entropy (Eq. 2), with p the probability of the target class:
  loss = -(p - tau)/tau - log(tau)  if p <= tau,   -log(p) otherwise.
Below tau (--tau) the gradient is a constant instead of growing without bound, so hard (often
atypical) positives are not forced to probability 1. Smaller tau = closer to CE.

Outputs in RUN_DIR: config.json (all settings, versions, git commit), metrics.jsonl (one line
per evaluation), predictions-<split>.csv, checkpoints/iter-NNNNNNN.pt, and `done` when complete.
A killed run continues with --resume and ends with the same weights as an uninterrupted one.

Multi-GPU: launch with torchrun; the global batch stays --batch-size (32 = 2 GPUs x 16):
  torchrun --nproc-per-node 2 -m finegrain train --index ... --out RUN_DIR

ImageNet weights are read from the torch hub cache (never downloaded during training); fetch
them once with `finegrain weights densenet121`, or pass --weights FILE or --no-pretrained.

Tracking (off by default; metrics.jsonl stays the source of truth): --tensorboard, --mlflow [URI]
log the training loss, learning rate, AUC^FG / AUC and their counts at every evaluation, the
configuration, and the best checkpoint (MLflow artifact).

example:
  finegrain train --index index.csv --cache cache-224 --observation Edema --method pu-rm \\
      --tau 0.3 --seed 0 --iterations 50000 --checkpoint-every 10000 --out runs/edema-pu-rm-0
"""

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
    "label_noise": "share of the observation's positive and negative training and validation "
    "labels flipped, for a positive control (0 to 0.5; the same images in every run; test keeps "
    "its labels; docs/training.md)",
    "cpu_kernels": "CPU kernels: native (this CPU's own, fastest) or avx2 (the same bits on every "
    "x86-64 CPU with AVX2, at a fixed thread count; docs/training.md)",
    "method_options": "an option of the method (its dataclass field), e.g. "
    "--method-option uncertain_soft_target=0.9; VALUE is read as JSON when it parses, else as "
    "a string; repeat for several",
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

#: Fields the command line requires although TrainConfig has a default.
REQUIRED: frozenset[str] = frozenset({"out"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from finegrain.cli.options import add_tracking_arguments
    from finegrain.train.config import TrainConfig
    from finegrain.train.models import MODELS

    parser.description = DESCRIPTION.format(methods=methods_help())
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        _add_field(parser, field, hints[field.name], models=", ".join(MODELS))
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    add_tracking_arguments(parser, "RUN_DIR", ".")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def methods_help(width: int = 92) -> str:
    """The registered methods, one paragraph each: name, display name, description."""
    from finegrain.train.methods import METHODS

    column = max(len(name) for name in METHODS) + 4
    lines = ["Methods (--method; how uncertain labels are used, and the loss of each class):"]
    for name, method in METHODS.items():
        text = f"{method.display_name}: {method.description}".rstrip(": ")
        lines += textwrap.wrap(
            text,
            width,
            initial_indent=f"  {name:<{column - 2}}",
            subsequent_indent=" " * column,
        )
    return "\n".join(lines)


def field_default(field: dataclasses.Field) -> Any:
    """The default of a TrainConfig field (``dataclasses.MISSING`` when it has none)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _add_field(parser: argparse.ArgumentParser, field: dataclasses.Field, hint, models: str):
    name = field.name
    default = field_default(field)
    required = default is dataclasses.MISSING or name in REQUIRED
    kind = _without_none(hint)
    origin = typing.get_origin(kind)
    kwargs: dict[str, Any] = dict(dest=name, help=FIELD_HELP.get(name, name).format(models=models))
    if name in METAVARS:
        kwargs["metavar"] = METAVARS[name]
    if required:
        kwargs["required"] = True
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
    parser.add_argument(FLAGS.get(name, "--" + name.replace("_", "-")), **kwargs)


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
        else:
            items = [] if current is self.default else list(current)
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


def config_from_args(args: argparse.Namespace):
    """The :class:`~finegrain.train.config.TrainConfig` of parsed ``train`` arguments."""
    from finegrain.train.config import TrainConfig

    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from finegrain.cli import CLIError, check_device
    from finegrain.cli.options import tracking_spec
    from finegrain.train.loop import train
    from finegrain.train.methods import get_method
    from finegrain.train.models import MODELS

    check_device(args.device)
    get_method(args.method, args.method_options)  # an unknown method or option: listed
    MODELS.get(args.model)  # an unknown model: the known ones listed
    if args.num_workers is not None and args.num_workers < 0:
        raise CLIError(f"--workers must be >= 0, got {args.num_workers}")
    if args.weights is not None and not args.pretrained:
        raise CLIError("--weights and --no-pretrained exclude each other")
    config = config_from_args(args)
    tracking = tracking_spec(args, Path.cwd())
    out = train(config, resume=args.resume, progress=not args.no_progress, tracking=tracking)
    print(f"run complete: {out}")
    return 0
