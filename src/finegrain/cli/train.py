"""``finegrain train``: one run (observation x method x seed) into a self-describing run folder."""

from __future__ import annotations

import argparse

HELP = "train a classifier for one observation with PU-RM or a baseline method"

DESCRIPTION = """\
Train a two-way (negative / positive) classifier for one observation from an index table and
its image cache (`finegrain index`, `finegrain prepare`), evaluating AUC^FG and AUC on the
validation split at every checkpoint.

Methods (how uncertain labels are used, and which loss each class gets):
  u-ignore   uncertain dropped;              CE on negatives and positives
  u-zeros    uncertain -> negative;          CE everywhere
  u-ones     uncertain -> positive;          CE everywhere
  p-rm       uncertain dropped;              CE on negatives, PCE on positives
  u-rm       uncertain -> positive;          CE on negatives and positives, PCE on uncertain
  pu-rm      uncertain -> positive;          CE on negatives, PCE on positives and uncertain
             (the paper's method, Eq. 3)
  u-ones-ls  uncertain -> soft target 0.85;  CE (label smoothing, Pham et al.)

PCE, the partially Huberised cross-entropy (Eq. 2), with p the probability of the target class:
  loss = -(p - tau)/tau - log(tau)  if p <= tau,   -log(p) otherwise.
Below tau (--tau, default 0.3) the gradient is a constant instead of growing without bound, so
hard (often atypical) positives are not forced to probability 1. Smaller tau = closer to CE.

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="index table (CSV, CSV.gz or Parquet)")
    parser.add_argument("--cache", required=True, help="image cache folder (finegrain prepare)")
    parser.add_argument("--observation", required=True, help="e.g. Edema, Consolidation")
    parser.add_argument("--method", default="pu-rm", help="training method, see above (pu-rm)")
    parser.add_argument("--tau", type=float, default=0.3, help="PCE threshold in (0, 1) (0.3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--iterations", type=int, default=50000, help="optimiser steps (50000)")
    parser.add_argument("--batch-size", type=int, default=32, help="global batch size (32)")
    parser.add_argument(
        "--checkpoint-every", type=int, default=10000, help="checkpoint + validation (10000)"
    )
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (1e-4)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    parser.add_argument(
        "--model", default="densenet121", help="densenet121 | resnet18 | densenet-tiny"
    )
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--weights", metavar="FILE", help="ImageNet state dict for the backbone")
    weights.add_argument(
        "--no-pretrained", action="store_true", help="random initialisation (no ImageNet)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="autocast on CUDA: bf16 where supported, else fp16 (default: on)",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    parser.add_argument(
        "--eval-split",
        action="append",
        dest="eval_splits",
        metavar="SPLIT",
        help="split(s) to evaluate at checkpoints (default: validate; repeat for several)",
    )
    parser.add_argument("--no-augment", action="store_true", help="no training augmentation")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (auto)")
    parser.add_argument(
        "--augment-on",
        choices=["auto", "loader", "device"],
        default="auto",
        help="where augmentation runs: per image in the DataLoader, or per batch on the "
        "training device (auto: device on CUDA, loader on CPU; same draws either way)",
    )
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="TensorBoard event files in RUN_DIR/tensorboard (needs finegrain[tensorboard])",
    )
    parser.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="log the run to MLflow at URI (default: sqlite:///./mlflow.db; needs "
        "finegrain[mlflow])",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from finegrain.cli import CLIError, check_device
    from finegrain.cli.benchmark import tracking_spec
    from finegrain.train.config import TrainConfig
    from finegrain.train.loop import train
    from finegrain.train.methods import get_method

    check_device(args.device)
    get_method(args.method)  # a ValueError listing the known methods
    if args.workers is not None and args.workers < 0:
        raise CLIError(f"--workers must be >= 0, got {args.workers}")
    config = TrainConfig(
        index=args.index,
        cache=args.cache,
        observation=args.observation,
        method=args.method,
        tau=args.tau,
        seed=args.seed,
        iterations=args.iterations,
        batch_size=args.batch_size,
        checkpoint_every=args.checkpoint_every,
        lr=args.lr,
        model=args.model,
        pretrained=not args.no_pretrained,
        weights=args.weights,
        out=args.out,
        eval_splits=tuple(args.eval_splits or ("validate",)),
        amp=args.amp,
        compile=args.compile,
        num_workers=args.workers,
        augment=not args.no_augment,
        augment_on=args.augment_on,
        device=args.device,
    )
    tracking = tracking_spec(args, Path.cwd())
    out = train(config, resume=args.resume, progress=not args.no_progress, tracking=tracking)
    print(f"run complete: {out}")
    return 0
