"""Real-image check of `finegrain predict`: COVID-19 radiographs vs radiologists' severity scores.

Runs ``finegrain.predict`` on ``../shared/data/real_cxr/covid`` (353 JPEGs) and relates the
positive probability and the three-tier reading to the severity scores in ``images.csv``
(89 images: geographic extent 0-8, opacity 0-6, Brixia global 0-18): Spearman correlations
(scipy), beside those of a model-free baseline (mean image brightness), and the tier
distribution per severity band. Also renders CAMs for a few scored images.

A checkpoint is an argument (``--checkpoint``; calibrated, or it is calibrated from its run's
validation predictions). Without one, ``--train-phantom WORK`` trains u-ones and pu-rm
densenet-tiny models on the built-in phantom first (CPU, a few minutes), calibrates them, and
uses the checkpoint with the best validation AUC^FG of each (the paper's protocol). A model
trained on a synthetic phantom is not expected to transfer to real radiographs: this script
reports whatever the numbers are.

    python benchmarks/predict_covid.py --train-phantom /tmp/covid-work --out /tmp/covid-out
    python benchmarks/predict_covid.py --checkpoint RUN/checkpoints/iter-0000300.pt --out OUT
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
COVID = REPO.parent / "shared" / "data" / "real_cxr" / "covid"
SCORES = {
    "brixia_senior_global_0to18": "Brixia global (0-18)",
    "severity_geographic_0to8": "geographic extent (0-8)",
    "severity_opacity_0to6": "opacity (0-6)",
}
TIER_ORDER = ["negative", "atypical positive", "typical positive"]


def train_phantom(work: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Phantom -> index -> cache -> u-ones and pu-rm runs; returns method -> best checkpoint."""
    import torch

    from finegrain.data.cache import prepare
    from finegrain.data.index import write_index
    from finegrain.data.mimic import index_mimic
    from finegrain.data.phantom import make_phantom
    from finegrain.predict import calibrate
    from finegrain.train import TrainConfig, train
    from finegrain.train.rundir import RunDirectory

    torch.set_num_threads(args.threads)
    root = work / "mimic-cxr-jpg"
    if not (root / "index.csv").is_file():
        make_phantom(root, studies=args.studies, size=args.phantom_size, seed=0, progress=True)
        frame, summary = index_mimic(root, progress=False)
        write_index(frame, root / "index.csv")
        print(f"phantom: {len(frame)} images indexed")
    cache = work / f"cache-{args.image_size}"
    prepare(root / "index.csv", cache, size=args.image_size, progress=False)
    best = {}
    for method in ("u-ones", "pu-rm"):
        obs = args.observation.lower().replace(" ", "-")
        out = work / "runs" / f"{obs}-{method}-s0-{args.image_size}px-{args.iterations}it"
        config = TrainConfig(
            index=str(root / "index.csv"),
            cache=str(cache),
            observation=args.observation,
            method=method,
            seed=0,
            iterations=args.iterations,
            checkpoint_every=max(1, args.iterations // 3),
            batch_size=32,
            lr=1e-3,
            model="densenet-tiny",
            pretrained=False,
            augment=False,
            num_workers=0,
            device="cpu",
            out=str(out),
        )
        run = RunDirectory(out)
        if not run.is_done():
            t0 = time.perf_counter()
            train(config, resume=run.has_config(), progress=True)
            print(f"trained {method} in {time.perf_counter() - t0:.0f} s (CPU, shared machine)")
        calibrate(out, sensitivity=args.sensitivity)
        metrics = [
            m
            for m in run.metrics_records()
            if m["split"] == "validate" and m.get("auc_fg") is not None
        ]
        top = max(metrics, key=lambda m: (m["auc_fg"], m["iteration"]))
        best[method] = run.checkpoint_path(top["iteration"])
        print(
            f"{method}: best validation AUC^FG {top['auc_fg']:.3f} (AUC {top['auc']:.3f}) "
            f"at iteration {top['iteration']}"
        )
    return best


def analyse(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Spearman correlations and the tier-by-severity table; returns (rows, markdown lines)."""
    from scipy.stats import spearmanr

    lines, rows = [], []
    lines.append(
        "| severity score | n | Spearman rho (probability) | p-value "
        "| rho of mean image brightness (baseline) |"
    )
    lines.append("|---|---|---|---|---|")
    for col, name in SCORES.items():
        sub = frame[frame[col].notna() & frame["probability"].notna()]
        res = spearmanr(sub["probability"], sub[col])
        base = spearmanr(sub["brightness"], sub[col])
        rows.append({"score": col, "n": len(sub), "rho": res.statistic, "p": res.pvalue,
                     "rho_brightness": base.statistic, "p_brightness": base.pvalue})  # fmt: skip
        lines.append(
            f"| {name} | {len(sub)} | {res.statistic:+.3f} | {res.pvalue:.3g} "
            f"| {base.statistic:+.3f} (p {base.pvalue:.3g}) |"
        )
    scored = frame[frame["brixia_senior_global_0to18"].notna()].copy()
    scored["Brixia band"] = pd.cut(
        scored["brixia_senior_global_0to18"],
        [-0.5, 6.5, 12.5, 18.5],
        labels=["0-6", "7-12", "13-18"],
    )
    table = pd.crosstab(scored["Brixia band"], scored["tier"]).reindex(
        columns=TIER_ORDER, fill_value=0
    )
    lines += [
        "",
        "Tier by Brixia band (images with a Brixia score):",
        "",
        "| Brixia | " + " | ".join(TIER_ORDER) + " | mean probability |",
        "|---|" + "---|" * (len(TIER_ORDER) + 1),
    ]
    for band, r in table.iterrows():
        mean_p = scored.loc[scored["Brixia band"] == band, "probability"].mean()
        lines.append(
            f"| {band} | " + " | ".join(str(int(r[t])) for t in TIER_ORDER) + f" | {mean_p:.3f} |"
        )
    means = scored.groupby("tier")["brixia_senior_global_0to18"].agg(["count", "mean"])
    lines += [
        "",
        "Mean Brixia score per tier: "
        + ", ".join(
            f"{t} {means.loc[t, 'mean']:.2f} (n={int(means.loc[t, 'count'])})"
            for t in TIER_ORDER
            if t in means.index
        ),
    ]
    counts = frame["tier"].value_counts()
    lines += [
        "",
        "Tier distribution over all readable images: "
        + ", ".join(f"{t} {int(counts.get(t, 0))}" for t in TIER_ORDER),
    ]
    return pd.DataFrame(rows), lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", help="checkpoint(s); the first is analysed")
    parser.add_argument("--train-phantom", metavar="WORK", help="train phantom models in WORK")
    parser.add_argument("--covid", default=str(COVID), help=f"covid folder ({COVID})")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--observation", default="Consolidation")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--phantom-size", type=int, default=128)
    parser.add_argument("--studies", type=int, default=1200)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--sensitivity", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cams", type=int, default=6, help="CAM figures for this many images")
    args = parser.parse_args(argv)

    from finegrain.io import atomic_write_csv, atomic_write_text
    from finegrain.predict import Predictor, predict, stored_thresholds
    from finegrain.predict.cam import cam_images

    covid, out = Path(args.covid), Path(args.out)
    if not (covid / "images.csv").is_file():
        print(f"covid data not found at {covid}", file=sys.stderr)
        return 2
    if args.checkpoint:
        checkpoints = [Path(c) for c in args.checkpoint]
        for c in checkpoints:
            if stored_thresholds(c) is None:
                from finegrain.predict import calibrate

                calibrate(c, sensitivity=args.sensitivity)
    elif args.train_phantom:
        best = train_phantom(Path(args.train_phantom), args)
        checkpoints = [best["pu-rm"], best["u-ones"]]
    else:
        parser.error("give --checkpoint or --train-phantom")

    meta = pd.read_csv(covid / "images.csv")
    summary = [f"# predict on real COVID-19 radiographs ({len(meta)} images)", ""]
    all_rows = []
    for ckpt in checkpoints:
        t0 = time.perf_counter()
        pred = predict(ckpt, covid / "images", batch_size=32, progress=True)
        elapsed = time.perf_counter() - t0
        pred["image"] = [str(Path(p).relative_to(covid)) for p in pred["path"]]
        # a model-free baseline: mean brightness of the image as the model sees it
        predictor = Predictor.from_checkpoint(ckpt)
        pred["brightness"] = [
            float(predictor.read(p).mean()) if not e else float("nan")
            for p, e in zip(pred["path"], pred["error"], strict=True)
        ]
        frame = pred.merge(meta, on="image", how="left", validate="one_to_one")
        n_bad = int((frame["error"] != "").sum())
        th = stored_thresholds(ckpt)
        rows, lines = analyse(frame[frame["error"] == ""])
        rows.insert(0, "checkpoint", str(ckpt))
        all_rows.append(rows)
        summary += [
            f"## {ckpt}",
            "",
            f"Thresholds: positive >= {th.positive:.4f}, typical >= {th.typical:.4f} "
            f"(method {th.method}, sensitivity target {th.sensitivity}; fitted on the phantom's "
            f"validation split at iteration {th.iteration}).",
            f"{len(frame)} images predicted in {elapsed:.1f} s ({n_bad} unreadable); "
            f"probability min {frame.probability.min():.3f} / median "
            f"{frame.probability.median():.3f} / max {frame.probability.max():.3f}.",
            "",
            *lines,
            "",
        ]
        atomic_write_csv(out / f"predictions-{ckpt.parent.parent.name or ckpt.stem}.csv", frame)
    # CAMs: the most and least severe scored images, first two checkpoints side by side
    scored = meta[meta["brixia_senior_global_0to18"].notna()].sort_values(
        "brixia_senior_global_0to18"
    )
    k = max(1, args.cams // 2)
    picks = pd.concat([scored.head(k), scored.tail(k)])
    cams = cam_images(
        checkpoints[:2], [covid / p for p in picks["image"]], out / "cams", progress=False
    )
    summary += [
        "## CAMs",
        "",
        *(
            f"- {Path(r.output).name}: Brixia {b:.0f}, p = {r.probability:.3f}"
            for r, b in zip(cams.itertuples(), picks["brixia_senior_global_0to18"], strict=True)
        ),
    ]
    atomic_write_csv(out / "correlations.csv", pd.concat(all_rows))
    atomic_write_text(out / "summary.md", "\n".join(summary) + "\n")
    print("\n".join(summary))
    print(json.dumps({"out": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
