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
import textwrap

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

#: Fields the command line requires although TrainConfig has a default.
REQUIRED: frozenset[str] = frozenset({"out"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from finegrain.cli.options import add_config_arguments, add_tracking_arguments

    parser.description = DESCRIPTION.format(methods=methods_help())
    add_config_arguments(parser, required=REQUIRED)
    from finegrain.train.methods import TAU

    parser.add_argument(
        "--tau",
        type=float,
        help="PCE threshold τ in (0, 1) of a method whose loss uses it (its option tau, as "
        f"--method-option tau=X; default: the method's own, {TAU})",
    )
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


def config_from_args(args: argparse.Namespace):
    """The :class:`~finegrain.train.config.TrainConfig` of parsed ``train`` arguments (each
    value checked against its field's declared rule, the error naming the option)."""
    from finegrain.cli.options import config_values
    from finegrain.constraints import check
    from finegrain.train.config import TrainConfig
    from finegrain.train.methods import TAU_RULE

    values = config_values(args, [f.name for f in dataclasses.fields(TrainConfig)])
    if getattr(args, "tau", None) is not None:  # the method's option
        check("--tau", args.tau, [TAU_RULE])
        values["method_options"] = {**values.get("method_options", {}), "tau": args.tau}
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from finegrain.cli import CLIError, check_device
    from finegrain.cli.options import tracking_spec
    from finegrain.train.loop import train
    from finegrain.train.methods import get_method
    from finegrain.train.models import MODELS

    check_device(args.device)
    config = config_from_args(args)  # each option against its field's rule, in one line
    get_method(config.method, config.method_options)  # an unknown method or option: listed
    MODELS.get(args.model)  # an unknown model: the known ones listed
    if args.weights is not None and not args.pretrained:
        raise CLIError("--weights and --no-pretrained exclude each other")
    tracking = tracking_spec(args, Path.cwd())
    out = train(config, resume=args.resume, progress=not args.no_progress, tracking=tracking)
    print(f"run complete: {out}")
    return 0
