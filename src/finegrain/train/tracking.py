"""Experiment tracking: mirror a run's evaluations to TensorBoard and / or MLflow.

Off by default. The run directory's own ``metrics.jsonl`` stays the source of truth; trackers
only make long runs watchable. At every evaluation they log the training loss, the learning
rate and, per evaluated split, AUC^FG and AUC with their counts (``n_atypical``, ``n_typical``,
``n_positive``, ``n_negative``) at step = iteration; at the start the full configuration and
the library versions as hyper-parameters; at the end the best checkpoint (highest validation
AUC^FG, as the benchmark selects it).

- **TensorBoard** (``pip install 'finegrain[tensorboard]'``): event files in
  ``<run dir>/tensorboard/`` (``tensorboard --logdir <runs folder>`` shows every run of a grid);
  scalars ``train/loss``, ``train/lr``, ``<split>/auc_fg`` ...; the configuration as the
  hparams plugin's session and as text ``config``; the best checkpoint's path as text.
  A resumed run drops the events logged after its checkpoint (``purge_step``).
- **MLflow** (``pip install 'finegrain[mlflow]'``): one MLflow run per run directory in the
  experiment ``finegrain`` of the tracking URI given (``sqlite:///mlflow.db`` style local store by
  default: MLflow 3 refuses its old plain-folder store unless ``MLFLOW_ALLOW_FILE_STORE=true``);
  metrics ``train_loss``, ``lr``, ``<split>_auc_fg`` ...; the configuration and versions as
  params; the best checkpoint as an artifact under ``checkpoints/``. A resumed run continues
  its MLflow run (found by the tag ``finegrain.run_dir``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finegrain.extras import require

log = logging.getLogger(__name__)

#: The counts logged next to each AUC.
COUNT_KEYS = ("n_atypical", "n_typical", "n_positive", "n_negative")
METRIC_KEYS = ("auc_fg", "auc", *COUNT_KEYS)
RUN_DIR_TAG = "finegrain.run_dir"


@dataclass(frozen=True)
class TrackingSpec:
    """Which trackers a run logs to: ``tensorboard`` (event files in the run directory) and
    ``mlflow`` (a tracking URI, e.g. ``sqlite:///mlflow.db`` or ``http://host:5000``; ``None``:
    off), in the MLflow experiment ``experiment``."""

    tensorboard: bool = False
    mlflow: str | None = None
    experiment: str = "finegrain"

    @property
    def enabled(self) -> bool:
        return self.tensorboard or bool(self.mlflow)

    def check(self) -> None:
        """Raise ``ImportError`` (saying what to install) when a chosen tracker's package is
        missing: call it before starting long work."""
        if self.tensorboard:
            _require("tensorboard", "tensorboard")
        if self.mlflow:
            _require("mlflow", "mlflow")


def default_mlflow_uri(folder: str | Path) -> str:
    """A local MLflow store in ``folder``: ``sqlite:///<folder>/mlflow.db``."""
    return f"sqlite:///{(Path(folder) / 'mlflow.db').resolve()}"


