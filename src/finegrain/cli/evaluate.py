"""``finegrain evaluate``: AUC^FG and AUC of a predictions table, with bootstrap CIs."""

from __future__ import annotations

import argparse

HELP = (
    "measure AUC^FG (atypical vs typical positives), AUC and calibration (ECE, Brier) of "
    "predictions, with 95% CIs"
)

DESCRIPTION = """\
Measure how well a model's positive probability separates atypical from typical positive
cases (AUC^FG) and positive from negative cases (the ordinary AUC), and how well the positive
probability means what it says on the AUC's cases (expected calibration error over 15
equal-mass bins, and the Brier score; docs/calibration.md), each with a percentile bootstrap
confidence interval, and print the number of cases behind each. Scores outside [0, 1] are not
probabilities: their calibration is not measured.

PREDICTIONS.csv is either
  * a run's predictions-<split>.csv (image_id, iteration, label, subcategory, score,
    fine_score): the last checkpoint is used unless --iteration names another;
  * the output of `finegrain predict` (path, probability, fine_score, ...): joined to an index
    table by image path, to a labels CSV by file name; unreadable images are counted; or
  * any CSV with an id column (image_id or id, or --id-column) and a score column (--score-column).

A run trained with label noise recorded its train and validate predictions with the flipped
labels: without --labels, those are scored against the true labels in the run's index.
Which score AUC^FG ranks: the fine score when the predictions have one (fine_score, or
--fine-score-column: a method's own, e.g. ordinal's P(grade >= typical)), with the paper's AUC^FG
of the positive probability beside it where the two differ; otherwise the positive probability.
The AUC is always the positive probability's.

LABELS.csv (optional when PREDICTIONS.csv already has label and subcategory columns) is either
a labels CSV from `finegrain label` (id, <Obs>, <Obs> severity, <Obs> change, <Obs> subcategory)
or an index table (image_id, ..., <Obs>, <Obs> subcategory); --observation picks <Obs>.
Predictions are joined to labels by id.

Which cases count: AUC uses label 1 (positive) against label 0 (negative); AUC^FG uses the
positives that carry a subcategory, atypical against typical. Blank labels, uncertain labels
(-1; unless --include-uncertain, which counts them as positive) and ids missing from the
labels are left out, and each reason is printed with its count.

--fine-labels mesh takes the atypical/typical subcategories from OpenI's human MeSH annotation
(the index's '<Obs> subcategory mesh' columns) instead of the report labeler, and prints how
often the two agree on the positives (with Cohen's kappa).

examples:
  finegrain evaluate runs/edema-pu-rm-0/predictions-test.csv
  finegrain evaluate predict-out.csv --labels index.csv --observation Edema
  finegrain evaluate runs/pe/predictions-test.csv --labels openi/index.csv \\
      --observation "Pleural Effusion" --fine-labels mesh
  finegrain evaluate scores.csv --labels labels.csv --observation Edema --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", metavar="PREDICTIONS.csv", help="predictions table")
    parser.add_argument(
        "--labels", metavar="LABELS.csv", help="labels CSV or index table (joined by id)"
    )
    parser.add_argument(
        "--observation", help="observation whose labels to use, e.g. Edema (needs --labels)"
    )
    parser.add_argument(
        "--score-column",
        help="column of positive probabilities (default: score, or predict's probability)",
    )
    parser.add_argument(
        "--fine-score-column",
        help="column of the fine score AUC^FG ranks (default: fine_score when there is one)",
    )
    parser.add_argument(
        "--id-column", help="id column of PREDICTIONS.csv (default: image_id, else id)"
    )
    parser.add_argument(
        "--iteration", type=int, help="checkpoint iteration to evaluate (default: the last)"
    )
    parser.add_argument(
        "--n-boot", type=int, default=2000, help="bootstrap replicates for the CIs (2000)"
    )
    parser.add_argument("--level", type=float, default=0.95, help="confidence level (0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (0)")
    parser.add_argument(
        "--include-uncertain",
        action="store_true",
        help="count uncertain (-1) labels as positive instead of leaving them out",
    )
    parser.add_argument(
        "--fine-labels",
        choices=("text", "mesh"),
        default="text",
        help="subcategories for AUC^FG: text (the report labeler's, default) or mesh (OpenI's "
        "human MeSH annotation in an index from `finegrain index --openi`; needs --labels)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from finegrain.cli import CLIError
    from finegrain.evaluate import evaluate_predictions

    if args.labels is not None and args.observation is None:
        raise CLIError("--labels needs --observation (e.g. --observation Edema)")
    if args.n_boot < 1:
        raise CLIError(f"--n-boot must be at least 1, got {args.n_boot}")
    if not 0.0 < args.level < 1.0:
        raise CLIError(f"--level must be between 0 and 1, got {args.level}")
    evaluation = evaluate_predictions(
        args.predictions,
        args.labels,
        args.observation,
        id_column=args.id_column,
        score_column=args.score_column,
        fine_score_column=args.fine_score_column,
        iteration=args.iteration,
        n_boot=args.n_boot,
        level=args.level,
        seed=args.seed,
        include_uncertain=args.include_uncertain,
        fine_labels=args.fine_labels,
    )
    if args.json:
        print(json.dumps(evaluation.to_dict(), indent=2))
    else:
        print(evaluation.format())
    if not evaluation.evaluated:
        from finegrain.cli import EXIT_FAILED

        print(f"finegrain evaluate: error: {evaluation.nothing_evaluated()}", file=sys.stderr)
        return EXIT_FAILED
    return 0
