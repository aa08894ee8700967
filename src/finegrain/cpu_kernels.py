"""CPU kernels: pin the instruction set the numeric libraries use, so that CPU runs give the
same bits on every x86-64 CPU with AVX2 (``TrainConfig.cpu_kernels``, ``--cpu-kernels``).

Each library below picks its kernels for the CPU it runs on, and kernels for different
instruction sets round differently; the differences grow through training. Measured with
torch 2.14.1 and numpy 2.4.6 on an AVX-512 Xeon (``benchmarks/cpu_kernels.py``, docs/training.md):

- oneDNN (torch's convolutions) -- ``ONEDNN_MAX_CPU_ISA``: changes results;
- MKL (torch's matrix products: the classifier) -- ``MKL_CBWR``: changes results. ``COMPATIBLE``
  is the only branch MKL defines on non-Intel CPUs (others fall back to its automatic choice);
- ATen (torch's own vectorised kernels: BatchNorm, ReLU, pooling, Adam) --
  ``ATEN_CPU_CAPABILITY``: AVX2 and AVX-512 gave the same bits, the scalar kernels did not;
- numpy (the phantom's drawing) -- ``NPY_DISABLE_CPU_FEATURES``: its AVX-512 float32 power
  rounds differently, and about 1 image in 200 differs (a few dozen pixels, 1-4 grey levels).

``avx2`` caps each at AVX2 (MKL at ``COMPATIBLE``); ``native`` (the default) leaves them
alone. torch's libraries read their variable when first used, numpy when imported, so
:func:`pin` works in a process that has not computed anything yet (``train`` pins first thing),
and :func:`call_pinned` runs a numpy function in a fresh process. Results also depend on the
number of torch threads (the demo trains on one), the library versions and, untested, the cache
sizes oneDNN sizes its blocks by. GPUs and non-x86 CPUs are not pinned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from finegrain.errors import FinegrainError

log = logging.getLogger(__name__)

#: The choices of ``cpu_kernels``: the CPU's own kernels, or AVX2 ones on every x86-64 CPU.
KERNELS: tuple[str, ...] = ("native", "avx2")

#: The variables a pin sets, one per library.
VARIABLES: tuple[str, ...] = (
    "ONEDNN_MAX_CPU_ISA",
    "ATEN_CPU_CAPABILITY",
    "MKL_CBWR",
    "NPY_DISABLE_CPU_FEATURES",
)

#: torch's part of the ``avx2`` pin (numpy's depends on its version: :func:`environment`).
TORCH_ENVIRONMENT: dict[str, str] = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
}

#: The kernels of this process's first :func:`pin` (``None``: not called yet).
_first: str | None = None

T = TypeVar("T")


def check_kernels(kernels: str) -> str:
    """``kernels`` if it is one of :data:`KERNELS`, else a :class:`FinegrainError`."""
    if kernels not in KERNELS:
        raise FinegrainError(f"cpu_kernels must be one of {', '.join(KERNELS)}; got {kernels!r}")
    return kernels


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "x86", "i686")


def environment(kernels: str) -> dict[str, str]:
    """The environment variables of ``kernels`` (none for ``native``)."""
    if check_kernels(kernels) == "native":
        return {}
    env = dict(TORCH_ENVIRONMENT)
    avx512 = _numpy_avx512_targets()
    if avx512:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(avx512)
    return env


def _numpy_features() -> tuple[list[str], dict[str, bool]]:
    """numpy's dispatch targets and the CPU features it uses (those disabled are false)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy < 2
        from numpy.core import _multiarray_umath as umath  # type: ignore[no-redef]
    return list(umath.__cpu_dispatch__), dict(umath.__cpu_features__)


def _numpy_avx512_targets() -> list[str]:
    """numpy's AVX-512 dispatch targets (``X86_V4``, ``AVX512_*``; named so since numpy 2.4)."""
    targets, _ = _numpy_features()
    return [t for t in targets if t == "X86_V4" or t.startswith("AVX512")]


