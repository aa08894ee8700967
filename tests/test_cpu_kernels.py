"""CPU kernels (``finegrain.cpu_kernels``, ``TrainConfig.cpu_kernels``): the ``avx2`` pin gives
the same bits whatever instruction sets the CPU adds above AVX2.

One machine cannot be another CPU. The test emulates an AVX2-only x86 CPU on this one with the
libraries' own caps (oneDNN, ATen, MKL at AVX2), set before the process starts, and shows that
(1) unpinned runs differ between this CPU and the emulated one, on an AVX-512 CPU (so the
check can fail), and (2) pinned runs are bit-identical on both, so the pin reaches every library
that has a cap, in the training process, early enough. It cannot show that a real AVX2 CPU of
another model or vendor (other cache sizes, MKL's choice on AMD) computes the same bits: that is
the claim docs/training.md makes and only two machines can check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from finegrain import cpu_kernels
from finegrain.cpu_kernels import TORCH_ENVIRONMENT, VARIABLES, call_pinned, environment, pin
from finegrain.errors import FinegrainError
from finegrain.experiment.presets import DEMO, PAPER
from finegrain.train.config import TrainConfig
from finegrain.train.loop import train
from helpers import make_config, tiny_datasets

x86 = pytest.mark.skipif(not cpu_kernels.is_x86(), reason="the pin is for x86 CPUs")

#: What an AVX2-only Intel CPU's libraries choose by themselves, imposed on this one.
AVX2_MACHINE = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}

#: A short densenet-tiny run in a fresh process; prints a hash of its weights and predictions.
TRAIN_SCRIPT = """
import hashlib, sys
from helpers import make_config, tiny_datasets
from finegrain.train.checkpoint import load_checkpoint
from finegrain.train.loop import train

config = make_config(sys.argv[1], model="densenet-tiny", method="u-ones", iterations=2,
                     checkpoint_every=2, cpu_kernels=sys.argv[2])
run = train(config, datasets=tiny_datasets(), progress=False)
digest = hashlib.sha256()
for value in load_checkpoint(run / "checkpoints" / "iter-0000002.pt")["model"].values():
    digest.update(value.numpy().tobytes())
digest.update((run / "predictions-validate.csv").read_bytes())
print(digest.hexdigest())
"""


def _fresh_env(machine: dict[str, str]) -> dict[str, str]:
    """This process's environment without any pin, plus ``machine``'s caps and sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return {**env, **machine}


def _train_fresh(out: Path, kernels: str, machine: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(out), kernels],
        env=_fresh_env(machine),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1]


def _has_avx512() -> bool:
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=_fresh_env({}), capture_output=True, text=True
    )
    return out.stdout.strip() == "AVX512"


@x86
@pytest.mark.slow
def test_pinned_runs_are_identical_on_an_emulated_avx2_cpu(tmp_path):
    runs = {
        (machine, kernels): _train_fresh(tmp_path / f"{machine}-{kernels}", kernels, caps)
        for machine, caps in (("this", {}), ("avx2", AVX2_MACHINE))
        for kernels in ("native", "avx2")
    }
    if _has_avx512():  # the check can fail: unpinned, the two CPUs give other bits
        assert runs["this", "native"] != runs["avx2", "native"]
    assert runs["this", "avx2"] == runs["avx2", "avx2"]


def test_environment_caps_every_library_at_avx2():
    assert environment("native") == {}
    env = environment("avx2")
    assert {k: env[k] for k in TORCH_ENVIRONMENT} == TORCH_ENVIRONMENT
    # numpy: only its AVX-512 targets are switched off (none on a numpy without them)
    disabled = env.get("NPY_DISABLE_CPU_FEATURES", "").split()
    assert all(t == "X86_V4" or t.startswith("AVX512") for t in disabled)
    with pytest.raises(FinegrainError, match="cpu_kernels must be one of native, avx2"):
        environment("avx512")


def test_kernels_are_part_of_a_run_identity_when_pinned(tmp_path):
    native = make_config(tmp_path / "a")
    assert native.cpu_kernels == "native" and "cpu_kernels" not in native.identity()
    pinned = make_config(tmp_path / "a", cpu_kernels="avx2")
    assert pinned.identity()["cpu_kernels"] == "avx2"
    assert pinned.identity_hash() != native.identity_hash()
    assert set(pinned.differences(native.to_dict())) == {"cpu_kernels"}
    with pytest.raises(FinegrainError, match="cpu_kernels"):
        make_config(tmp_path / "a", cpu_kernels="fast")


def test_the_demo_pins_and_the_paper_does_not():
    assert DEMO.setting("cpu_kernels") == "avx2"
    assert PAPER.setting("cpu_kernels") == "native"


@x86
def test_a_run_records_the_kernels_it_computed_with(tmp_path):
    # this test process was started pinned (conftest.py), as a worker of the demo is
    out = train(make_config(tmp_path / "run", cpu_kernels="avx2"), datasets=tiny_datasets())
    record = json.loads((out / "config.json").read_text())
    assert record["cpu_kernels"] == "avx2"
    cpu = record["cpu"]
    assert cpu["kernels"] == "avx2" and cpu["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert cpu["MKL_CBWR"] == "COMPATIBLE" and cpu["threads"] == torch.get_num_threads()
    if cpu["avx2"]:
        assert cpu["aten_capability"] == "AVX2"
    assert TrainConfig.from_json(out / "config.json").cpu_kernels == "avx2"


def test_pin_refuses_a_process_that_computed_otherwise(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "_first", "native")  # an unpinned run trained here first
    with pytest.raises(FinegrainError, match="fresh process"):
        pin("avx2")
    pin("native")  # asks for nothing
    if cpu_kernels.is_x86() and cpu_kernels.machine()["avx2"]:
        monkeypatch.setattr(cpu_kernels, "_first", None)
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
        with pytest.raises(FinegrainError, match="already chose its AVX512 kernels"):
            pin("avx2")


def _numpy_avx512_in_use() -> bool:
    return not cpu_kernels.numpy_pinned("avx2")


def test_call_pinned_computes_as_a_process_started_pinned(tmp_path):
    """numpy reads its pin when imported: call_pinned runs a function in a fresh process started
    with it, which computes what a process started so by hand computes."""
    x = np.linspace(0, 1, 4096, dtype=np.float32)
    gamma = np.float32(0.9)
    pinned = call_pinned("avx2", np.power, x, gamma)
    script = (
        "import numpy as np, sys; "
        "np.save(sys.argv[1], np.linspace(0, 1, 4096, dtype=np.float32) ** np.float32(0.9))"
    )
    reference = tmp_path / "reference.npy"
    env = _fresh_env(environment("avx2"))
    subprocess.run([sys.executable, "-c", script, str(reference)], env=env, check=True)
    assert pinned.tobytes() == np.load(reference).tobytes()
    if _numpy_avx512_in_use():  # numpy's AVX-512 float32 power rounds otherwise
        assert (x**gamma).tobytes() != pinned.tobytes()
    assert call_pinned("native", np.power, x, gamma).tobytes() == (x**gamma).tobytes()
