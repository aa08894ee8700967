"""CPU kernels: what pinning them costs (``TrainConfig.cpu_kernels``, docs/training.md).

Each kernel setting runs in a worker process of its own (the libraries choose their kernels
once per process), started with that setting's environment:

- **train / eval**: the demo's training step (densenet-tiny, 64 px, batch 32, channels_last,
  Adam, one torch thread) and its evaluation pass (batch 64, no gradients). Every worker first
  trains ``--check-steps`` steps from the same weights and batch and prints a hash of the
  weights (equal hashes: the same bits), then the workers take turns at timed blocks, so slow
  drifts of a shared machine hit all. Blocks are timed in the worker's CPU time (one thread: the
  compute, not the waits of a loaded machine); each figure is the best block; the ratios, against
  the first setting (``native``), are of the best blocks and, more robust on a loaded machine, the
  median of the ratios of blocks timed in the same turn.
- **phantom**: drawing a small phantom with numpy's own kernels and with the pin's
  (``NPY_DISABLE_CPU_FEATURES``), in turns; the hash of its files says whether the bytes differ.

Settings: ``native`` (the CPU's own kernels), ``avx2`` (finegrain's pin), and two alternatives
for comparison: ``no-onednn`` (convolutions through ATen and MKL instead of oneDNN, MKL at
``COMPATIBLE``) and ``sse41`` (oneDNN at SSE4.1, ATen's scalar kernels).

    python benchmarks/cpu_kernels.py                    # train + phantom, all settings
    python benchmarks/cpu_kernels.py --settings native,avx2 --blocks 5 --no-phantom
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from finegrain.cpu_kernels import environment, processor_name

#: The environment of each setting (``FG_BENCH_MKLDNN=0`` switches oneDNN's convolutions off).
SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": environment("avx2"),
    "no-onednn": {"FG_BENCH_MKLDNN": "0", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE"},
    "sse41": {
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "COMPATIBLE",
    },
}


def train_worker(size: int, batch: int, check_steps: int) -> None:
    """Worker: ``check_steps`` steps then a weights hash, then one timed block per stdin line
    (``train N`` or ``infer N``: N training steps or evaluation passes; the reply the
    seconds)."""
    import torch
    import torch.nn.functional as F

    from finegrain.train.models import build_model

    torch.set_num_threads(1)
    if os.environ.get("FG_BENCH_MKLDNN") == "0":
        torch.backends.mkldnn.enabled = False
    torch.manual_seed(0)
    model = build_model("densenet-tiny", pretrained=False).to(memory_format=torch.channels_last)
    model.normalize.memory_format = torch.channels_last
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 2, (batch,), generator=generator)

    eval_images = torch.cat([images, images.flip(-1)])

    def steps(n: int) -> float:
        model.train()
        start = time.process_time()
        for _ in range(n):
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return time.process_time() - start

    @torch.no_grad()
    def passes(n: int) -> float:
        model.eval()
        start = time.process_time()
        for _ in range(n):
            model(eval_images)
        return time.process_time() - start

    steps(check_steps)
    digest = hashlib.sha256()
    for value in model.state_dict().values():
        digest.update(value.contiguous().numpy().tobytes())
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"{digest.hexdigest()[:12]} {capability}", flush=True)
    for line in sys.stdin:
        phase, n = line.split()
        print((steps if phase == "train" else passes)(int(n)), flush=True)


def phantom_worker(out: str, studies: int) -> None:
    """Worker: draw a phantom into ``out``; print the seconds and a hash of its files."""
    from finegrain.data.phantom import make_phantom

    start = time.perf_counter()
    make_phantom(out, studies=studies, eval_studies=studies, size=64, workers=1)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for path in sorted(Path(out).rglob("*")):
        if path.is_file() and path.name != "phantom.json":
            digest.update(path.read_bytes())
    print(f"{seconds} {digest.hexdigest()[:12]}", flush=True)


def _start(setting: str, *args: str, stdin=None) -> subprocess.Popen:
    env = {**os.environ, **SETTINGS[setting]}
    command = [sys.executable, __file__, "--worker", *args]
    return subprocess.Popen(command, env=env, stdin=stdin, stdout=subprocess.PIPE, text=True)


def measure_training(settings: list[str], args: argparse.Namespace) -> None:
    worker = ("train", str(args.size), str(args.batch), str(args.check_steps))
    workers = {name: _start(name, *worker, stdin=subprocess.PIPE) for name in settings}
    results = {name: w.stdout.readline().split() for name, w in workers.items()}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.blocks):
        for phase in ("train", "infer"):
            for name, w in workers.items():
                w.stdin.write(f"{phase} {args.steps}\n")
                w.stdin.flush()
                seconds = float(w.stdout.readline()) / args.steps
                times.setdefault((name, phase), []).append(seconds)
    best = {key: min(values) for key, values in times.items()}
    for w in workers.values():
        w.stdin.close()
        w.wait()
    print(
        f"densenet-tiny, {args.size} px, 1 thread: training step (batch {args.batch}) and "
        f"evaluation pass (batch {2 * args.batch}); best of {args.blocks} blocks of "
        f"{args.steps}; weights after {args.check_steps} training steps"
    )
    print("  ratio: of the best blocks [median of the ratios of blocks timed in the same turn]")
    first = settings[0]
    for name in settings:
        digest, capability = results[name]
        cells = []
        for phase, label in (("train", "train"), ("infer", "eval")):
            ratio = best[name, phase] / best[first, phase]
            turns = statistics.median(
                a / b for a, b in zip(times[name, phase], times[first, phase], strict=True)
            )
            cells.append(
                f"{label} {best[name, phase] * 1000:6.1f} CPU-ms (ratio {ratio:.2f} [{turns:.2f}])"
            )
        print(f"  {name:10s} " + "  ".join(cells) + f"  weights {digest}  ATen {capability}")


def measure_phantom(args: argparse.Namespace) -> None:
    best: dict[str, float] = {}
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.phantom_reps):
            for name in ("native", "avx2"):
                out = str(Path(tmp) / f"{name}-{rep}")
                worker = _start(name, "phantom", out, str(args.phantom_studies))
                seconds, digest = worker.stdout.read().split()
                worker.wait()
                best[name] = min(best.get(name, float("inf")), float(seconds))
                digests[name] = digest
    print(
        f"phantom: {args.phantom_studies} training + 2 x {args.phantom_studies} evaluation "
        f"studies at 64 px, one process; best of {args.phantom_reps}"
    )
    for name in ("native", "avx2"):
        print(
            f"  {name:10s} {best[name]:6.2f} s  ratio {best[name] / best['native']:.2f}  "
            f"files {digests[name]}  NPY_DISABLE_CPU_FEATURES="
            f"{SETTINGS[name].get('NPY_DISABLE_CPU_FEATURES', '')!r}"
        )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--worker", "train"]:
        train_worker(int(argv[2]), int(argv[3]), int(argv[4]))
        return
    if argv[:2] == ["--worker", "phantom"]:
        phantom_worker(argv[2], int(argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks per setting")
    parser.add_argument("--check-steps", type=int, default=20)
    parser.add_argument("--phantom-studies", type=int, default=400)
    parser.add_argument("--phantom-reps", type=int, default=3)
    parser.add_argument("--no-phantom", action="store_true")
    args = parser.parse_args(argv)
    settings = args.settings.split(",")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; known: {', '.join(SETTINGS)}")
    import numpy
    import torch

    print(
        f"{processor_name()} ({platform.machine()}, {os.cpu_count()} CPUs), torch "
        f"{torch.__version__}, numpy {numpy.__version__}"
    )
    measure_training(settings, args)
    if not args.no_phantom:
        measure_phantom(args)


if __name__ == "__main__":
    main()
