"""Experiment tracking: what a run logs to TensorBoard and MLflow, read back with the libraries'
own readers (EventAccumulator, MlflowClient) and compared with the run's metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finegrain.io import read_jsonl
from finegrain.train.loop import train
from finegrain.train.tracking import TrackingSpec, default_mlflow_uri, flatten
from helpers import KillAfter, make_config, tiny_datasets

pytestmark = pytest.mark.usefixtures("one_thread")


def _metrics(run_dir: Path) -> dict[tuple[int, str], dict]:
    return {(m["iteration"], m["split"]): m for m in read_jsonl(run_dir / "metrics.jsonl")}


def test_tensorboard_events_match_metrics_jsonl(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run = train(
        make_config(tmp_path / "run"),
        datasets=tiny_datasets(),
        progress=False,
        tracking=TrackingSpec(tensorboard=True),
    )
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    metrics = _metrics(run)
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [3, 6]
    for e in loss:
        assert e.value == pytest.approx(metrics[(e.step, "validate")]["train_loss"], rel=1e-6)
    assert [e.value for e in events.Scalars("train/lr")] == pytest.approx([1e-4, 1e-4])
    for key in ("auc_fg", "auc", "n_atypical", "n_typical", "n_positive", "n_negative"):
        logged = events.Scalars(f"validate/{key}")
        assert [e.step for e in logged] == [3, 6]
        for e in logged:
            assert e.value == pytest.approx(metrics[(e.step, "validate")][key], rel=1e-6)
    # the configuration as hyper-parameters (the hparams plugin) and as text
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["method"].string_value == "pu-rm"
    assert hparams["lr"].number_value == pytest.approx(1e-4)
    assert "versions.torch" in hparams
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.replace("\n    ", "\n").strip())["observation"] == "Edema"
    best = events.Tensors("best_checkpoint/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "checkpoints/iter-000000" in best


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside mlflow (sqlalchemy)
def test_mlflow_run_holds_metrics_params_and_best_checkpoint(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path / "..")  # artifacts must not land in the working directory
    cwd_before = sorted(p.name for p in Path.cwd().iterdir())
    uri = default_mlflow_uri(tmp_path)
    assert uri.startswith("sqlite:///") and uri.endswith("mlflow.db")
    out = tmp_path / "run"
    config = make_config(out, iterations=9, checkpoint_every=3)
    datasets = tiny_datasets()
    spec = TrackingSpec(mlflow=uri)
    # killed during the second interval, then resumed: one MLflow run, continued
    killed = dict(datasets, train=KillAfter(datasets["train"], limit=8 * 4))
    with pytest.raises(KeyboardInterrupt):
        train(config, datasets=killed, progress=False, tracking=spec)
    train(config, resume=True, datasets=datasets, progress=False, tracking=spec)

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("finegrain")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["finegrain.run_dir"] == str(out.resolve())
    assert run.data.params["method"] == "pu-rm" and run.data.params["seed"] == "0"
    assert run.data.params["versions.torch"]
    metrics = _metrics(out)
    history = client.get_metric_history(run.info.run_id, "validate_auc_fg")
    assert sorted({m.step for m in history}) == [3, 6, 9]
    latest = {m.step: m.value for m in sorted(history, key=lambda m: m.timestamp)}
    for step, value in latest.items():
        assert value == pytest.approx(metrics[(step, "validate")]["auc_fg"], rel=1e-6)
    counts = client.get_metric_history(run.info.run_id, "validate_n_negative")
    assert {m.value for m in counts} == {metrics[(3, "validate")]["n_negative"]}
    # the best checkpoint (highest validation AUC^FG, earliest on ties) as an artifact
    best = min(latest, key=lambda s: (-latest[s], s))
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")]
    assert artifacts == [f"checkpoints/iter-{best:07d}.pt"]
    assert run.data.tags["best_iteration"] == str(best)
    # beside the local store, not in the working directory (MLflow's default ./mlruns)
    assert (tmp_path / "mlartifacts").is_dir()
    assert sorted(p.name for p in Path.cwd().iterdir()) == cwd_before


def test_tracking_is_off_by_default_and_flags_reach_it(tmp_path, monkeypatch):
    run = train(make_config(tmp_path / "run"), datasets=tiny_datasets(), progress=False)
    assert not (run / "tensorboard").exists()
    assert not list(tmp_path.glob("*.db"))
    import argparse

    from finegrain.cli.options import tracking_spec
    from finegrain.cli.train import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--index", "i", "--cache", "c", "--observation", "Edema", "--out", "o"]
    assert tracking_spec(parser.parse_args(base), tmp_path) is None
    spec = tracking_spec(parser.parse_args([*base, "--tensorboard", "--mlflow"]), tmp_path)
    assert spec == TrackingSpec(tensorboard=True, mlflow=default_mlflow_uri(tmp_path))
    spec = tracking_spec(parser.parse_args([*base, "--mlflow", "http://host:5000"]), tmp_path)
    assert spec == TrackingSpec(mlflow="http://host:5000")


def test_flatten_makes_loggable_hyperparameters():
    flat = flatten({"a": {"b": 1, "c": None}, "d": [1, 2], "e": True})
    assert flat == {"a.b": 1, "a.c": "None", "d": "[1, 2]", "e": True}


def test_a_failing_tracker_is_switched_off_and_the_run_goes_on(caplog):
    from finegrain.train.tracking import Tracker

    class Broken:
        def log(self, iteration, values):
            raise ConnectionError("tracking server gone")

    class Recorder:
        def __init__(self):
            self.logged = []

        def log(self, iteration, values):
            self.logged.append((iteration, values["train/loss"]))

    tracker = Tracker(TrackingSpec(), "unused", {})
    recorder = Recorder()
    tracker.backends = [Broken(), recorder]
    tracker.log_evaluation(3, 0.5, 1e-4, {"validate": {"auc_fg": None, "auc": 0.7}})
    tracker.log_evaluation(6, 0.4, 1e-4, {})
    assert recorder.logged == [(3, 0.5), (6, 0.4)]
    assert len(tracker.backends) == 1
    assert "Broken tracking switched off" in caplog.text and "server gone" in caplog.text
