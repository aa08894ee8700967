"""``finegrain weights``: fetch ImageNet weights into the torch cache, once, and verify them."""

from __future__ import annotations

import argparse

HELP = "download and verify the ImageNet weights a model starts from (needs network once)"

DESCRIPTION = """\
Put torchvision's ImageNet weights of a model into the torch hub cache
(TORCH_HOME, default ~/.cache/torch/hub/checkpoints/) and verify them: the SHA-256 must match the
digits in the file name and the state dict must fit the model. A file already there is only
verified. This is the one step `--preset paper` (DenseNet121) needs on a fresh machine; training
itself never downloads anything.

Offline: download the URL printed by the error on a machine with network access, put the file
where the error says, and run this command again to verify it (or pass --weights FILE to
`finegrain train` / `finegrain benchmark`).

Exit codes: 0 all weights present and verified; 2 a download or verification failed.

examples:
  finegrain weights                    # densenet121, the paper's backbone
  finegrain weights densenet121 resnet18
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "models", nargs="*", default=["densenet121"], help="model names (default: densenet121)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no download progress bar")


def run(args: argparse.Namespace) -> int:
    import sys

    from finegrain.train.models import fetch_weights

    status = 0
    for name in args.models:
        try:
            path = fetch_weights(name, progress=not args.no_progress)
        except (OSError, ValueError) as exc:
            print(f"finegrain weights: error: {name}: {exc}", file=sys.stderr)
            status = 2
            continue
        print(f"{name}: {path} (verified)")
    return status