def artifact_root(uri: str) -> str | None:
    """Where a local store keeps artifacts: ``<db folder>/mlartifacts`` beside a
    ``sqlite:///`` database (MLflow's own default is ``./mlruns`` in the current directory).
    ``None`` (the server's choice) for any other tracking URI.

    >>> artifact_root("sqlite:////runs/out/mlflow.db")
    'file:///runs/out/mlartifacts'
    >>> artifact_root("http://mlflow.example:5000") is None
    True
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return (Path(uri[len(prefix) :]).parent / "mlartifacts").as_uri()


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": "[1, 2]"}`` (None -> "None")."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, bool | int | float | str):
            out[name] = value
        else:
            out[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


def _require(module: str, extra: str):
    return require(module, extra, needed_by=f"--{extra}")


class _TensorBoard:
    def __init__(self, run_dir: Path, params: dict[str, Any], start: int) -> None:
        _require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.writer = SummaryWriter(
            log_dir=str(run_dir / "tensorboard"), purge_step=start + 1 if start else None
        )
        if not start:
            flat = flatten(params)
            metrics = {f"validate/{k}": 0.0 for k in ("auc_fg", "auc")}
            for summary in hparams(flat, metrics):
                self.writer.file_writer.add_summary(summary)
            text = json.dumps(params, indent=2, sort_keys=True, default=str)
            self.writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)

    def log(self, iteration: int, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, iteration)
        self.writer.flush()

    def best(self, path: Path, iteration: int) -> None:
        self.writer.add_text("best_checkpoint", f"{path} (iteration {iteration})", iteration)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, uri: str, experiment: str, run_dir: Path, params: dict[str, Any]) -> None:
        mlflow = _require("mlflow", "mlflow")
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found
            else self.client.create_experiment(experiment, artifact_location=artifact_root(uri))
        )
        key = str(run_dir.resolve())
        runs = self.client.search_runs(
            [experiment_id], f"tags.`{RUN_DIR_TAG}` = '{key.replace(chr(39), '')}'"
        )
        if runs:  # a resumed run continues its MLflow run
            self.run_id = runs[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(
                experiment_id, run_name=run_dir.name, tags={RUN_DIR_TAG: key}
            )
            self.run_id = run.info.run_id
            for name, value in flatten(params).items():
                self.client.log_param(self.run_id, name, str(value)[:6000])

    def log(self, iteration: int, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.client.log_metric(self.run_id, key.replace("/", "_"), value, step=iteration)

    def best(self, path: Path, iteration: int) -> None:
        self.client.log_artifact(self.run_id, str(path), "checkpoints")
        self.client.set_tag(self.run_id, "best_iteration", str(iteration))

    def close(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


class Tracker:
    """The trackers of one run (rank 0 only). ``params`` is ``config.json``'s record (the
    configuration with ``versions``); ``start`` the iteration the run resumes from (0: fresh).

    Opening a tracker fails loudly (a missing package, a bad URI); once training runs, an
    error of a tracker (a server gone, a locked database) is logged once and that tracker is
    switched off: ``metrics.jsonl`` has everything, and a long run is not lost to its mirror.
    """

    def __init__(
        self, spec: TrackingSpec, run_dir: str | Path, params: Mapping[str, Any], start: int = 0
    ) -> None:
        run_dir = Path(run_dir)
        self.backends: list = []
        if spec.tensorboard:
            self.backends.append(_TensorBoard(run_dir, dict(params), start))
        if spec.mlflow:
            self.backends.append(_MLflow(spec.mlflow, spec.experiment, run_dir, dict(params)))

    def log_evaluation(
        self,
        iteration: int,
        train_loss: float,
        lr: float,
        scores: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """One evaluation: ``scores`` is ``{split: {"auc_fg": ..., "auc": ..., counts}}``
        (a metric that is ``None``, because a class was empty, is not logged)."""
        values = {"train/loss": float(train_loss), "train/lr": float(lr)}
        for split, row in scores.items():
            for key in METRIC_KEYS:
                if row.get(key) is not None:
                    values[f"{split}/{key}"] = float(row[key])
        self._each("log", iteration, values)

    def log_best_checkpoint(self, path: str | Path, iteration: int) -> None:
        self._each("best", Path(path), iteration)

    def close(self) -> None:
        self._each("close")

    def _each(self, method: str, *args) -> None:
        for backend in list(self.backends):
            try:
                getattr(backend, method)(*args)
            except Exception as exc:  # the mirror failed; the run and metrics.jsonl go on
                log.warning(
                    "%s tracking switched off for this run after an error: %s",
                    type(backend).__name__.strip("_"),
                    exc,
                )
                self.backends.remove(backend)


def best_checkpoint(run_dir: str | Path) -> tuple[Path, int] | None:
    """``(checkpoint path, iteration)`` with the highest validation AUC^FG, or None."""
    from finegrain.experiment.selection import read_metrics, select_iteration
    from finegrain.train.rundir import RunDirectory

    metrics = read_metrics(run_dir)
    if metrics.empty or "validate" not in set(metrics["split"]):
        return None
    iteration = select_iteration(metrics)
    if iteration is None:
        return None
    path = RunDirectory(run_dir).checkpoint_path(iteration)
    return (path, iteration) if path.exists() else None
