"""Benchmark the report labeler on OpenI: F1 vs the NegBio gold standard, subcategory agreement
with the MeSH severity modifiers, and speed; plus the same F1 and speed for negspacy (NegEx)
fed with the same mention phrases, and the speed ratio.

    python benchmarks/labeler.py [--data ../shared/data/openi] [--reports 200000] [--json out.json]
    python benchmarks/labeler.py --errors Edema     # list the disagreements (prints report text)

(a) micro-F1 over the gold's seven observations, and per observation with precision/recall, in
    two views: "positive only" (the primary agreement: status 1 -> 1; -1/0/blank -> 0), because
    the gold marks most hedged findings absent, and "positive or uncertain" (status 1/-1 -> 1);
    plus the disagreements of each view counted by category (see ``categorise``), to tell
    gold-standard conventions from labeler errors, and, per hedge cue, what share of the
    findings we call uncertain the gold marks present (``hedge_table``);
(b) agreement of our subcategory with mesh_severity.csv, on rows where our status is 1/-1
    (coverage = such rows / all rows);
(c) reports/s on the OpenI reports repeated to --reports reports, one process, and the same
    with the reasons of ``--explain`` collected and serialised as JSON lines (its cost);
(d) the same F1 and speed for negspacy (spaCy blank English + sentencizer + EntityRuler with our
    mention phrases + negex), on --baseline-reports reports; skipped with an install hint when
    negspacy is not importable.
Per-label accuracy (the share of report x observation cells that agree with the gold, as the
LLM-labeler literature reports it) is printed next to micro-F1 for both views, with the accuracy
of labelling everything absent as its floor.
Speeds are wall-clock (and per CPU second of the process, which a busy shared machine disturbs
less) on whatever machine runs this: compare the ratio, not the absolute value.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

from finegrain.observations import OBSERVATIONS
from finegrain.reports.aggregate import study_labels
from finegrain.reports.engine import analyse, deciding_cues, mention_evidence
from finegrain.reports.labeler import _explanations
from finegrain.reports.lexicon import DEFAULT_LEXICON_DIR, Lexicon, observation_slug
from finegrain.reports.sections import DEID_TOKEN, remove_deid, select_text

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "openi"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def f1_table(pred: dict[str, dict[str, int]], gold: list[dict[str, str]], observations):
    """Per-observation and micro precision/recall/F1 of binary 'present' predictions."""
    rows = {}
    total = [0, 0, 0]  # tp, fp, fn
    for obs in observations:
        tp = fp = fn = 0
        for g in gold:
            y = int(g[obs])
            p = pred[g["id"]][obs]
            tp += y and p
            fp += (not y) and p
            fn += y and not p
        rows[obs] = _prf(tp, fp, fn)
        total = [total[0] + tp, total[1] + fp, total[2] + fn]
    rows["micro"] = _prf(*total)
    return rows


def accuracy(pred: dict[str, dict[str, int]], gold: list[dict[str, str]], observations):
    """Per-label accuracy: the share of (report, observation) cells where the binary
    prediction equals the gold, and the same for predicting every cell absent (the floor)."""
    cells = [(int(g[obs]), pred[g["id"]][obs]) for g in gold for obs in observations]
    return {
        "accuracy": sum(y == p for y, p in cells) / len(cells),
        "all_absent": sum(y == 0 for y, _ in cells) / len(cells),
        "cells": len(cells),
    }


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


VIEWS = {
    "positive only": (1,),  # primary: uncertain counted as absent, as the gold mostly does
    "positive or uncertain": (1, -1),
}
# vascular congestion-type phrases that CheXpert counts as Edema and the NegBio gold does not
_CONGESTION = re.compile(r"congestion|prominence|engorgement|venous hypertension")
CATEGORIES = ("hedge, gold absent", "hedge, gold present", "congestion", "deid", "other")


def evidence(text: str, lex: Lexicon, observation: str) -> list[tuple[int | None, str, str]]:
    """(status, mention, sentence) for each mention of ``observation`` in the labelled text."""
    return mention_evidence(text, observation, lexicon=lex)


def categorise(status: int | None, gold: int, observation: str, found: list) -> str:
    """Category of one disagreement (heuristic, for the error breakdown).

    - "hedge, gold absent": we say uncertain, the gold says absent (the gold counts most hedged
      findings as absent, although its README says 1 = positive or uncertain);
    - "hedge, gold present": we say uncertain, the gold says present (positive-only view);
    - "congestion": Edema from vascular congestion / prominence only (CheXpert counts it, the
      gold does not);
    - "deid": a false positive whose deciding mention has a de-identification mark within the
      three words before it (``XXXX`` often swallowed a "no" or a hedge);
    - "other": the rest (gold conventions such as "enlarged cardiac silhouette" not counted as
      Cardiomegaly, garbled dictation, and labeler errors): read them with ``--errors``.
    """
    if status == -1:
        return "hedge, gold present" if gold else "hedge, gold absent"
    if gold == 0 and status == 1:
        deciding = [(m, t) for st, m, t in found if st == 1]
        if observation == "Edema" and all(_CONGESTION.search(m) for m, _ in deciding):
            return "congestion"
        deid = DEID_TOKEN.strip()
        for mention, text in deciding:
            before = text.split(mention)[0].split()[-3:]
            if deid in before:
                return "deid"
    return "other"


def disagreements(labels, reports, gold, observations, lex, present=(1, -1)):
    """[(id, observation, our status, gold, category, evidence)] for one view."""
    out = []
    for g in gold:
        for obs in observations:
            status = labels[g["id"]][obs].status
            y = int(g[obs])
            if (status in present) != bool(y):
                found = evidence(reports[g["id"]], lex, obs)
                out.append((g["id"], obs, status, y, categorise(status, y, obs, found), found))
    return out


def hedge_table(labels, reports, gold, observations, lex) -> dict[str, dict[str, float]]:
    """Per hedge cue: of the findings we call uncertain (status -1) whose uncertain mentions
    that cue decided, how many the gold marks present. A finding hedged by two cues counts for
    both."""
    table: dict[str, list[int]] = {}
    for g in gold:
        for obs in observations:
            if labels[g["id"]][obs].status != -1:
                continue
            cues = {
                cue for st, cue in deciding_cues(reports[g["id"]], obs, lexicon=lex) if st == -1
            }
            for cue in cues or {"(unassessed only)"}:
                counts = table.setdefault(cue or "?", [0, 0])
                counts[0] += 1
                counts[1] += int(g[obs])
    return {
        cue: {"uncertain": n, "gold_present": p, "share_present": p / n}
        for cue, (n, p) in sorted(table.items(), key=lambda item: (-item[1][0], item[0]))
    }


def ours(texts: list[str], lex: Lexicon) -> list[dict]:
    return [study_labels(analyse(t, lex), "severity") for t in texts]


def ours_explained(texts: list[str], lex: Lexicon) -> list[dict]:
    """The labels and their reasons as ``finegrain label --explain`` writes them (JSON lines,
    kept in memory so that only the labeler's cost is measured)."""
    out = []
    for i, text in enumerate(texts):
        evidence: list = []
        labels = study_labels(analyse(text, lex, evidence), "severity")
        lines = [
            json.dumps({"id": i, **r}, ensure_ascii=False) for r in _explanations(labels, evidence)
        ]
        out.append((labels, lines))
    return out


def speed(fn, texts: list[str], n: int) -> tuple[float, float]:
    """(reports per wall-clock second, reports per CPU second of this process) for ``n``
    reports. The CPU rate depends less on what else runs on a shared machine."""
    batch = (texts * (n // len(texts) + 1))[:n]
    wall, cpu = time.perf_counter(), time.process_time()
    fn(batch)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


# --- comparison: negspacy -------------------------------------------------------------------
def build_negspacy(lexicon_dir: Path):
    import spacy
    from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    patterns = []
    for obs in OBSERVATIONS:
        path = lexicon_dir / "mention" / f"{observation_slug(obs)}.txt"
        if obs == "No Finding" or not path.is_file():
            continue
        label = observation_slug(obs).upper()
        for line in path.read_text(encoding="utf-8").splitlines():
            phrase = line.strip().lower()
            if not phrase or phrase.startswith("#") or "..." in phrase:
                continue
            if "*" in phrase:  # prefix wildcard -> token regex
                tokens = [
                    {"LOWER": {"REGEX": f"^{w[:-1]}"}} if w.endswith("*") else {"LOWER": w}
                    for w in phrase.replace("-", " ").split()
                ]
                patterns.append({"label": label, "pattern": tokens})
            else:
                patterns.append({"label": label, "pattern": phrase})
                patterns.append({"label": label, "pattern": phrase + "s"})
    ruler.add_patterns(patterns)
    labels = sorted({p["label"] for p in patterns})
    nlp.add_pipe("negex", config={"ent_types": labels})
    return nlp


def negspacy_labels(nlp, texts: list[str], observations) -> list[dict[str, int]]:
    from finegrain.reports.lexicon import default_lexicon

    lex = default_lexicon()
    bodies = [remove_deid(select_text(t, lex.sections_use, lex.sections_skip)) for t in texts]
    wanted = {observation_slug(o).upper(): o for o in observations}
    out = []
    for doc in nlp.pipe(bodies, batch_size=256):
        present = dict.fromkeys(observations, 0)
        for ent in doc.ents:
            obs = wanted.get(ent.label_)
            if obs and not ent._.negex:
                present[obs] = 1
        out.append(present)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="OpenI folder")
    parser.add_argument("--lexicon", type=Path, default=None, help="lexicon folder")
    parser.add_argument("--reports", type=int, default=200_000, help="reports for speed (ours)")
    parser.add_argument(
        "--baseline-reports", type=int, default=20_000, help="reports for the baseline's speed"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--errors",
        metavar="OBS",
        default=None,
        help="only list the disagreements with the gold for this observation (id, our status, "
        "gold, category, the sentences that mention it); prints report text",
    )
    parser.add_argument(
        "--view", choices=sorted(VIEWS), default="positive only", help="for --errors"
    )
    args = parser.parse_args(argv)

    if not (args.data / "reports.csv").is_file():
        print(f"OpenI data not found in {args.data} (use --data)", file=sys.stderr)
        return 2
    lex = Lexicon.load(args.lexicon)
    reports = read_csv(args.data / "reports.csv")
    gold = read_csv(args.data / "negbio_gold.csv")
    mesh = read_csv(args.data / "mesh_severity.csv")
    gold_obs = [c for c in gold[0] if c != "id"]
    texts = [r["report"] for r in reports]
    ids = [r["id"] for r in reports]
    labels = dict(zip(ids, ours(texts, lex), strict=True))
    by_id = dict(zip(ids, texts, strict=True))
    if args.errors:
        if args.errors not in gold_obs:
            print(f"--errors: {args.errors!r} not in the gold ({', '.join(gold_obs)})")
            return 2
        rows = disagreements(labels, by_id, gold, [args.errors], lex, VIEWS[args.view])
        print(f"{args.errors}, view {args.view!r}: {len(rows)} disagreements")
        for report_id, _, status, y, category, found in rows:
            print(f"id {report_id}  ours {status}  gold {y}  [{category}]")
            for st, mention, text in found:
                print(f"    {st!s:>2} {mention!r}: {text}")
        return 0
    result: dict = {"data": str(args.data), "n_reports": len(texts)}

    # primary: positive only (uncertain -> 0), as the gold marks most hedged findings absent
    pred_pos = {i: {o: int(lab[o].status == 1) for o in gold_obs} for i, lab in labels.items()}
    result["ours_f1_positive_only"] = f1_table(pred_pos, gold, gold_obs)
    pred = {i: {o: int(lab[o].status in (1, -1)) for o in gold_obs} for i, lab in labels.items()}
    result["ours_f1"] = f1_table(pred, gold, gold_obs)
    result["ours_accuracy"] = {
        "positive only": accuracy(pred_pos, gold, gold_obs),
        "positive or uncertain": accuracy(pred, gold, gold_obs),
    }
    result["hedge_cues"] = hedge_table(labels, by_id, gold, gold_obs, lex)
    result["error_categories"] = {}
    for view, present in VIEWS.items():
        rows = disagreements(labels, by_id, gold, gold_obs, lex, present)
        table = {obs: Counter() for obs in gold_obs}
        for _, obs, status, _, category, _ in rows:
            table[obs][f"{'FP' if status in present else 'FN'} {category}"] += 1
        result["error_categories"][view] = {o: dict(c) for o, c in table.items()}

    agree = covered = 0
    for row in mesh:
        lab = labels[row["id"]][row["observation"]]
        if lab.status in (1, -1):
            covered += 1
            agree += lab.subcategory == row["subcategory"]
    result["subcategory"] = {
        "rows": len(mesh),
        "covered": covered,
        "coverage": covered / len(mesh),
        "agreement": agree / covered if covered else 0.0,
    }
    result["ours_reports_per_s"], result["ours_reports_per_cpu_s"] = speed(
        lambda b: ours(b, lex), texts, args.reports
    )
    result["ours_speed_reports"] = args.reports
    result["explain_reports_per_s"], result["explain_reports_per_cpu_s"] = speed(
        lambda b: ours_explained(b, lex), texts, args.reports
    )
    result["explain_cost_cpu"] = (
        result["ours_reports_per_cpu_s"] / result["explain_reports_per_cpu_s"]
    )

    try:
        nlp = build_negspacy(args.lexicon or DEFAULT_LEXICON_DIR)
    except ImportError as exc:
        print(
            f"comparison skipped: negspacy not importable ({exc}); "
            "install it with `pip install negspacy` (pulls in spaCy)",
            file=sys.stderr,
        )
        nlp = None
    if nlp is not None:
        base = negspacy_labels(nlp, texts, gold_obs)
        result["negspacy_f1"] = f1_table(dict(zip(ids, base, strict=True)), gold, gold_obs)
        result["negspacy_reports_per_s"], result["negspacy_reports_per_cpu_s"] = speed(
            lambda b: negspacy_labels(nlp, b, gold_obs), texts, args.baseline_reports
        )
        result["negspacy_speed_reports"] = args.baseline_reports
        result["speed_ratio"] = result["ours_reports_per_s"] / result["negspacy_reports_per_s"]
        result["speed_ratio_cpu"] = (
            result["ours_reports_per_cpu_s"] / result["negspacy_reports_per_cpu_s"]
        )

    print(f"OpenI development half: {len(texts)} reports, gold: {len(gold)} reports")
    header = f"{'':<20}{'positive only':>21} |{'positive or uncertain':>21}"
    if nlp is not None:
        header += f" |{'negspacy (not negated)':>23}"
    print(header)
    header = f"{'observation':<20}" + f"{'P':>7}{'R':>7}{'F1':>7} |" * 2
    if nlp is not None:
        header += f"{'P':>9}{'R':>7}{'F1':>7}"
    print(header)
    for obs in [*gold_obs, "micro"]:
        line = f"{obs:<20}"
        for key in ("ours_f1_positive_only", "ours_f1"):
            r = result[key][obs]
            line += f"{r['precision']:>7.3f}{r['recall']:>7.3f}{r['f1']:>7.3f} |"
        if nlp is not None:
            b = result["negspacy_f1"][obs]
            line += f"{b['precision']:>9.3f}{b['recall']:>7.3f}{b['f1']:>7.3f}"
        print(line)
    for view, acc in result["ours_accuracy"].items():
        print(
            f"per-label accuracy, {view}: {acc['accuracy']:.4f} over {acc['cells']:,} report x "
            f"observation cells (all absent: {acc['all_absent']:.4f})"
        )
    kinds = [f"{side} {c}" for side in ("FP", "FN") for c in CATEGORIES]
    for view, table in result["error_categories"].items():
        used = [k for k in kinds if any(k in t for t in table.values())]
        print(f"disagreements by category, view {view!r} (benchmarks/labeler.py --errors OBS):")
        print(f"{'observation':<20}" + "".join(f"{k:>{max(len(k), 5) + 2}}" for k in used))
        totals = Counter()
        for obs, counts in table.items():
            totals.update(counts)
            row = "".join(f"{counts.get(k, 0):>{max(len(k), 5) + 2}}" for k in used)
            print(f"{obs:<20}{row}")
        print(f"{'all':<20}" + "".join(f"{totals.get(k, 0):>{max(len(k), 5) + 2}}" for k in used))
    print("hedge cues: findings we call uncertain, and the share the gold marks present")
    print(f"{'cue':<32}{'uncertain':>10}{'present':>9}{'share':>7}")
    for cue, h in result["hedge_cues"].items():
        print(f"{cue:<32}{h['uncertain']:>10}{h['gold_present']:>9}{h['share_present']:>7.2f}")
    s = result["subcategory"]
    print(
        f"subcategory agreement with MeSH: {s['agreement']:.3f} "
        f"(covered {s['covered']}/{s['rows']} = {s['coverage']:.2f})"
    )
    print(
        f"ours: {result['ours_reports_per_s']:,.0f} reports/s "
        f"({result['ours_reports_per_cpu_s']:,.0f} per CPU second) on {args.reports:,} reports"
    )
    print(
        f"ours with the reasons of --explain: {result['explain_reports_per_s']:,.0f} reports/s "
        f"({result['explain_reports_per_cpu_s']:,.0f} per CPU second): "
        f"{result['explain_cost_cpu']:.2f}x the CPU time of labels alone"
    )
    if nlp is not None:
        print(
            f"negspacy: {result['negspacy_reports_per_s']:,.0f} reports/s "
            f"({result['negspacy_reports_per_cpu_s']:,.0f} per CPU second) on "
            f"{args.baseline_reports:,} reports; ratio ours/negspacy = "
            f"{result['speed_ratio']:.1f}x ({result['speed_ratio_cpu']:.1f}x in CPU time)"
        )
    if args.json:
        from finegrain.io import atomic_write_json

        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
