"""The README quick-start path end to end: ``run_benchmark`` with the built-in phantom as its
data source and the parallel grid (worker processes), as ``finegrain benchmark`` runs it."""

from __future__ import annotations

import json

import pandas as pd

from finegrain.experiment.presets import DEMO
from finegrain.experiment.runner import DataSource, run_benchmark

#: The demo preset shrunk to seconds: one observation, one seed, two methods, 32 px.
QUICK = DEMO.replace(
    observations=("Edema",),
    seeds=1,
    iterations=2,
    checkpoint_every=2,
    batch_size=8,
    image_size=32,
    phantom_studies=150,
    phantom_eval_studies=40,
    phantom_size=32,
)
METHODS = ["u-ones", "pu-rm"]


def test_quick_start_path_with_the_parallel_grid(tmp_path):
    parallel = run_benchmark(
        tmp_path / "parallel",
        QUICK,
        DataSource(phantom=True),
        methods=METHODS,
        jobs=2,
        progress=False,
    )
    out = tmp_path / "parallel"
    assert sorted(s.label for s in parallel.grid.trained) == [
        "Edema/pu-rm-tau0.3/seed0",
        "Edema/u-ones/seed0",
    ]
    assert (out / "data/phantom.done").is_file() and (out / "data/index.csv").is_file()
    for name in ("results.csv", "summary.md", "summary.tex", "report.html", "benchmark.json"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "benchmark.json").read_text())["data"] == "phantom"
    md = (out / "summary.md").read_text()
    assert "| U-Ones |" in md and "| PU-RM |" in md
    results = pd.read_csv(out / "results.csv")
    assert set(results["method"]) == set(METHODS) and set(results["split"]) == {"validate", "test"}
    assert results["selected"].any()
    page = (out / "report.html").read_text()
    assert "2 finished runs of 2" in page and "32 px, 2 iterations" in page

    # the worker processes change nothing: the same grid trained in this process gives the
    # same predictions, byte for byte, and the same metrics (timings aside)
    from finegrain.experiment.grid import grid_for, run_directory
    from finegrain.experiment.plan import plan_runs
    from finegrain.experiment.runner import BenchmarkData, run_grid
    from finegrain.train.rundir import RunDirectory

    specs = grid_for(["table2"], observations=["Edema"], seeds=1, methods=METHODS)
    data = BenchmarkData(out / "data/index.csv", out / "data/cache-32")
    runs = plan_runs(specs, tmp_path / "sequential", QUICK, data)
    sequential = run_grid(runs, threads=QUICK.threads, jobs=1, progress=False)
    assert len(sequential.trained) == 2
    for spec in specs:
        a, b = (
            RunDirectory(run_directory(spec, QUICK, out / "runs")),
            RunDirectory(run_directory(spec, QUICK, tmp_path / "sequential")),
        )
        for split in ("validate", "test"):
            assert a.predictions_path(split).read_bytes() == b.predictions_path(split).read_bytes()
        untimed = [
            [{k: v for k, v in r.items() if k != "elapsed_s"} for r in run.metrics_records()]
            for run in (a, b)
        ]
        assert untimed[0] == untimed[1]
