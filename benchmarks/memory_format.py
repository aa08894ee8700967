"""Memory layout on CPU: channels_last against contiguous (NCHW), training step and inference.

``finegrain.train.loop`` puts the model and its normalised input in channels_last on CUDA and on
CPU (TrainConfig ``channels_last``). This script measures, in the same process and for the same
model, batch and image size, images/s of

- **train**: forward, cross-entropy, backward and an Adam step on a uint8 batch;
- **infer**: the evaluation forward pass (``torch.no_grad``, eval mode);

with the model in contiguous format and in channels_last, and prints channels_last / contiguous
(> 1: channels_last is faster). Timed blocks of the two layouts alternate, so slow drifts of a
shared machine hit both; each figure is the best block.

    python benchmarks/memory_format.py                            # densenet-tiny, 64 px, 1 thread
    python benchmarks/memory_format.py --model densenet121 --size 224 --batch 8 --steps 2
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from finegrain.train.models import build_model

LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def make_model(name: str, layout: torch.memory_format, seed: int = 0) -> torch.nn.Module:
    """The model as the training loop builds it (no ImageNet weights), in ``layout``."""
    torch.manual_seed(seed)
    model = build_model(name, pretrained=False).to(memory_format=layout)
    model.normalize.memory_format = layout
    return model


def train_block(model: torch.nn.Module, optimizer, batch, labels, steps: int) -> float:
    """Seconds for ``steps`` training steps."""
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(model(batch), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


@torch.no_grad()
def infer_block(model: torch.nn.Module, batch, steps: int) -> float:
    """Seconds for ``steps`` evaluation forward passes."""
    model.eval()
    start = time.perf_counter()
    for _ in range(steps):
        model(batch)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="densenet-tiny")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32, help="training batch (inference: 2x)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per layout")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the demo uses 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, 1, args.size, args.size)
    batch = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 2, (args.batch,), generator=generator)
    eval_batch = torch.randint(0, 256, (2 * args.batch, *shape[1:]), dtype=torch.uint8)

    models = {k: make_model(args.model, v) for k, v in LAYOUTS.items()}
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in models.items()}
    best: dict[tuple[str, str], float] = {}
    for name, model in models.items():  # warm-up (oneDNN primitive creation)
        train_block(model, optimizers[name], batch, labels, 1)
        infer_block(model, eval_batch, 1)
    for _ in range(args.blocks):
        for name, model in models.items():
            seconds = train_block(model, optimizers[name], batch, labels, args.steps)
            rate = args.steps * args.batch / seconds
            best[name, "train"] = max(best.get((name, "train"), 0.0), rate)
            seconds = infer_block(model, eval_batch, args.steps)
            rate = args.steps * 2 * args.batch / seconds
            best[name, "infer"] = max(best.get((name, "infer"), 0.0), rate)

    print(
        f"{args.model}, {args.size} px, batch {args.batch} (inference {2 * args.batch}), "
        f"{args.threads} thread(s), torch {torch.__version__}, {platform.processor() or 'cpu'}"
    )
    for phase in ("train", "infer"):
        contiguous, channels_last = best["contiguous", phase], best["channels_last", phase]
        print(
            f"{phase}: contiguous {contiguous:,.0f} images/s, channels_last "
            f"{channels_last:,.0f} images/s, ratio channels_last / contiguous "
            f"{channels_last / contiguous:.2f}"
        )


if __name__ == "__main__":
    main()
