"""The run directory's one owner: file operations, resume bookkeeping, the training lock (two
processes), and the rule that a run is only resumed or reused under the same settings."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from finegrain.train.config import RUNTIME_FIELDS, TrainConfig
from finegrain.train.rundir import (
    PREDICTION_COLUMNS,
    RunDirectory,
    RunLockedError,
    checkpoints_of,
    find_runs,
)


def _predictions(iteration: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_id": ["001", "002"],
            "iteration": iteration,
            "label": [1, 0],
            "subcategory": ["typical", None],
            "score": [0.9, 0.2],
            "fine_score": [0.8, 0.1],
        }
    )[list(PREDICTION_COLUMNS)]


def test_outputs_round_trip_and_truncate(tmp_path):
    run = RunDirectory(tmp_path / "run")
    for it in (3, 6):
        run.append_metrics({"iteration": it, "split": "validate", "auc_fg": it / 10})
        run.append_predictions("validate", _predictions(it))
    run.append_metrics({"iteration": 6, "split": "validate", "auc_fg": 0.9})  # re-evaluated
    metrics = run.read_metrics(["auc_fg", "auc"])
    assert metrics[["iteration", "auc_fg"]].values.tolist() == [[3, 0.3], [6, 0.9]]
    assert metrics["auc"].isna().all()  # a field no line has becomes NaN
    frame = run.read_predictions("validate", iteration=6)
    assert frame["image_id"].tolist() == ["001", "002"]  # ids stay strings
    assert frame["fine_score"].tolist() == [0.8, 0.1]
    assert run.read_predictions("test") is None
    run.truncate_after(3, ["validate"])
    assert [r["iteration"] for r in run.metrics_records()] == [3]
    assert set(run.read_predictions("validate")["iteration"]) == {3}
    run.clear_outputs(["validate"])
    assert run.metrics_records() == [] and not run.has_predictions("validate")


def test_checkpoints_and_done_marker(tmp_path):
    run = RunDirectory(tmp_path / "run")
    assert run.checkpoints() == [] and run.latest_checkpoint() is None
    for it in (20, 3):
        run.save_checkpoint(it, {"model": {}, "iteration": it})
    (run.checkpoint_dir / "notes.pt").write_bytes(b"not a checkpoint of the run")
    assert [i for i, _ in run.checkpoints()] == [3, 20]
    assert run.load_checkpoint()["iteration"] == 20
    assert run.load_checkpoint(3)["iteration"] == 3
    assert RunDirectory.of_checkpoint(run.checkpoint_path(3)).path == run.path
    assert checkpoints_of(run.path) == [run.checkpoint_path(3), run.checkpoint_path(20)]
    with pytest.raises(FileNotFoundError, match="no checkpoints"):
        checkpoints_of(tmp_path)
    assert not run.is_done()
    run.write_config({"observation": "Edema"})
    root = tmp_path
    assert find_runs(root.parent) == ([], [])  # not the grid layout
    run.mark_done(20)
    assert run.is_done()


def test_find_runs_follows_the_grid_layout(tmp_path):
    finished = RunDirectory(tmp_path / "1a2b3c4d/Edema/u-ones/seed0")
    unfinished = RunDirectory(tmp_path / "1a2b3c4d/Edema/pu-rm-tau0.3/seed0")
    for run in (finished, unfinished):
        run.write_config({})
    finished.mark_done(1)
    assert find_runs(tmp_path) == ([finished.path], [unfinished.path])


def test_a_second_process_cannot_train_a_locked_run(tmp_path):
    """One process holds the lock (as a training process does); another is refused with the
    directory named; once the holder is killed the OS releases the lock."""
    from finegrain.train.loop import train

    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from finegrain.train.rundir import RunDirectory
                with RunDirectory({str(run_dir)!r}).lock():
                    print("locked", flush=True)
                    sys.stdin.read()  # hold until killed
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = TrainConfig(index="i.csv", cache="c", observation="Edema", out=str(run_dir))
        with pytest.raises(RunLockedError, match=str(run_dir)):
            train(config, progress=False)
        with pytest.raises(RunLockedError, match="another process"), RunDirectory(run_dir).lock():
            pass
    finally:
        holder.kill()
        holder.wait()
    with RunDirectory(run_dir).lock():  # released by the OS when the holder died
        pass


def test_runtime_fields_do_not_count_as_differences():
    base = TrainConfig(index="i.csv", cache="c", observation="Edema", iterations=100)
    recorded = base.to_dict() | {"versions": {}, "world_size": 1, "data": {}}
    runtime = {"num_workers": 3, "compile": True, "eval_batch_size": 7, "device": "cpu"}
    runtime |= {"out": "x", "augment_on": "device"}  # same draws on the device as in the loader
    runtime["augment_on"] = "device"  # same draws as the loader (tests/test_augment_device.py)
    assert set(runtime) == RUNTIME_FIELDS
    same = TrainConfig(**(base.to_dict() | runtime))
    assert same.differences(recorded) == {}
    other = TrainConfig(**(base.to_dict() | {"iterations": 150, "lr": 1e-3}))
    assert other.differences(recorded) == {"iterations": (100, 150), "lr": (1e-4, 1e-3)}


def test_predictions_written_before_fine_scores_read_with_the_score_as_fine_score(tmp_path):
    run = RunDirectory(tmp_path / "run")
    old = _predictions(3).drop(columns=["fine_score"])
    run.path.mkdir()
    old.to_csv(run.predictions_path("validate"), index=False)
    frame = run.read_predictions("validate")
    assert frame["fine_score"].tolist() == frame["score"].tolist() == [0.9, 0.2]
