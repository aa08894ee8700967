"""The report's bootstrap statistics on a finished benchmark: this tree against a baseline tree.

``finegrain benchmark`` bootstraps every run's AUC^FG (``run_statistics``), every variant's
seed-mean (``split_statistics``) and every paired difference against U-Ones
(``paired_differences``), 2,000 replicates each. This reads the finished runs of OUT (as
``--report-only`` does) and times those three steps in a fresh process for each source tree,
alternating over --rounds rounds (CPU seconds; the best round counts on a shared machine), and
checks that both trees give identical tables.

The baseline is another checkout's ``src`` (e.g. ``git archive <commit> src | tar -x -C DIR``).

    nice -n 5 python benchmarks/report_stats.py OUT --baseline-src /tmp/before/src
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
from finegrain.experiment.grid import grid_for
from finegrain.experiment.outputs import _table_methods, collect, paired_differences
from finegrain.experiment.presets import get_preset

out = Path(sys.argv[1])
recorded = json.loads((out / "benchmark.json").read_text())
preset = get_preset(recorded["preset"]["name"]).replace(
    **{k: v for k, v in recorded["preset"].items() if k not in ("name", "train")},
    **recorded["preset"]["train"],
)
specs = grid_for(preset.selections, observations=preset.observations, seeds=preset.seeds,
                 tau=preset.tau, methods=recorded.get("methods"))
selections, _ = collect(specs, out / "runs")
seconds, tables = {}, {}
for name, step in (
    ("run_statistics", lambda: run_statistics(selections)),
    ("split_statistics", lambda: split_statistics(selections)),
    ("paired_differences",
     lambda: paired_differences(selections, _table_methods(preset, None), preset.tau)),
):
    start = time.process_time()
    tables[name] = step()
    seconds[name] = time.process_time() - start
pickle.dump(tables, open(sys.argv[2], "wb"))
print(json.dumps({"runs": len(selections), "seconds": seconds}))
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
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
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
