"""A model and a method that a module outside finegrain registers at import reach the worker
processes of a grid: each task carries the modules that registered its method and model, and
the worker imports them before training."""

from __future__ import annotations

import pytest

import registered_entries
from finegrain.experiment.launchers import LocalLauncher, RunTask, execute
from finegrain.train.checkpoint import load_checkpoint
from finegrain.train.config import TrainConfig
from helpers import index_and_cache

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def phantom_data(phantom_root, tmp_path_factory):
    return index_and_cache(phantom_root, tmp_path_factory.mktemp("registered"))


def _config(data, out, seed: int) -> TrainConfig:
    return TrainConfig(
        index=str(data / "index.csv"),
        cache=str(data / "cache"),
        observation="pleural effusion",
        method=registered_entries.METHOD,
        model=registered_entries.MODEL,
        pretrained=False,
        seed=seed,
        iterations=2,
        checkpoint_every=2,
        batch_size=8,
        num_workers=0,
        device="cpu",
        out=str(out),
    )


def test_a_task_carries_the_modules_that_registered_its_method_and_model(tmp_path):
    config = _config(tmp_path, tmp_path / "run", 0)
    assert RunTask(config, "run").imports == ("registered_entries",)
    builtin = TrainConfig(index="i", cache="c", observation="Edema", model="densenet-tiny")
    assert RunTask(builtin, "run").imports == ()


def test_registered_model_and_method_train_in_spawned_workers(phantom_data, tmp_path):
    configs = [_config(phantom_data, tmp_path / f"seed{s}", s) for s in (0, 1)]
    done: list[str] = []
    launcher = LocalLauncher(jobs=2, target=execute)
    assert not launcher.in_process  # each run in a spawned child process
    launcher.run(
        [RunTask(c, f"seed{c.seed}", threads=1) for c in configs], lambda t: done.append(t.label)
    )
    assert sorted(done) == ["seed0", "seed1"]
    for config in configs:
        checkpoint = load_checkpoint(
            next((tmp_path / f"seed{config.seed}").glob("checkpoints/*.pt"))
        )
        assert checkpoint["model_name"] == registered_entries.MODEL
        assert checkpoint["method"] == registered_entries.METHOD
        # the registered model's features under the registered method's 3-way head
        assert tuple(checkpoint["model"]["classifier.weight"].shape) == (
            3,
            registered_entries.FEATURES,
        )


def test_the_torchrun_ranks_get_the_imports(tmp_path):
    from finegrain.experiment.launchers import _task_from_json, _task_to_json

    task = RunTask(_config(tmp_path, tmp_path / "run", 0), "run", processes=2)
    assert _task_from_json(_task_to_json(task)).imports == ("registered_entries",)


@pytest.mark.slow
def test_registered_model_and_method_train_through_torchrun(phantom_data, tmp_path):
    """Two gloo processes launched by torch.distributed.run (the multi-GPU path) import the
    registering module too."""
    config = _config(phantom_data, tmp_path / "run", 0)
    assert execute(RunTask(config, "run", threads=1, processes=2)) == str(tmp_path / "run")
    checkpoint = load_checkpoint(next((tmp_path / "run").glob("checkpoints/*.pt")))
    assert checkpoint["config"]["model"] == registered_entries.MODEL
    assert tuple(checkpoint["model"]["classifier.weight"].shape) == (3, registered_entries.FEATURES)