def numpy_pinned(kernels: str) -> bool:
    """Whether numpy in this process computes as ``kernels`` asks (its AVX-512 kernels off)."""
    if check_kernels(kernels) == "native":
        return True
    _, features = _numpy_features()
    return not any(features.get(t) for t in _numpy_avx512_targets())


def torch_pinned() -> bool:
    """Whether this process's environment pins torch's kernels (:data:`TORCH_ENVIRONMENT`)."""
    return all(os.environ.get(k) == v for k, v in TORCH_ENVIRONMENT.items())


def pin(kernels: str) -> None:
    """Pin torch's CPU kernels in this process to ``kernels``, before its first computation.

    ``native`` asks for nothing (the CPU's kernels, or those the environment sets). ``avx2``
    sets :func:`environment` (processes started from now on inherit it) and checks what can
    be checked: ATen's capability, and that this process did not compute unpinned before. If
    it did, a :class:`FinegrainError` says to start a fresh process; a CPU without AVX2 (or
    not x86) keeps its own kernels, with a warning.
    """
    global _first
    check_kernels(kernels)
    if _first is None:
        _first = "avx2" if kernels == "avx2" or torch_pinned() else "native"
    if kernels == "native":
        return
    if _first != kernels:
        raise FinegrainError(
            f"cpu_kernels {kernels}: this process already computed with the {_first} CPU "
            "kernels and cannot switch: run it in a fresh process (e.g. --jobs 2)"
        )
    os.environ.update(environment(kernels))
    import torch

    if not is_x86() or not machine()["avx2"]:
        log.warning(
            "cpu_kernels %s: this CPU (%s) has no AVX2; its own kernels are used, so results "
            "may differ from other machines'",
            kernels,
            platform.machine(),
        )
        return
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX2":
        raise FinegrainError(
            f"cpu_kernels {kernels}: torch in this process already chose its {capability} "
            "kernels (at its first computation): set cpu_kernels before anything is computed, "
            "or start the process with "
            + " ".join(f"{k}={v}" for k, v in TORCH_ENVIRONMENT.items())
        )


def machine() -> dict[str, Any]:
    """The CPU: architecture, model name, and whether it has AVX2 and AVX-512 (as numpy finds
    them; a benchmark records it in ``benchmark.json``, key ``"cpu"``)."""
    _, features = _numpy_features()
    return {
        "machine": platform.machine(),
        "processor": processor_name(),
        "avx2": bool(features.get("AVX2")),
        "avx512": bool(features.get("AVX512F")),
    }


def in_effect() -> dict[str, Any]:
    """What decides this process's CPU arithmetic (each run records it in ``config.json``, key
    ``"cpu"``): the kernels in effect (``avx2`` when torch's are pinned on an x86 CPU with AVX2),
    the CPU (:func:`machine`), ATen's capability, torch's threads and the variables of
    :data:`VARIABLES` (``None``: unset, the library's own choice)."""
    import torch

    cpu = machine()
    pinned = torch_pinned() and is_x86() and cpu["avx2"]
    return {
        "kernels": "avx2" if pinned else "native",
        **cpu,
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        "threads": torch.get_num_threads(),
        **{name: os.environ.get(name) for name in VARIABLES},
    }


def processor_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    with (
        contextlib.suppress(OSError),
        open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f,
    ):
        for line in f:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` while inside (processes started meanwhile inherit them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def call_pinned(kernels: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with numpy's kernels pinned to ``kernels`` too: in this process
    when its numpy already computes so (``native``, a CPU without AVX-512, or a process started
    with the pin's environment), else in a fresh process started with :func:`environment`
    (numpy reads it only when imported). ``fn``, its arguments and result must be picklable."""
    if numpy_pinned(kernels):
        return fn(*args, **kwargs)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from finegrain.workers import die_with_parent

    context = multiprocessing.get_context("spawn")
    with _environ(environment(kernels)):
        pool = ProcessPoolExecutor(
            1, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
        )
        with pool:
            future = pool.submit(fn, *args, **kwargs)
            return future.result()
