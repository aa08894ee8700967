"""The report's bootstrap statistics on a finished benchmark: this tree against a baseline tree.

``finegrain benchmark`` bootstraps every run's AUC^FG (``run_statistics``), every variant's
seed-mean (``split_statistics``) and every paired difference against U-Ones
(``paired_differences``), 2,000 replicates each. This reads the finished runs of OUT (as
``--report-only`` does) and times those three steps in a fresh process for each source tree,
alternating over --rounds rounds (CPU seconds; the best round counts on a shared machine), and
checks that both trees give identical tables.

The baseline is another checkout's ``src`` (e.g. ``git archive <commit> src | tar -x -C DIR``).

``--steps`` instead times every step of the whole report (``write_outputs``, as ``finegrain
benchmark --report-only`` runs it) in CPU seconds, without a profiler's overhead: each step
function of ``finegrain.experiment.outputs`` and the index reads (``read_index``, and the
partial ``index_paths`` / ``index_columns``) are wrapped with a timer. Nested steps (the
statistics and ``measure_localisation`` inside ``aggregate``) count in both. Run it
with ``PYTHONPATH=<other tree>/src`` to time another tree the same way.

    nice -n 5 python benchmarks/report_stats.py OUT --baseline-src /tmp/before/src
    nice -n 5 python benchmarks/report_stats.py OUT --steps [the benchmark's options: --seeds 3 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, pickle, sys, time
from pathlib import Path
from finegrain.experiment.aggregate import run_statistics, split_statistics
from finegrain.experiment.outputs import paired_differences
from finegrain.experiment.plan import plan_benchmark
from finegrain.experiment.presets import get_preset
from finegrain.experiment.selection import select_runs

out = Path(sys.argv[1])
recorded = json.loads((out / "benchmark.json").read_text())
preset = get_preset(recorded["preset"]["name"]).replace(
    **{k: v for k, v in recorded["preset"].items() if k not in ("name", "train")},
    **recorded["preset"]["train"],
)
plan = plan_benchmark(preset, out / "runs", methods=recorded.get("methods"),
                      tau=recorded.get("tau"), taus=recorded.get("taus"))
selections, _ = select_runs(plan.runs)
seconds, tables = {}, {}
for name, step in (
    ("run_statistics", lambda: run_statistics(selections)),
    ("split_statistics",
     lambda: split_statistics(selections, reference=plan.reference_cell(plan.selections[0]))),
    ("paired_differences", lambda: paired_differences(selections, plan)),
):
    start = time.process_time()
    tables[name] = step()
    seconds[name] = time.process_time() - start
pickle.dump(tables, open(sys.argv[2], "wb"))
print(json.dumps({"runs": len(selections), "seconds": seconds}))
"""


STEPS = """
import sys, time
from collections import defaultdict
import finegrain.data.index as index_module
import finegrain.experiment.outputs as outputs
from finegrain.cli import main

cpu, calls = defaultdict(float), defaultdict(int)

def timed(module, name, label):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            cpu[label] += time.process_time() - start
            calls[label] += 1
    setattr(module, name, wrapper)

STEP_NAMES = ("select_runs", "results_table", "summary_table", "split_statistics",
              "paired_differences", "run_statistics", "fine_label_results", "phantom_truth",
              "measure_localisation", "truth_table", "control_table", "make_tables",
              "make_figures", "write_tables", "write_report")
for name in STEP_NAMES:  # the steps this tree's outputs module has (older trees: fewer)
    if hasattr(outputs, name):
        timed(outputs, name, name)
timed(index_module, "read_index", "read_index (inside the steps above)")
for name in ("index_paths", "index_columns"):  # a report's partial reads of the index
    if hasattr(index_module, name):
        timed(index_module, name, f"{name} (inside the steps above)")
start = time.process_time()
main(["benchmark", "--out", *sys.argv[1:], "--report-only", "--no-progress"])
total = time.process_time() - start
print("STEPS")
for label, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
    print(f"{label:>40}: {seconds:6.1f} s CPU ({calls[label]} calls)")
print(f"{'whole command (imports included)':>40}: {total:6.1f} s CPU")
"""


def run_child(src: Path, out: Path, tables: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), str(tables)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"child with {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a finished `finegrain benchmark` folder")
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("--steps", action="store_true", help="time each step of the report")
    parser.add_argument("--rounds", type=int, default=2)
    args, extra = parser.parse_known_args()
    if args.steps:  # extra: the benchmark's own options (--seeds 3 ...), as it was run
        done = subprocess.run(
            [sys.executable, "-c", STEPS, str(args.out), *extra], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        print(done.stdout.split("STEPS\n", 1)[1], end="")
        return
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.baseline_src is None:
        parser.error("--baseline-src is required (or --steps)")
    here = Path(__file__).resolve().parents[1] / "src"
    trees = {"baseline": args.baseline_src, "this tree": here}
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, src in trees.items():
                result = run_child(src, args.out, Path(tmp) / f"{name}.pkl")
                total = sum(result["seconds"].values())
                print(
                    f"round {round_ + 1}, {name}: {result['runs']} runs, "
                    + ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
                    + f" (CPU; total {total:.1f} s; load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
                if name not in best or total < sum(best[name].values()):
                    best[name] = result["seconds"]
        old = pickle.loads((Path(tmp) / "baseline.pkl").read_bytes())
        new = pickle.loads((Path(tmp) / "this tree.pkl").read_bytes())
    same = all(old[k].equals(new[k]) for k in old)
    ratio = sum(best["baseline"].values()) / sum(best["this tree"].values())
    print(
        f"RESULT baseline / this tree = {ratio:.2f}x CPU "
        f"({sum(best['baseline'].values()):.1f} s vs {sum(best['this tree'].values()):.1f} s); "
        f"tables identical: {same}"
    )


if __name__ == "__main__":
    main()
