"""Capacity against cost: a training step and an evaluation pass of each CPU-trainable model,
against densenet-tiny's, in the same process (docs/study.md, section 5.1).

For densenet-tiny (the demo's), densenet-small (DenseNet121's design at half depth and growth:
the capacity stand-in) and DenseNet121 itself (no ImageNet weights), at the phantom's 64 px:
parameters, milliseconds per training step (forward, cross-entropy, backward, Adam; channels_last,
as the loop trains) and per evaluated image, and each model's cost as a multiple of
densenet-tiny's. Timed blocks of the models alternate, so slow drifts of a shared machine hit
all; each figure is the best block. Reuses :mod:`memory_format`'s timed blocks.

    python benchmarks/model_cost.py                    # 64 px, batch 32, 1 thread
    python benchmarks/model_cost.py --models densenet-tiny densenet-small --steps 20
"""

from __future__ import annotations

import argparse
import platform

import torch

from memory_format import infer_block, make_model, train_block

BASELINE = "densenet-tiny"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=[BASELINE, "densenet-small", "densenet121"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32, help="training batch (inference: 2x)")
    parser.add_argument("--steps", type=int, default=4, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the demo uses 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = list(dict.fromkeys([BASELINE, *args.models]))

    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, 1, args.size, args.size)
    batch = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 2, (args.batch,), generator=generator)
    eval_batch = torch.randint(0, 256, (2 * args.batch, *shape[1:]), dtype=torch.uint8)

    nets = {name: make_model(name, torch.channels_last) for name in models}
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in nets.items()}
    for name, net in nets.items():  # warm-up (oneDNN primitive creation)
        train_block(net, optimizers[name], batch, labels, 1)
        infer_block(net, eval_batch, 1)
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.blocks):
        for name, net in nets.items():
            step = train_block(net, optimizers[name], batch, labels, args.steps) / args.steps
            best[name, "step"] = min(best.get((name, "step"), float("inf")), step)
            image = infer_block(net, eval_batch, args.steps) / (args.steps * 2 * args.batch)
            best[name, "image"] = min(best.get((name, "image"), float("inf")), image)

    print(
        f"{args.size} px, batch {args.batch} (inference {2 * args.batch}), {args.threads} "
        f"thread(s), torch {torch.__version__}, {platform.processor() or 'cpu'}"
    )
    print("| model | parameters | ms / training step | × tiny | ms / evaluated image | × tiny |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, net in nets.items():
        params = sum(p.numel() for p in net.parameters())
        step, image = best[name, "step"], best[name, "image"]
        print(
            f"| {name} | {params / 1e6:.2f} M | {step * 1e3:.0f} | "
            f"{step / best[BASELINE, 'step']:.1f} | {image * 1e3:.2f} | "
            f"{image / best[BASELINE, 'image']:.1f} |"
        )


if __name__ == "__main__":
    main()
